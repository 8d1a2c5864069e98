// Email editor: "Insert image" puts the chosen approved asset's markup into the HTML field at the cursor.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-insert-image]");
    if (!button) return;
    var picker = document.getElementById("image-picker");
    var field = document.getElementById("id_html");
    if (!picker || !field || !picker.value) return;
    var start = field.selectionStart, end = field.selectionEnd;
    field.value = field.value.slice(0, start) + picker.value + field.value.slice(end);
    field.focus();
    field.selectionStart = field.selectionEnd = start + picker.value.length;
  });
})();
