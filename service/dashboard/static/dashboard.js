/* The dashboard's live figures: every few seconds, ask the server for the page's live
   panels (rendered there, from the same functions as the API) and put them in place.
   Without this script the page is complete as served; its Refresh link reloads it. */
(function () {
  "use strict";
  var main = document.querySelector("main[data-live-url]");
  if (!main || !window.fetch) {
    return;
  }
  var url = main.getAttribute("data-live-url");
  var version = main.getAttribute("data-model-version");
  var seconds = Number(main.getAttribute("data-live-seconds")) || 15;
  var status = document.getElementById("live-status");

  function say(text) {
    if (status) {
      status.textContent = text;
    }
  }

  function place(live) {
    if (live.model_version !== version) {
      // Another model serves now: segments, drift and comparisons all change with it.
      window.location.reload();
      return;
    }
    Object.keys(live.fragments).forEach(function (name) {
      var target = main.querySelector('[data-live-fragment="' + name + '"]');
      if (target) {
        target.innerHTML = live.fragments[name];
      }
    });
    say("Live figures as of " + live.as_of + ".");
  }

  function refresh() {
    if (document.hidden) {
      schedule();
      return;
    }
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401) {
          say("The session has ended: reload the page to sign in again.");
          return null;
        }
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (live) {
        if (live) {
          place(live);
          schedule();
        }
      })
      .catch(function () {
        say("The live figures could not be updated; trying again.");
        schedule();
      });
  }

  function schedule() {
    window.setTimeout(refresh, seconds * 1000);
  }

  schedule();
})();
