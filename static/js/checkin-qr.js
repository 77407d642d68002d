// Check-in QR page: reload every N seconds so the rotating code stays current.
// The trainer can pause and resume it (WCAG 2.2.1); without JavaScript a link reloads by hand.
(function () {
  "use strict";
  var button = document.getElementById("qr-auto-refresh");
  if (!button) { return; }
  var seconds = parseInt(button.getAttribute("data-interval"), 10) || 30;
  var timer = null;
  function start() {
    timer = window.setTimeout(function () { window.location.reload(); }, seconds * 1000);
    button.setAttribute("aria-pressed", "true");
    button.textContent = button.getAttribute("data-label-on");
  }
  function stop() {
    window.clearTimeout(timer);
    timer = null;
    button.setAttribute("aria-pressed", "false");
    button.textContent = button.getAttribute("data-label-off");
  }
  button.hidden = false;
  button.addEventListener("click", function () { if (timer) { stop(); } else { start(); } });
  start();
})();
