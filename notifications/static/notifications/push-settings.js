/* The "notifications on this phone" panel of /notifications/settings/: asks the browser for
   permission only when the button is pressed, subscribes through the service worker's
   registration and hands the subscription to the server (and takes it back on "off"). */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("push-config").textContent);
  var texts = JSON.parse(document.getElementById("push-texts").textContent);
  var status = document.getElementById("push-status");
  var onButton = document.getElementById("push-on");
  var offButton = document.getElementById("push-off");
  var workerUrl = config.workerUrl || "/sw.js";

  function say(text) { status.textContent = text; }
  function show(subscribed) {
    onButton.hidden = subscribed;
    offButton.hidden = !subscribed;
    say(subscribed ? texts.on : texts.off);
  }
  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"]; } catch (e) { return ""; }
  }
  function post(url, body) {
    return fetch(url, {method: "POST", credentials: "same-origin", body: JSON.stringify(body),
                       headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken()}})
      .then(function (response) { if (!response.ok) { throw new Error("HTTP " + response.status); } return response; });
  }
  function keyBytes(base64url) {
    var text = atob(base64url.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((base64url.length + 3) % 4));
    var bytes = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i++) { bytes[i] = text.charCodeAt(i); }
    return bytes;
  }
  function registration() {
    return navigator.serviceWorker.getRegistration("/").then(function (existing) {
      return existing || navigator.serviceWorker.register(workerUrl, {scope: "/"});
    }).then(function () { return navigator.serviceWorker.ready; });
  }

  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    say(texts.unsupported);
    return;
  }
  if (!config.publicKey) { say(texts.unconfigured); return; }
  if (Notification.permission === "denied") { say(texts.denied); return; }

  navigator.serviceWorker.getRegistration("/").then(function (existing) {
    return existing ? existing.pushManager.getSubscription() : null;
  }).then(function (subscription) { show(Boolean(subscription)); }, function () { show(false); });

  onButton.addEventListener("click", function () {
    onButton.disabled = true;
    say(texts.working);
    Notification.requestPermission().then(function (permission) {
      if (permission !== "granted") { throw new Error("denied"); }
      return registration();
    }).then(function (reg) {
      return reg.pushManager.getSubscription().then(function (current) {
        return current || reg.pushManager.subscribe({userVisibleOnly: true,
                                                     applicationServerKey: keyBytes(config.publicKey)});
      });
    }).then(function (subscription) {
      return post(config.subscribeUrl, subscription.toJSON());
    }).then(function () { show(true); }, function (error) {
      say(error && error.message === "denied" ? texts.denied : texts.failed);
    }).then(function () { onButton.disabled = false; });
  });

  offButton.addEventListener("click", function () {
    offButton.disabled = true;
    say(texts.working);
    navigator.serviceWorker.getRegistration("/").then(function (reg) {
      return reg ? reg.pushManager.getSubscription() : null;
    }).then(function (subscription) {
      if (!subscription) { return null; }
      var endpoint = subscription.endpoint;
      return subscription.unsubscribe().then(function () { return post(config.unsubscribeUrl, {endpoint: endpoint}); });
    }).then(function () { show(false); }, function () { say(texts.failed); })
      .then(function () { offButton.disabled = false; });
  });
})();
