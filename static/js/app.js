// Manabi: small progressive enhancements. No inline scripts (CSP forbids them).
(function () {
  "use strict";
  // Focus the error summary so screen readers announce it.
  var summary = document.querySelector(".error-summary");
  if (summary) { summary.focus(); }
  // Else the message an action left (受講が確定しました。…): a status region already on the page
  // when it loads is not announced, so focus takes the reader to it, unless the address
  // names a place on the page to go to.
  var flashes = document.querySelector(".flashes");
  if (!summary && flashes && !window.location.hash) { flashes.focus(); }
  // Signing out forgets the answers an activity page kept in this browser (activity-draft.js):
  // the next person at a shared PC must not find them.
  document.querySelectorAll("form[data-forget-drafts]").forEach(function (form) {
    form.addEventListener("submit", function () {
      try {
        var keys = [];
        for (var i = 0; i < window.localStorage.length; i += 1) {
          var k = window.localStorage.key(i);
          if (k && k.indexOf("manabi-activity-") === 0) { keys.push(k); }
        }
        keys.forEach(function (k) { window.localStorage.removeItem(k); });
      } catch (e) { /* storage off */ }
    });
  });
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
  // The archive form: the session list shows only the chosen course's sessions (each course's
  // sessions are an <optgroup> labelled with its title; without JavaScript all are listed
  // under their course, and the server refuses a session of another course).
  document.querySelectorAll("form[data-session-filter]").forEach(function (form) {
    var course = form.querySelector("select[name=course_id]");
    var session = form.querySelector("select[name=session_id]");
    if (!course || !session) { return; }
    var groups = Array.prototype.slice.call(session.querySelectorAll("optgroup"));
    function apply() {
      var chosen = course.options[course.selectedIndex] ? course.options[course.selectedIndex].text : "";
      groups.forEach(function (group) {
        var show = group.label === chosen;
        group.hidden = !show;
        group.disabled = !show;
        if (!show && group.contains(session.options[session.selectedIndex])) { session.value = "0"; }
      });
    }
    course.addEventListener("change", apply);
    apply();
  });
})();
