// The Teams personal tab (templates/teams/tab.html): sign in with the Teams account (single
// sign-on), or in a pop-up window where Teams cannot give a token; then open the tab's page.
// The pop-up's last page (templates/teams/tab_signed_in.html) hands its sign-in to the tab.
(function () {
  'use strict';
  var teams = window.microsoftTeams;
  if (!teams) return;

  var handed = document.getElementById('teams-signed-in');
  if (handed) {  // the pop-up window, signed in
    teams.app.initialize().then(function () {
      teams.authentication.notifySuccess(handed.dataset.code);
    });
    return;
  }

  var root = document.getElementById('teams-tab');
  if (!root) return;
  var status = document.getElementById('teams-tab-status');
  var again = document.getElementById('teams-tab-again');
  var fallback = document.getElementById('teams-tab-fallback');

  function say(text) { status.textContent = text; }

  function post(url, body) {
    return fetch(url, {
      method: 'POST',
      credentials: 'same-origin',
      headers: {'Content-Type': 'application/json', 'Accept': 'application/json', 'X-CSRFToken': root.dataset.csrf},
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        return {ok: response.ok, answer: answer};
      });
    });
  }

  function open(result) {
    if (result.ok && result.answer.next) {
      window.location.replace(result.answer.next);
      return;
    }
    say(result.answer.message || root.dataset.failed);
    fallback.hidden = false;
  }

  function singleSignOn() {
    again.hidden = true;
    say(root.dataset.working);
    return teams.authentication.getAuthToken().then(function (token) {
      return post(root.dataset.sso, {token: token, tab: root.dataset.tab, page: subPage}).then(open);
    }, function () {
      say(root.dataset.consent);
      fallback.hidden = false;
    });
  }

  // A notice's deep link names the page to open (its subEntityId): e.g. the approvals.
  var subPage = '';
  var ready = teams.app.initialize().then(function () {
    teams.app.notifySuccess();
    return teams.app.getContext().then(function (context) {
      subPage = (context && context.page && context.page.subPageId) || '';
      return true;
    }, function () { return true; });
  }, function () {
    say(root.dataset.outside);
    return false;
  });

  ready.then(function (inTeams) {
    if (inTeams && root.dataset.auto === '1') return singleSignOn();
  });

  document.getElementById('teams-tab-sso').addEventListener('click', function () {
    ready.then(function (inTeams) { if (inTeams) singleSignOn(); });
  });

  document.getElementById('teams-tab-sign-in').addEventListener('click', function () {
    ready.then(function (inTeams) {
      if (!inTeams) return;
      return teams.authentication.authenticate({url: root.dataset.signIn, width: 600, height: 640}).then(function (code) {
        return post(root.dataset.redeem, {code: code, tab: root.dataset.tab, page: subPage}).then(open);
      }, function () {
        say(root.dataset.failed);
      });
    });
  });
})();
