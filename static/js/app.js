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
})();
