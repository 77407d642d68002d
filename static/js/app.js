// Manabi: small progressive enhancements. No inline scripts (CSP forbids them).
(function () {
  "use strict";
  // Focus the error summary so screen readers announce it.
  var summary = document.querySelector(".error-summary");
  if (summary) { summary.focus(); }
  // Print buttons of the printable pages: <button data-print hidden> (shown only with JavaScript).
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });
  // "Select all" of a list of checkboxes: <button data-check-all="NAME" hidden> in their form.
  document.querySelectorAll("[data-check-all]").forEach(function (button) {
    var form = button.closest("form");
    var fieldset = button.closest("fieldset");
    if (!form || (fieldset && fieldset.disabled)) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      form.querySelectorAll('input[type="checkbox"][name="' + button.getAttribute("data-check-all") + '"]')
        .forEach(function (box) { box.checked = true; });
    });
  });
})();
