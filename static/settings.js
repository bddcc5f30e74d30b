/* Kairos settings: the weekly hours grid, copy buttons, and the browser's time zone on
 * first run. Every page works without this file; it only makes the same forms smoother.
 * Loaded again by htmx after each boosted page swap, so it installs its listeners once
 * and finds its elements through event delegation. */
(function () {
  "use strict";
  if (window.kairosSettings) return;
  window.kairosSettings = true;

  /* ------------------------------------------------------------ weekly hours grid */

  var GRID = ".hours-grid";
  var CELL = '[role="gridcell"]';
  var drag = null; // {grid, anchor, value, before: Map(cell -> bool), changed}

  function isOn(cell) { return cell.getAttribute("aria-selected") === "true"; }

  function setCell(cell, on) {
    if (isOn(cell) === on) return false;
    cell.setAttribute("aria-selected", on ? "true" : "false");
    var box = cell.querySelector("input[type=checkbox]");
    if (box) box.checked = on;
    return true;
  }

  function pos(cell) { return [+cell.dataset.day, +cell.dataset.slot]; }

  function cellAt(grid, day, slot) {
    return grid.querySelector('[data-day="' + day + '"][data-slot="' + slot + '"]');
  }

  function focusCell(grid, cell) {
    grid.querySelectorAll(CELL + '[tabindex="0"]').forEach(function (c) { c.tabIndex = -1; });
    cell.tabIndex = 0;
    cell.focus({ preventScroll: false });
  }

  // "Saved" may only show once the latest change has been sent: count changes, and
  // remember which one the request in flight carries.
  var changes = 0;
  var sent = 0;

  // The page's own words, in its language: data-msg-* on the settings body (layout.html).
  function msg(name, fallback) {
    var body = document.querySelector(".settings-body");
    return (body && body.getAttribute("data-msg-" + name)) || fallback;
  }

  function showSaving() {
    var status = document.getElementById("hours-status");
    if (status) { status.textContent = msg("saving", "Saving…"); status.className = "save-state saving"; }
  }

  function save(grid) {
    var form = grid.closest("form");
    changes += 1;
    showSaving();
    if (window.htmx) { window.htmx.trigger(form, "hours-changed"); }
    else { form.submit(); }
  }

  document.addEventListener("htmx:configRequest", function (e) {
    if (e.target.id === "hours") sent = changes;
  });
  document.addEventListener("htmx:afterSwap", function () {
    if (sent < changes && document.getElementById("hours")) showSaving();
  });

  /* Paint the rectangle between the anchor and `cell`; cells outside it return to how
   * they were when the drag began, so dragging back undoes. */
  function paintTo(cell) {
    var a = pos(drag.anchor), b = pos(cell);
    var d0 = Math.min(a[0], b[0]), d1 = Math.max(a[0], b[0]);
    var s0 = Math.min(a[1], b[1]), s1 = Math.max(a[1], b[1]);
    drag.before.forEach(function (was, c) {
      var p = pos(c);
      var inside = p[0] >= d0 && p[0] <= d1 && p[1] >= s0 && p[1] <= s1;
      if (setCell(c, inside ? drag.value : was)) drag.changed = true;
    });
  }

  document.addEventListener("pointerdown", function (e) {
    var cell = e.target.closest && e.target.closest(GRID + " " + CELL);
    if (!cell || e.button !== 0) return;
    e.preventDefault();
    // Touch pointers are captured by the first element; release so moves reach others.
    if (cell.hasPointerCapture && cell.hasPointerCapture(e.pointerId)) {
      cell.releasePointerCapture(e.pointerId);
    }
    var grid = cell.closest(GRID);
    var before = new Map();
    grid.querySelectorAll(CELL).forEach(function (c) { before.set(c, isOn(c)); });
    drag = { grid: grid, anchor: cell, value: !isOn(cell), before: before, changed: false };
    paintTo(cell);
    focusCell(grid, cell);
  });

  document.addEventListener("pointermove", function (e) {
    if (!drag) return;
    var el = document.elementFromPoint(e.clientX, e.clientY);
    var cell = el && el.closest && el.closest(CELL);
    if (cell && drag.grid.contains(cell)) paintTo(cell);
  });

  function endDrag() {
    if (!drag) return;
    var d = drag;
    drag = null;
    if (d.changed) save(d.grid);
  }
  document.addEventListener("pointerup", endDrag);
  document.addEventListener("pointercancel", endDrag);

  // With the script on, the checkboxes are hidden: a click on a cell's label must not
  // toggle its box a second time after pointerdown already did.
  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest(GRID + " " + CELL)) e.preventDefault();
  });

  document.addEventListener("keydown", function (e) {
    var cell = e.target.closest && e.target.closest(GRID + " " + CELL);
    if (!cell) return;
    var grid = cell.closest(GRID);
    var p = pos(cell), day = p[0], slot = p[1];
    var moves = {
      ArrowUp: [0, -1], ArrowDown: [0, 1], ArrowLeft: [-1, 0], ArrowRight: [1, 0],
      PageUp: [0, -8], PageDown: [0, 8]
    };
    if (e.key === " " || e.key === "Enter") {
      e.preventDefault();
      setCell(cell, !isOn(cell));
      save(grid);
      return;
    }
    var next = null;
    if (moves[e.key]) {
      var m = moves[e.key];
      next = cellAt(grid, Math.max(0, Math.min(6, day + m[0])), Math.max(0, Math.min(47, slot + m[1])));
    } else if (e.key === "Home") {
      next = cellAt(grid, e.ctrlKey ? day : 0, e.ctrlKey ? 0 : slot);
    } else if (e.key === "End") {
      next = cellAt(grid, e.ctrlKey ? day : 6, e.ctrlKey ? 47 : slot);
    }
    if (!next) return;
    e.preventDefault();
    if (e.shiftKey && next !== cell) {
      // Shift + arrow carries the current cell's state along, like a keyboard brush.
      if (setCell(next, isOn(cell))) save(grid);
    }
    focusCell(grid, next);
  });

  document.addEventListener("htmx:responseError", function (e) {
    if (!e.target.closest || !e.target.closest("#hours")) return;
    var status = document.getElementById("hours-status");
    if (status) {
      status.textContent = msg("refused", "Not saved: the server refused the change. Reload the page and try again.");
      status.className = "save-state failed";
    }
  });
  document.addEventListener("htmx:sendError", function (e) {
    if (!e.target.closest || !e.target.closest("#hours")) return;
    var status = document.getElementById("hours-status");
    if (status) {
      status.textContent = msg("offline", "Not saved: no connection. Your next change will try again.");
      status.className = "save-state failed";
    }
  });

  /* ------------------------------------------------------------ copy buttons */

  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) return;
    var label = button.textContent;
    function done(text) {
      button.textContent = text;
      setTimeout(function () { button.textContent = label; }, 2000);
    }
    source.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.value).then(
        function () { done(msg("copied", "Copied")); },
        function () { done(msg("copy-by-hand", "Press Ctrl+C to copy")); }
      );
    } else {
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (err) { ok = false; }
      done(ok ? msg("copied", "Copied") : msg("copy-by-hand", "Press Ctrl+C to copy"));
    }
  });

  /* ------------------------------------------------------------ focus after swaps */

  /* A swapped-in form with errors sends focus to its first refused field; a boosted
   * navigation (a settings link, a form that redirected) to the new page's heading,
   * so keyboard and screen-reader users start where the page starts. */
  document.addEventListener("htmx:afterSettle", function (e) {
    var target = (e.detail && e.detail.target) || e.target;
    if (!target || !target.querySelector) return;
    var bad = target.querySelector('[aria-invalid="true"]');
    if (bad) { bad.focus(); return; }
    if (e.detail && e.detail.boosted) {
      var heading = document.querySelector("main h1");
      if (heading) {
        heading.tabIndex = -1;
        heading.focus();
      }
    }
  });

  /* ------------------------------------------------------------ link name from the name */

  /* A new meeting type's link name follows its name ("Intro call" → intro-call) until
   * the host types a link name of their own; an existing type's link never changes. */
  function slugify(text) {
    return text.toLowerCase().normalize("NFD").replace(/[\u0300-\u036f]/g, "")
      .replace(/ß/g, "ss").replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "")
      .slice(0, 40).replace(/-+$/, "");
  }

  document.addEventListener("input", function (e) {
    var form = e.target.form;
    if (!form || form.id !== "type_form") return;
    var slug = form.querySelector("input[name=slug]");
    if (!slug) return;
    if (e.target === slug) { slug.dataset.typed = slug.value ? "1" : ""; return; }
    if (e.target.name !== "name" || slug.dataset.typed) return;
    if (slug.value && slug.value !== slug.dataset.auto) return;
    slug.value = slugify(e.target.value);
    slug.dataset.auto = slug.value;
  });

  /* ------------------------------------------------------------ time zone on first run */

  function detectZone() {
    var field = document.querySelector("[data-detect-tz]");
    if (!field || (field.value && field.value !== "UTC")) return;
    try {
      var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (zone) field.value = zone;
    } catch (err) { /* keep UTC */ }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", detectZone);
  else detectZone();
})();
