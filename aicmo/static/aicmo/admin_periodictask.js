// Periodic task admin form (templates/admin/djcelery/change_periodictask_form.html): when a crontab is
// chosen, its help text gains the schedule in words (from the "readable-crontabs" JSON the view renders).
// Text only, never markup; replaces django_celery_beat's inline script, which the CSP blocks.
(function () {
  "use strict";
  function ready() {
    var data = document.getElementById("readable-crontabs");
    var select = document.getElementById("id_crontab");
    if (!data || !select) {
      return;
    }
    var readable = JSON.parse(data.textContent);
    var help = document.querySelector(".field-crontab .help");
    var original = help ? help.textContent : "";
    var translation = document.querySelector(".field-crontab_translation");
    if (translation) {
      translation.hidden = true;
    }
    select.addEventListener("change", function () {
      if (!help) {
        return;
      }
      help.textContent = original;
      var words = readable[select.value];
      if (words) {
        help.appendChild(document.createElement("br"));
        help.appendChild(document.createTextNode("Translation: " + words));
      }
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
