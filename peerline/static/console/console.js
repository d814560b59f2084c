// Peerline console: small progressive touches; every page works without this file.
(function () {
  "use strict";

  // Ask before a form that removes or deactivates something is sent.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  // Move focus to a form's problem summary, so screen readers and keyboards land on it.
  function focusProblems() {
    var box = document.querySelector("[data-focus]");
    if (box) {
      box.focus();
    }
  }

  // Refresh a live region by fetching its partial; pause while the tab is hidden.
  function startRefresh(region) {
    var url = region.getAttribute("data-refresh-url");
    var seconds = parseInt(region.getAttribute("data-refresh-seconds"), 10) || 5;
    var busy = false;
    var timer = null;

    function refresh() {
      if (busy || document.hidden) {
        return;
      }
      busy = true;
      fetch(url, {
        credentials: "same-origin",
        headers: { "X-Requested-With": "fetch", Accept: "text/html" },
        cache: "no-store",
      })
        .then(function (response) {
          if (response.status === 401) {
            window.clearInterval(timer);
            region.insertAdjacentHTML(
              "afterbegin",
              '<p class="flash flash-error" role="alert">You are signed out. ' +
                '<a href="' + window.location.pathname + '">Sign in again</a>.</p>'
            );
            return null;
          }
          if (!response.ok) {
            throw new Error("refresh failed: " + response.status);
          }
          return response.text();
        })
        .then(function (html) {
          // Keep keyboard focus if it is inside the region being replaced.
          if (html === null || region.contains(document.activeElement)) {
            return;
          }
          region.innerHTML = html;
          region.removeAttribute("data-stale");
        })
        .catch(function () {
          region.setAttribute("data-stale", "true");
        })
        .finally(function () {
          busy = false;
        });
    }

    timer = window.setInterval(refresh, seconds * 1000);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) {
        refresh();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    focusProblems();
    var regions = document.querySelectorAll("[data-refresh-url]");
    for (var i = 0; i < regions.length; i += 1) {
      startRefresh(regions[i]);
    }
  });
})();
