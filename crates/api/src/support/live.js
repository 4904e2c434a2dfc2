// Live pages of the support console: follows the watch named by main[data-watch] and, shortly
// after a change to something the page shows, fetches the page again and swaps in its
// [data-live] parts. Event data is only read for a name, never put into the page.
(function () {
  "use strict";
  var main = document.querySelector("main[data-watch]");
  if (!main || !window.EventSource || !window.fetch || !window.DOMParser) {
    return;
  }
  var timer = null;
  var last = 0;

  function shown(name) {
    if (!document.getElementById("fleet-rows")) {
      return true;
    }
    var rows = document.querySelectorAll("tr[data-name]");
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].getAttribute("data-name") === name) {
        return true;
      }
    }
    return false;
  }

  function refresh() {
    timer = null;
    last = Date.now();
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (!html) {
          return;
        }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var parts = document.querySelectorAll("[data-live]");
        for (var i = 0; i < parts.length; i++) {
          var replacement = fresh.getElementById(parts[i].id);
          if (replacement) {
            parts[i].replaceWith(document.importNode(replacement, true));
          }
        }
      })
      .catch(function () {});
  }

  function changed(event) {
    var name = null;
    try {
      name = JSON.parse(event.data).object.metadata.name;
    } catch (e) {
      return;
    }
    if (event.type !== "ADDED" && !shown(name)) {
      return;
    }
    if (timer === null) {
      var wait = Math.max(300, 2000 - (Date.now() - last));
      timer = window.setTimeout(refresh, wait);
    }
  }

  var source = new EventSource(main.getAttribute("data-watch"));
  ["ADDED", "MODIFIED", "DELETED"].forEach(function (type) {
    source.addEventListener(type, changed);
  });
})();
