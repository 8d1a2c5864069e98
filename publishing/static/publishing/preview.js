// Preview width switch: buttons with data-preview-width="desktop|phone" set the frame wrapper's class.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-preview-width]");
    if (!button) return;
    var frame = document.querySelector(".preview-frame");
    if (!frame) return;
    var width = button.getAttribute("data-preview-width");
    frame.classList.toggle("preview-phone", width === "phone");
    frame.classList.toggle("preview-desktop", width !== "phone");
    document.querySelectorAll("[data-preview-width]").forEach(function (b) {
      b.setAttribute("aria-pressed", b === button ? "true" : "false");
    });
  });
})();
