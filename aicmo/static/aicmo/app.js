// Page behaviour that used to live in inline handlers (the Content-Security-Policy allows scripts from
// our own origin only). Elements opt in with data attributes:
//   data-autosubmit  on a <select>: submit its form on change (the workspace switcher)
//   data-copy="id"   on a button: copy the value of the element with that id to the clipboard
//   data-select-on-focus  on an input: select its text when focused (copyable links)
// and tables wider than their box get keyboard focus so they can be scrolled.
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches && el.matches("select[data-autosubmit]") && el.form) {
      el.form.submit();
    }
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy]") : null;
    if (!button || !navigator.clipboard) {
      return;
    }
    var source = document.getElementById(button.dataset.copy);
    if (source) {
      navigator.clipboard.writeText(source.value);
    }
  });
  document.addEventListener("focusin", function (event) {
    var el = event.target;
    if (el.matches && el.matches("input[data-select-on-focus]")) {
      el.select();
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
