// Resumable archive uploads (tus 1.0.0 through tus-js-client, self-hosted in static/vendor).
// The server checks type, size and SHA-256 (the last after the upload, in the background);
// this script shows progress and resumes.
(function () {
  "use strict";
  var root = document.getElementById("uploader");
  if (!root || !window.tus) { return; }
  var input = document.getElementById("upload-file");
  var startButton = document.getElementById("upload-start");
  var pauseButton = document.getElementById("upload-pause");
  var bar = document.getElementById("upload-progress");
  var status = document.getElementById("upload-status");
  var errorBox = document.getElementById("upload-error");
  var msg = function (name) { return root.getAttribute("data-msg-" + name) || ""; };
  var HASH_LIMIT = 256 * 1024 * 1024; // larger files are verified by the server alone
  var upload = null;
  var lastAnnounced = -1;

  function say(text) {
    status.textContent = text;
    errorBox.hidden = true;
    errorBox.textContent = "";
  }

  // A refusal is an alert, and focus moves to it (or to the field to correct): the button
  // that was pressed is disabled while an upload runs, so focus would be left nowhere.
  function fail(text, focusTarget) {
    status.textContent = "";
    errorBox.textContent = text;
    errorBox.hidden = false;
    (focusTarget || errorBox).focus();
  }

  // The file of a paused upload, chosen again (a new choice is another File object).
  function sameFile(a, b) {
    return a.name === b.name && a.size === b.size && a.lastModified === b.lastModified;
  }

  function hex(buffer) {
    return Array.prototype.map.call(new Uint8Array(buffer), function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function digest(file) {
    if (file.size > HASH_LIMIT || !window.crypto || !window.crypto.subtle) { return Promise.resolve(""); }
    say(msg("hashing"));
    return file.arrayBuffer().then(function (data) {
      return window.crypto.subtle.digest("SHA-256", data);
    }).then(hex).catch(function () { return ""; });
  }

  function serverMessage(error) {
    var response = error && error.originalResponse;
    var body = response && response.getBody && response.getBody();
    return body && body.length < 500 ? body : "";
  }

  function begin(file, sha256) {
    var metadata = { filename: file.name, filetype: file.type || "" };
    if (sha256) { metadata.sha256 = sha256; }
    // Captions name the video they belong to (the choice is shown when there are several). Sent
    // with every file: the server tells captions by their content, whatever the file's name
    // (.txt, .webvtt), and other kinds of file ignore it.
    var videoChoice = document.getElementById("upload-video");
    if (videoChoice && videoChoice.value) { metadata.video_id = videoChoice.value; }
    upload = new window.tus.Upload(file, {
      endpoint: root.getAttribute("data-endpoint"),
      chunkSize: 32 * 1024 * 1024,
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000, 30000],
      removeFingerprintOnSuccess: true,
      metadata: metadata,
      headers: { "X-CSRFToken": root.getAttribute("data-csrf") },
      onProgress: function (sent, total) {
        var percent = total ? Math.floor(sent * 100 / total) : 0;
        bar.value = percent;
        bar.textContent = percent + "%";
        // Announce every 10% only, so screen readers are not flooded.
        var step = Math.floor(percent / 10);
        if (step !== lastAnnounced) {
          lastAnnounced = step;
          say(msg("progress").replace("{percent}", String(percent)));
        }
      },
      onShouldRetry: function (error) {
        var response = error.originalResponse;
        var code = response ? response.getStatus() : 0;
        // Refusals (type, size, checksum, rights) are final; network trouble and 409/423/5xx are retried.
        if (code >= 400 && code < 500 && code !== 409 && code !== 423 && code !== 429) { return false; }
        say(msg("retry"));
        return true;
      },
      onError: function (error) {
        startButton.disabled = false;
        pauseButton.hidden = true;
        fail(msg("failed") + " " + (serverMessage(error) || ""));
      },
      onSuccess: function (payload) {
        // The server verifies the SHA-256 after the last byte; it may still be at work.
        var last = payload && payload.lastResponse;
        var pending = last && last.getHeader && last.getHeader("Upload-Verification") === "pending";
        bar.value = 100;
        say(pending ? msg("verifying") : msg("done"));
        pauseButton.hidden = true;
        window.setTimeout(function () { window.location.reload(); }, 800);
      }
    });
    upload.findPreviousUploads().then(function (previous) {
      if (previous.length) {
        upload.resumeFromPreviousUpload(previous[0]);
        say(msg("resume"));
      } else {
        say(msg("start"));
      }
      upload.start();
      pauseButton.hidden = false;
      pauseButton.focus(); // the pressed button is disabled now: focus goes to the one that acts next
    });
  }

  startButton.addEventListener("click", function () {
    var file = input.files && input.files[0];
    if (!file) { fail(msg("choose"), input); return; }
    if (upload && pauseButton.getAttribute("data-paused") === "1") {
      pauseButton.setAttribute("data-paused", "0");
      if (sameFile(upload.file, file)) {
        startButton.disabled = true;
        pauseButton.hidden = false;
        pauseButton.focus();
        say(msg("resume"));
        upload.start();
        return;
      }
      // Another file: it starts an upload of its own. The paused one stays on the server as
      // 中断中 (choosing its file again resumes it, as the page says), until it expires.
      upload = null;
    }
    startButton.disabled = true;
    status.focus(); // (while the file is read: the status says what is happening)
    lastAnnounced = -1;
    digest(file).then(function (sha256) { begin(file, sha256); });
  });

  pauseButton.addEventListener("click", function () {
    if (!upload) { return; }
    upload.abort();
    pauseButton.setAttribute("data-paused", "1");
    pauseButton.hidden = true;
    startButton.disabled = false;
    say(msg("paused"));
    startButton.focus();
  });
})();
