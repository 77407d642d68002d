// Archive player: seeks from chapter/search links and ?t=, reports the intervals actually
// watched (from timeupdate while playing, never the playhead alone: jumping ahead counts nothing).
(function () {
  "use strict";
  var video = document.getElementById("player");
  if (!video) { return; }
  var url = video.getAttribute("data-progress-url");
  var csrf = document.querySelector('meta[name="csrf-token"]');
  var token = csrf ? csrf.getAttribute("content") : (video.getAttribute("data-csrf") || "");
  var progressText = document.getElementById("viewing-progress");
  var live = document.getElementById("viewing-live");
  var msg = function (name) { return video.getAttribute("data-msg-" + name) || ""; };
  var pending = [];        // [[start, end], ...] watched since the last successful report
  var segment = null;      // the interval being watched now
  var lastTime = null;
  var sending = false;
  var completed = false;
  var stopped = false;
  var REPORT_EVERY_MS = 15000;

  function startAt() {
    var match = /[#&?]t=(\d+)/.exec(window.location.hash || "");
    var fromUrl = video.getAttribute("data-start");
    if (match) { return parseInt(match[1], 10); }
    if (fromUrl) { return parseInt(fromUrl, 10); }
    return parseInt(video.getAttribute("data-resume") || "0", 10) || 0;
  }

  function seek(seconds) {
    if (isNaN(seconds)) { return; }
    closeSegment();
    try { video.currentTime = seconds; } catch (e) { /* before metadata: set on load */ }
    video.focus();
    var playing = video.play();
    if (playing && playing.catch) { playing.catch(function () {}); }
  }

  video.addEventListener("loadedmetadata", function () {
    var t = startAt();
    if (t > 0 && t < video.duration) { video.currentTime = t; }
  }, { once: true });

  function closeSegment() {
    if (segment && segment[1] > segment[0]) { pending.push([segment[0], segment[1]]); }
    segment = null;
    lastTime = null;
  }

  video.addEventListener("timeupdate", function () {
    if (video.seeking || video.paused) { return; }
    var now = video.currentTime;
    // Normal playback advances a fraction of a second per event; anything else is a jump.
    if (lastTime !== null && now >= lastTime && now - lastTime <= 1.5) {
      if (!segment) { segment = [lastTime, now]; } else { segment[1] = now; }
    } else {
      closeSegment();
    }
    lastTime = now;
  });
  video.addEventListener("seeking", closeSegment);
  video.addEventListener("play", function () { lastTime = video.currentTime; report(false); });
  video.addEventListener("pause", function () { closeSegment(); report(false); });
  video.addEventListener("ended", function () { closeSegment(); report(false); });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") { closeSegment(); report(true); }
  });

  function mmss(seconds) {
    var s = Math.floor(seconds);
    return Math.floor(s / 60) + ":" + ("0" + (s % 60)).slice(-2);
  }

  function reportId() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID().replace(/-/g, ""); }
    return String(Date.now()) + Math.random().toString(16).slice(2);
  }

  // Signed out (elsewhere, or the session ended): nothing more can be counted, so playback
  // stops and says so, rather than play on uncounted (the page, reloaded, asks to sign in).
  function signedOut() {
    stopped = true;
    video.pause();
    live.textContent = msg("signed-out");
  }

  function report(keepalive) {
    if (stopped || sending || !url) { return; }
    var intervals = pending.slice();
    if (segment && segment[1] > segment[0]) { intervals.push([segment[0], segment[1]]); }
    var body = {
      report_id: reportId(),
      intervals: intervals,
      position: video.currentTime || 0
    };
    var taken = pending.length;
    sending = true;
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      keepalive: !!keepalive,
      headers: { "Content-Type": "application/json", "X-CSRFToken": token, "Accept": "application/json" },
      body: JSON.stringify(body)
    }).then(function (response) {
      if (response.status === 403) {
        stopped = true;
        video.pause();
        live.textContent = msg("refused");
        return null;
      }
      if (response.status === 401) { signedOut(); return null; }
      var type = response.headers.get("Content-Type") || "";
      if (!response.ok || response.redirected || type.indexOf("application/json") === -1) {
        throw new Error(String(response.status));  // kept for the next report
      }
      pending.splice(0, taken);
      if (segment) { segment = [segment[1], segment[1]]; }
      return response.json();
    }).then(function (data) {
      if (!data) { return; }
      if (data.counting === false) {
        // The server does not know the video's length yet: nothing is recorded (it says why).
        progressText.textContent = data.notice || "";
        return;
      }
      progressText.textContent = msg("watched")
        .replace("{percent}", String(data.percent))
        .replace("{w}", mmss(data.watched_seconds))
        .replace("{d}", mmss(data.duration_seconds || 0)) + (data.completed ? " — " + msg("done") : "");
      if (data.completed && !completed) {
        completed = true;
        live.textContent = msg("completed");
      }
    }).catch(function () {
      live.textContent = msg("failed");
    }).then(function () { sending = false; });
  }

  window.setInterval(function () { if (!video.paused) { report(false); } }, REPORT_EVERY_MS);

  // The video URL is a short-lived link (signed for nginx, or a blob SAS URL): once it has
  // expired, the next range request is refused (410/403) and the element reports an error.
  // Then ask the app for a fresh link (the app checks access again) and continue where playback
  // was. When the app refuses (withdrawn, window ended: 403), playback stops for good.
  var linkUrl = video.getAttribute("data-link-url");
  var refreshing = false;
  var lastRefresh = 0;

  function refuse() {
    stopped = true;
    video.pause();
    live.textContent = msg("refused");
  }

  function refreshLink() {
    // At most one refresh at a time, and not again within 5 s (a link that fails at once
    // is not an expiry: give up rather than loop).
    if (!linkUrl || refreshing || Date.now() - lastRefresh < 5000) {
      if (!refreshing) { live.textContent = msg("refused"); }
      return;
    }
    refreshing = true;
    lastRefresh = Date.now();
    var position = video.currentTime || 0;
    var wasPlaying = !video.paused || video.autoplay;
    fetch(linkUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (response.status === 403 || response.status === 404) { refuse(); return null; }
        if (response.status === 401) { signedOut(); return null; }
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      }).then(function (data) {
        if (!data || !data.url) { return; }
        closeSegment();
        video.addEventListener("loadedmetadata", function () {
          if (position > 0 && position < video.duration) { video.currentTime = position; }
          if (wasPlaying) {
            var playing = video.play();
            if (playing && playing.catch) { playing.catch(function () {}); }
          }
        }, { once: true });
        video.src = data.url;  // the src attribute takes precedence over the <source> child
      }).catch(function () {
        live.textContent = msg("link-failed");
      }).then(function () { refreshing = false; });
  }

  // Capture phase: an error of the <source> child (the first request refused) does not bubble.
  video.addEventListener("error", function () {
    if (stopped) { return; }
    refreshLink();
  }, true);
  // The <source> starts loading while the page is parsed, before this script runs: its link
  // may have been refused already (an expired page reopened from the cache, a fast answer),
  // and that error was not heard. The element then has no source left: refresh now. (The
  // state is also "no source" for a moment before the element picks its <source>; only a
  // source it has tried, currentSrc, counts as refused, or the fresh link would cut off the
  // page's own request for nothing.)
  if (video.error || (video.networkState === HTMLMediaElement.NETWORK_NO_SOURCE && video.currentSrc)) {
    refreshLink();
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest("[data-seek]");
    if (!link) { return; }
    event.preventDefault();
    seek(parseInt(link.getAttribute("data-seek"), 10));
    if (window.history && window.history.replaceState) {
      window.history.replaceState(null, "", "#t=" + link.getAttribute("data-seek"));
    }
  });
})();
