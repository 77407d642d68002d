// An activity's answers are kept in this browser while being typed, so that nothing is lost
// when the sign-in has timed out before saving: after signing in again the page restores them
// and says so. Each copy names the server's draft it was typed over (data-draft-base): it is
// restored over the page's answers only while that draft is still the server's latest (the
// page of a fresh draft saved since shows the server's answers). All of a learner's copies for
// an activity are forgotten once it is submitted, and every copy when signing out (a shared PC
// must not keep anyone's answers, an anonymous survey's least of all: base.html's sign-out
// forms carry data-forget-drafts, handled in app.js).
(function () {
  "use strict";
  function forget(prefix) {
    try {
      var keys = [];
      for (var i = 0; i < window.localStorage.length; i += 1) {
        var k = window.localStorage.key(i);
        if (k && k.indexOf(prefix) === 0) { keys.push(k); }
      }
      keys.forEach(function (k) { window.localStorage.removeItem(k); });
    } catch (e) { /* storage off */ }
  }
  var cleared = document.querySelector("[data-draft-clear]");
  if (cleared) { forget(cleared.getAttribute("data-draft-clear")); }
  var form = document.querySelector("form[data-draft-key]");
  if (!form) { return; }
  var key = form.getAttribute("data-draft-key");
  var base = form.getAttribute("data-draft-base") || "";
  function save() {
    var values = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.name.charAt(0) !== "q") { return; }
      if ((el.type === "radio" || el.type === "checkbox") && !el.checked) { return; }
      (values[el.name] = values[el.name] || []).push(el.value);
    });
    try { window.localStorage.setItem(key, JSON.stringify({ base: base, values: values })); } catch (e) { /* storage off or full */ }
  }
  if (form.hasAttribute("data-restore")) {
    var stored = null;
    try { stored = JSON.parse(window.localStorage.getItem(key) || "null"); } catch (e) { stored = null; }
    if (stored && stored.values && stored.base === base) {
      var changed = false;
      Array.prototype.forEach.call(form.elements, function (el) {
        if (!el.name || el.name.charAt(0) !== "q" || el.type === "file") { return; }
        var wanted = stored.values[el.name] || [];
        if (el.type === "radio" || el.type === "checkbox") {
          var on = wanted.indexOf(el.value) !== -1;
          if (el.checked !== on) { el.checked = on; changed = true; }
        } else if ((el.tagName === "TEXTAREA" || el.tagName === "INPUT") && el.value !== (wanted[0] || "")) {
          el.value = wanted[0] || "";
          changed = true;
        }
      });
      var notice = document.getElementById("draft-restored");
      if (notice && changed) { notice.hidden = false; }
    }
  }
  form.addEventListener("input", save);
  form.addEventListener("change", save);
})();
