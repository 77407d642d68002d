// A timed quiz attempt: the time left, counted from the server's own clock (the page gives the
// deadline and the server's "now"; the browser's clock is not trusted), announced to screen
// readers at five and one minute(s) left; at the deadline the answers on the page are submitted
// (the server accepts them within its grace period, and otherwise scores what was saved).
(function () {
  "use strict";
  var note = document.getElementById("quiz-deadline");
  var form = document.querySelector("form[data-draft-key]");
  if (!note || !form) { return; }
  var left = Date.parse(note.getAttribute("data-deadline")) - Date.parse(note.getAttribute("data-now"));
  if (!(left > 0)) { return; }
  var shown = note.querySelector(".quiz-remaining");
  var time = document.getElementById("quiz-remaining-time");
  var live = document.getElementById("quiz-remaining-live");
  var started = performance.now();
  var DAY = 24 * 3600;
  var said = {};
  function say(which) {
    if (said[which] || !live) { return; }
    said[which] = true;
    live.textContent = live.getAttribute("data-" + which);
  }
  function tick() {
    var ms = left - (performance.now() - started);
    var s = Math.max(0, Math.ceil(ms / 1000));
    // Shown from a day before (the note above gives the date and time): months away, a count of
    // minutes (193137:15) says nothing. Hours as h:mm:ss, then m:ss.
    shown.hidden = s > DAY;
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    var mm = h ? String(m).padStart(2, "0") : String(m);
    time.textContent = (h ? h + ":" : "") + mm + ":" + String(s % 60).padStart(2, "0");
    if (s <= 300 && left > 300000) { say("five"); }
    if (s <= 60 && left > 60000) { say("one"); }
    if (ms <= -1000) {  // (a second late: the server then scores the answers as they stand)
      say("up");
      window.clearInterval(timer);
      var button = form.querySelector('button[name="action"][value="submit"]');
      if (button) { form.requestSubmit(button); }
    }
  }
  var timer = window.setInterval(tick, 1000);
  tick();
})();
