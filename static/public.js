/* Kairos invitee pages: the visitor's own time zone, the chosen day, one submit per click
 * and, inside an iframe, the page height for static/embed.js. A file rather than an inline
 * script because the Content-Security-Policy runs scripts from this site only. */
(function () {
  "use strict";
  /* Open in the visitor's own time zone: when the address names none, switch the
     zone select to the browser's and let htmx refresh the calendar. */
  window.addEventListener("load", function () {
    var form = document.getElementById("tz-form");
    if (!form || !window.htmx || new URLSearchParams(location.search).has("tz")) return;
    var zone = "";
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return; }
    var select = form.querySelector("select[name=tz]");
    if (!zone || select.value === zone) return;
    if (!Array.prototype.some.call(select.options, function (o) { return o.value === zone; })) return;
    select.value = zone;
    var action = form.getAttribute("action");
    var url = action + "?" + new URLSearchParams(new FormData(form)).toString();
    /* htmx adds the form's fields (the source) to the request itself. */
    htmx.ajax("GET", action, {target: "#picker", source: form}).then(function () {
      history.replaceState(history.state, "", url);
    });
  });
  /* The chosen day stays marked while htmx swaps in its times. */
  document.addEventListener("click", function (event) {
    var day = event.target.closest && event.target.closest("a.cal-day");
    if (!day) return;
    document.querySelectorAll("a.cal-day[aria-current]").forEach(function (a) {
      a.removeAttribute("aria-current");
    });
    day.setAttribute("aria-current", "true");
  });
  /* A second click on "Confirm" must not send the form twice. */
  document.addEventListener("submit", function (event) {
    if ((event.target.method || "").toLowerCase() !== "post") return;
    var button = event.target.querySelector("button[type=submit]");
    if (button) setTimeout(function () { button.disabled = true; }, 0);
  });
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = false; });
  });
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
