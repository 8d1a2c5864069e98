// Page behaviour that used to live in inline handlers (the Content-Security-Policy allows scripts from
// our own origin only). Elements opt in with data attributes:
//   data-autosubmit  on a <select>: submit its form on change (the workspace switcher)
//   data-copy="id"   on a button: copy the value of the element with that id to the clipboard
//   data-select-on-focus  on an input: select its text when focused (copyable links)
// Data tables (a <thead> of four columns or more) get each cell's column name as data-label, so on a phone
// they read as cards (app.css); other tables wider than their box get keyboard focus to be scrolled.
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

  // Each body cell learns its column's header text (a template may set its own data-label); the table
  // is marked data-cards, which app.css lays out as one card per row below 700 px wide.
  var CARD_MIN_COLUMNS = 4;

  function labelTables() {
    // every table, every time: rows an HTMX swap added to a table already laid out get their labels too
    document.querySelectorAll("table.table").forEach(function (table) {
      var headRow = table.tHead && table.tHead.rows[0];
      if (!headRow || headRow.cells.length < CARD_MIN_COLUMNS) {
        return; // no header, or two or three columns: they fit a phone as a table
      }
      var labels = [];
      Array.prototype.forEach.call(headRow.cells, function (th) {
        for (var i = 0; i < (th.colSpan || 1); i++) {
          labels.push(th.textContent.replace(/\s+/g, " ").trim());
        }
      });
      Array.prototype.forEach.call(table.tBodies, function (body) {
        Array.prototype.forEach.call(body.rows, function (row) {
          var column = 0;
          Array.prototype.forEach.call(row.cells, function (cell) {
            if (cell.hasAttribute("data-label")) {
              column += cell.colSpan || 1;
              return;
            }
            cell.setAttribute("data-label", cell.colSpan > 1 ? "" : labels[column] || "");
            if (!cell.textContent.trim() && !cell.querySelector("input, select, button, a, img, svg, progress")) {
              cell.setAttribute("data-empty", ""); // a card leaves out an empty value and its label
            }
            column += cell.colSpan || 1;
          });
        });
      });
      table.setAttribute("data-cards", "");
    });
  }

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
  function layoutTables() {
    labelTables();
    markScrollableTables();
  }
  document.addEventListener("DOMContentLoaded", layoutTables);
  window.addEventListener("resize", markScrollableTables);
  document.addEventListener("htmx:afterSettle", layoutTables);
})();
