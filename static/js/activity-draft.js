// An activity's answers are kept in this browser while being typed, so that nothing is lost
// when the sign-in has timed out before saving: after signing in again the page restores them
// (only where the server holds no draft), and says so. They are forgotten once submitted.
(function () {
  "use strict";
  var cleared = document.querySelector("[data-draft-clear]");
  if (cleared) {
    try { window.localStorage.removeItem(cleared.getAttribute("data-draft-clear")); } catch (e) { /* storage off */ }
  }
  var form = document.querySelector("form[data-draft-key]");
  if (!form) { return; }
  var key = form.getAttribute("data-draft-key");
  function save() {
    var values = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.name.charAt(0) !== "q") { return; }
      if ((el.type === "radio" || el.type === "checkbox") && !el.checked) { return; }
      (values[el.name] = values[el.name] || []).push(el.value);
    });
    try { window.localStorage.setItem(key, JSON.stringify(values)); } catch (e) { /* storage off or full */ }
  }
  if (form.hasAttribute("data-restore")) {
    var stored = null;
    try { stored = JSON.parse(window.localStorage.getItem(key) || "null"); } catch (e) { stored = null; }
    if (stored && Object.keys(stored).length) {
      Array.prototype.forEach.call(form.elements, function (el) {
        var wanted = stored[el.name];
        if (!wanted) { return; }
        if (el.type === "radio" || el.type === "checkbox") { el.checked = wanted.indexOf(el.value) !== -1; }
        else if (el.tagName === "TEXTAREA" || el.tagName === "INPUT") { el.value = wanted[0]; }
      });
      var notice = document.getElementById("draft-restored");
      if (notice) { notice.hidden = false; }
    }
  }
  form.addEventListener("input", save);
  form.addEventListener("change", save);
})();
