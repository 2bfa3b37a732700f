/* Web Push handlers for GridCoin's service worker: /sw.js loads this file with importScripts.
   A push carries JSON {id, event, kind, title, body, url} (encrypted by the server, RFC 8291);
   the notification's tag is the event, so an event delivered twice shows once. */
/* eslint-env serviceworker */
(function () {
  "use strict";
  var FALLBACK_URL = "/notifications/";

  function sameOriginUrl(url) {
    try {
      var resolved = new URL(url || FALLBACK_URL, self.location.origin);
      return resolved.origin === self.location.origin ? resolved.href : new URL(FALLBACK_URL, self.location.origin).href;
    } catch (e) {
      return new URL(FALLBACK_URL, self.location.origin).href;
    }
  }

  self.addEventListener("push", function (event) {
    var data = {};
    if (event.data) {
      try { data = event.data.json(); } catch (e) { data = {body: event.data.text()}; }
    }
    var options = {body: data.body || "", data: {url: sameOriginUrl(data.url)}};
    if (data.event) { options.tag = data.event; }
    event.waitUntil(self.registration.showNotification(data.title || "GridCoin", options));
  });

  self.addEventListener("notificationclick", function (event) {
    event.notification.close();
    var url = sameOriginUrl(event.notification.data && event.notification.data.url);
    event.waitUntil(self.clients.matchAll({type: "window", includeUncontrolled: true}).then(function (windows) {
      for (var i = 0; i < windows.length; i++) {
        if (windows[i].url === url && "focus" in windows[i]) { return windows[i].focus(); }
      }
      return self.clients.openWindow(url);
    }));
  });
})();
