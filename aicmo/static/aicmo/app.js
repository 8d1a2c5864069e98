// Dashboard behaviour that needs a little JavaScript (no inline handlers: the pages run under a CSP).
(function () {
  "use strict";

  // <select data-autosubmit> submits its form on change (the workspace switcher); a <noscript> button
  // covers browsers without JavaScript.
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el instanceof HTMLSelectElement && el.hasAttribute("data-autosubmit") && el.form) {
      el.form.submit();
    }
  });

  // A table wider than its box scrolls inside it; keyboard users must be able to reach and scroll it.
  function markScrollableTables() {
    document.querySelectorAll(".table, .table-wrap").forEach(function (el) {
      var scrolls = el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== "visible";
      if (scrolls && !el.hasAttribute("tabindex")) {
        el.setAttribute("tabindex", "0");
        el.setAttribute("role", "region");
        if (!el.hasAttribute("aria-label")) {
          el.setAttribute("aria-label", "Table (scrolls sideways)");
        }
      }
    });
  }
  document.addEventListener("DOMContentLoaded", markScrollableTables);
  window.addEventListener("resize", markScrollableTables);
  document.addEventListener("htmx:afterSettle", markScrollableTables);
})();
