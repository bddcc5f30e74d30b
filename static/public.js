/* Kairos invitee pages: the visitor's own time zone, the month as one keyboard grid, focus
 * and a busy state around htmx swaps, a searchable zone list, copy and cancel confirmation,
 * one submit per click and, inside an iframe, the page height for static/embed.js.
 * A file rather than an inline script because the Content-Security-Policy runs scripts
 * from this site only. Every page works without it; it only makes the same links smoother. */
(function () {
  "use strict";

  function $(selector, root) { return (root || document).querySelector(selector); }
  function all(selector, root) {
    return Array.prototype.slice.call((root || document).querySelectorAll(selector));
  }
  function targetOf(event) { return (event.detail && event.detail.target) || event.target; }

  /* Texts in the page's language, from <body data-texts> (templates/public/layout.html). */
  var TEXTS = {};
  try { TEXTS = JSON.parse(document.body.getAttribute("data-texts") || "{}"); } catch (err) { TEXTS = {}; }
  function t(key, english) { return TEXTS[key] || english; }

  /* ------------------------------------------------------------ month grid (ARIA grid) */

  /* One Tab stop for the whole month: the chosen day, else the first day with times.
   * Arrow keys move by day and week, Home/End to the week's ends, Page Up/Down by month. */
  function initGrid() {
    all(".cal").forEach(function (grid) {
      var days = all(".cal-day", grid);
      if (!days.length) return;
      grid.setAttribute("role", "grid");
      grid.setAttribute("aria-describedby", "cal-keys");
      all("span.cal-day", grid).forEach(function (d) { d.parentNode.setAttribute("aria-disabled", "true"); });
      var current = $(".cal-day[aria-current]", grid) || $("a.cal-day", grid) || days[0];
      days.forEach(function (d) { d.tabIndex = d === current ? 0 : -1; });
    });
  }

  function moveTo(day) {
    var grid = day.closest(".cal");
    all(".cal-day", grid).forEach(function (d) { d.tabIndex = -1; });
    day.tabIndex = 0;
    day.focus();
  }

  /* Days with times are links with data-date; the others carry their date as data-day. */
  function isoOf(day) { return day.dataset.date || day.dataset.day; }
  function dayAt(root, iso) {
    return $('.cal-day[data-date="' + iso + '"], .cal-day[data-day="' + iso + '"]', root);
  }

  function addDays(iso, n) {
    var d = new Date(iso + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
  }

  function sameDayOtherMonth(iso, months) {
    var d = new Date(iso + "T00:00:00Z");
    var first = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + months, 1));
    var last = new Date(Date.UTC(first.getUTCFullYear(), first.getUTCMonth() + 1, 0)).getUTCDate();
    first.setUTCDate(Math.min(d.getUTCDate(), last));
    return first.toISOString().slice(0, 10);
  }

  var pendingDay = null;  // the day to focus once htmx has swapped in another month

  function changeMonth(step, dayIso) {
    var link = document.getElementById(step < 0 ? "cal-prev" : "cal-next");
    if (!link) return;
    pendingDay = dayIso;
    link.click();
  }

  document.addEventListener("keydown", function (e) {
    var day = e.target.closest && e.target.closest(".cal .cal-day");
    if (!day || e.altKey || e.metaKey) return;
    var grid = day.closest(".cal");
    var days = all(".cal-day", grid);
    var i = days.indexOf(day);
    var col = day.closest("td").cellIndex;
    var to = null;
    switch (e.key) {
      case "ArrowLeft": to = i - 1; break;
      case "ArrowRight": to = i + 1; break;
      case "ArrowUp": to = i - 7; break;
      case "ArrowDown": to = i + 7; break;
      case "Home": to = e.ctrlKey ? 0 : Math.max(0, i - col); break;
      case "End": to = e.ctrlKey ? days.length - 1 : Math.min(days.length - 1, i + 6 - col); break;
      case "PageUp": e.preventDefault(); changeMonth(-1, sameDayOtherMonth(isoOf(day), -1)); return;
      case "PageDown": e.preventDefault(); changeMonth(1, sameDayOtherMonth(isoOf(day), 1)); return;
      case " ":
        e.preventDefault();
        if (day.tagName === "A") day.click();
        return;
      default: return;
    }
    e.preventDefault();
    if (to >= 0 && to < days.length) moveTo(days[to]);
    else changeMonth(to < 0 ? -1 : 1, addDays(isoOf(day), to - i));
  });

  /* The chosen day stays marked while htmx swaps in its times, and the time-zone form
   * carries it, so another zone shows the same day. */
  document.addEventListener("click", function (event) {
    var day = event.target.closest && event.target.closest("a.cal-day");
    if (!day) return;
    all("a.cal-day[aria-current]").forEach(function (a) { a.removeAttribute("aria-current"); });
    day.setAttribute("aria-current", "true");
    all(".cal-day", day.closest(".cal")).forEach(function (d) { d.tabIndex = d === day ? 0 : -1; });
    var date = $("#tz-form input[name=date]");
    if (date) { date.value = day.dataset.date; date.disabled = false; }
  });

  /* ------------------------------------------------------------ busy state and focus */

  function status(text) {
    var box = document.getElementById("slots-status");
    if (box) box.textContent = text;
  }

  var focusKey = null;  // what had focus when a swap of #picker began: an id

  document.addEventListener("htmx:beforeRequest", function (e) {
    var target = targetOf(e);
    if (!target || (target.id !== "slots" && target.id !== "picker")) return;
    status(t("loading", "Loading times…"));
    var slots = document.getElementById("slots");
    if (slots) slots.setAttribute("aria-busy", "true");
  });

  document.addEventListener("htmx:beforeSwap", function (e) {
    var target = targetOf(e);
    if (target && target.id === "picker") {
      var active = document.activeElement;
      focusKey = active && target.contains(active) && active.id ? active.id : null;
    }
  });

  function loadFailed(e) {
    var target = targetOf(e);
    if (!target || (target.id !== "slots" && target.id !== "picker")) return;
    var slots = document.getElementById("slots");
    if (slots) slots.removeAttribute("aria-busy");
    status(t("load_failed", "The times could not be loaded. Please try again."));
  }
  document.addEventListener("htmx:responseError", loadFailed);
  document.addEventListener("htmx:sendError", loadFailed);

  // The language switcher names the page as it is now: after htmx moved to another
  // month or day (and pushed its address), each language link follows, lang replaced.
  document.addEventListener("htmx:pushedIntoHistory", function () {
    var links = document.querySelectorAll(".lang-switch a[hreflang]");
    for (var i = 0; i < links.length; i++) {
      var params = new URLSearchParams(window.location.search);
      params.set("lang", links[i].getAttribute("hreflang"));
      links[i].setAttribute("href", window.location.pathname + "?" + params.toString());
    }
  });

  var OTHER = { "cal-next": "cal-prev", "cal-prev": "cal-next" };

  document.addEventListener("htmx:afterSettle", function (e) {
    var target = targetOf(e);
    if (!target || !target.id) return;
    if (target.id === "slots") {
      target.removeAttribute("aria-busy");
      status("");
      // The day's times, first: the next thing to pick.
      var first = $("a.slot", target) || $("#slots-title", target);
      if (first) first.focus();
    } else if (target.id === "picker") {
      initGrid();
      addZoneSearch();
      var goal = null;
      if (pendingDay) {
        goal = dayAt(target, pendingDay) || $('.cal-day[tabindex="0"]', target);
      } else if (focusKey) {
        goal = document.getElementById(focusKey) || document.getElementById(OTHER[focusKey] || "");
      }
      pendingDay = null;
      focusKey = null;
      if (goal) {
        if (goal.classList.contains("cal-day")) moveTo(goal);
        else goal.focus();
      }
    }
  });

  /* ------------------------------------------------------------ time zone */

  /* Open in the visitor's own zone: when the address names none, ask for the browser's
   * (the server maps an alias such as Asia/Calcutta to its current name). */
  function followBrowserZone() {
    var form = document.getElementById("tz-form");
    if (!form || !window.htmx || new URLSearchParams(location.search).has("tz")) return;
    var zone = "";
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return; }
    var select = form.querySelector("select[name=tz]");
    if (!zone || select.value === zone) return;
    var values = {};
    new FormData(form).forEach(function (value, key) { values[key] = value; });
    values.tz = zone;
    var action = form.getAttribute("action");
    htmx.ajax("GET", action, { target: "#picker", values: values }).then(function () {
      var chosen = document.querySelector("#tz-form select[name=tz]");
      var query = new URLSearchParams(new FormData(chosen.form)).toString();
      history.replaceState(history.state, "", action + "?" + query);
    });
  }

  /* The select changes its value on every arrow key; only a choice made (a click in the
   * list, Enter, or leaving the field) loads the times in that zone. */
  var keyed = false;
  var uncommitted = false;
  var STEP_KEYS = /^(Arrow(Up|Down|Left|Right)|Home|End|Page(Up|Down)|.)$/;

  function commitZone(select) {
    uncommitted = false;
    keyed = false;
    if (window.htmx) htmx.trigger(select.form, "tz-commit");
    else select.form.submit();
  }

  document.addEventListener("pointerdown", function (e) {
    if (e.target.id === "tz" || (e.target.closest && e.target.closest("#tz"))) keyed = false;
  });
  document.addEventListener("keydown", function (e) {
    if (e.target.id !== "tz") return;
    if (e.key === "Enter") {
      if (uncommitted) { e.preventDefault(); commitZone(e.target); }
      return;
    }
    // Space and Alt+Down open the list, where a choice is final; other keys step through it.
    keyed = !e.altKey && e.key !== " " && STEP_KEYS.test(e.key);
  });
  document.addEventListener("change", function (e) {
    if (e.target.id !== "tz") return;
    if (keyed) { uncommitted = true; return; }
    commitZone(e.target);
  });
  document.addEventListener("focusout", function (e) {
    if (e.target.id === "tz" && uncommitted) commitZone(e.target);
  });

  /* A search box above the zone list: "tokyo", "japan", "utc+9" narrow it down; Enter
   * takes the first match. */
  function searchKey(text) {
    var key = text.toLowerCase().normalize("NFD").replace(/[\u0300-\u036f]/g, "")
      .replace(/\u2212/g, "-").replace(/_/g, " ");
    return key + " " + key.replace(/utc([+\-±])0?(\d{1,2}):00/g, "utc$1$2");
  }

  function addZoneSearch() {
    var form = document.getElementById("tz-form");
    if (!form || document.getElementById("tz-search")) return;
    var select = form.querySelector("select[name=tz]");
    var input = document.createElement("input");
    input.type = "search";
    input.id = "tz-search";
    input.className = "tz-search";
    input.autocomplete = "off";
    input.spellcheck = false;
    input.placeholder = t("zone_search", "Find a city, country or UTC+2");
    input.setAttribute("aria-label", t("zone_search_label", "Find a city or country in the list"));
    input.setAttribute("aria-controls", "tz");
    var row = select.closest(".tz-row") || select;
    row.parentNode.insertBefore(input, row);
    var keys = all("option", select).map(function (o) {
      return [o, searchKey(o.textContent + " " + o.value)];
    });
    input.addEventListener("input", function () {
      var q = searchKey(input.value.trim()).split(" ")[0];
      keys.forEach(function (pair) { pair[0].hidden = !!q && pair[1].indexOf(q) < 0 && !pair[0].selected; });
      all("optgroup", select).forEach(function (g) {
        g.hidden = !all("option", g).some(function (o) { return !o.hidden; });
      });
    });
    input.addEventListener("keydown", function (e) {
      if (e.key === "ArrowDown") { e.preventDefault(); select.focus(); return; }
      if (e.key !== "Enter") return;
      e.preventDefault();
      var q = searchKey(input.value.trim()).split(" ")[0];
      var match = keys.filter(function (pair) { return q && pair[1].indexOf(q) >= 0; })[0];
      if (match && match[0].value !== select.value) {
        select.value = match[0].value;
        commitZone(select);
      }
    });
  }

  /* ------------------------------------------------------------ manage page */

  /* "Copy link" beside the private manage link. */
  all("[data-copy][hidden]").forEach(function (b) { b.hidden = false; });
  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("[data-copy]");
    if (!button) return;
    var source = $(button.getAttribute("data-copy"));
    if (!source) return;
    var label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    function done(text) {
      button.textContent = text;
      setTimeout(function () { button.textContent = label; }, 2500);
    }
    source.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.value).then(
        function () { done(t("copied", "Copied")); },
        function () { done(t("copy_keys", "Press Ctrl+C to copy")); }
      );
    } else {
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (err) { ok = false; }
      done(ok ? t("copied", "Copied") : t("copy_keys", "Press Ctrl+C to copy"));
    }
  });

  /* Cancelling asks once: the button becomes "Yes, cancel booking" beside "No, keep it". */
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.matches("form[data-confirm]") || form.dataset.confirmed) return;
    e.preventDefault();
    var button = form.querySelector("button[type=submit]");
    var question = document.createElement("p");
    question.className = "confirm-question";
    question.id = "confirm-question";
    question.textContent = form.dataset.confirm;
    var keep = document.createElement("button");
    keep.type = "button";
    keep.className = "secondary";
    keep.textContent = t("keep_it", "No, keep it");
    var label = button.textContent;
    form.dataset.confirmed = "asked";
    button.parentNode.insertBefore(question, button);
    button.textContent = t("yes_cancel", "Yes, cancel booking");
    button.setAttribute("aria-describedby", "confirm-question");
    button.insertAdjacentElement("afterend", keep);
    button.insertAdjacentText("afterend", " ");
    keep.addEventListener("click", function () {
      delete form.dataset.confirmed;
      question.remove();
      keep.remove();
      button.textContent = label;
      button.removeAttribute("aria-describedby");
      button.focus();
    });
    button.focus();
  });

  /* A second click on "Confirm" must not send the form twice. */
  document.addEventListener("submit", function (event) {
    if (event.defaultPrevented || (event.target.method || "").toLowerCase() !== "post") return;
    var button = event.target.querySelector("button[type=submit]");
    if (button) setTimeout(function () { button.disabled = true; }, 0);
  });
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = false; });
  });

  /* A form the server sent back: focus its first refused field. */
  var refused = $('main [aria-invalid="true"], main .has-error input');
  if (refused) refused.focus();

  initGrid();
  addZoneSearch();
  window.addEventListener("load", followBrowserZone);

  /* Inside an iframe: tell the embedding page how tall we are (static/embed.js listens). */
  if (document.body.classList.contains("embed") && window.parent !== window) {
    var last = 0;
    var post = function () {
      var height = Math.ceil(document.body.getBoundingClientRect().height);
      if (height !== last) {
        last = height;
        window.parent.postMessage({kairos: "height", height: height}, "*");
      }
    };
    if (window.ResizeObserver) new ResizeObserver(post).observe(document.body);
    window.addEventListener("load", post);
    document.addEventListener("htmx:afterSettle", post);
    post();
  }
})();
