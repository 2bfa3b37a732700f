// Passkeys (WebAuthn): register one on the sign-in security page, use one as the second step of
// the login. The sections stay hidden where the browser has no WebAuthn.
(function () {
  "use strict";

  function toBytes(b64url) {
    var b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var raw = atob(b64), bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  }

  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer), raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken()},
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) throw new Error(data.detail || "The request was refused.");
        return data;
      });
    });
  }

  function descriptors(list) {
    return (list || []).map(function (c) {
      return {type: c.type, id: toBytes(c.id), transports: c.transports};
    });
  }

  function credentialJSON(credential) {
    var r = credential.response, out = {
      id: credential.id,
      rawId: toB64url(credential.rawId),
      type: credential.type,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      response: {clientDataJSON: toB64url(r.clientDataJSON)}
    };
    if (r.attestationObject) {
      out.response.attestationObject = toB64url(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = toB64url(r.authenticatorData);
      out.response.signature = toB64url(r.signature);
      if (r.userHandle) out.response.userHandle = toB64url(r.userHandle);
    }
    if (credential.authenticatorAttachment) out.authenticatorAttachment = credential.authenticatorAttachment;
    return out;
  }

  function register(section) {
    return post(section.dataset.optionsUrl).then(function (options) {
      options.challenge = toBytes(options.challenge);
      options.user.id = toBytes(options.user.id);
      options.excludeCredentials = descriptors(options.excludeCredentials);
      return navigator.credentials.create({publicKey: options});
    }).then(function (credential) {
      return post(section.dataset.registerUrl, {credential: credentialJSON(credential), name: "Passkey"});
    });
  }

  function authenticate(section) {
    return post(section.dataset.optionsUrl).then(function (options) {
      options.challenge = toBytes(options.challenge);
      options.allowCredentials = descriptors(options.allowCredentials);
      return navigator.credentials.get({publicKey: options});
    }).then(function (credential) {
      return post(section.dataset.verifyUrl, {credential: credentialJSON(credential)});
    });
  }

  function wire(section, ceremony) {
    if (!section) return;
    if (!window.PublicKeyCredential || !navigator.credentials) return;
    section.hidden = false;
    var button = section.querySelector("[data-passkey-start]");
    var error = section.querySelector("[data-passkey-error]");
    button.addEventListener("click", function () {
      button.disabled = true;
      error.textContent = "";
      ceremony(section).then(function (data) {
        window.location.assign(data.redirect || window.location.href);
      }).catch(function (err) {
        error.textContent = err && err.message ? err.message : String(err);
        button.disabled = false;
      });
    });
  }

  wire(document.querySelector("[data-passkey-register]"), register);
  wire(document.querySelector("[data-passkey-login]"), authenticate);
})();
