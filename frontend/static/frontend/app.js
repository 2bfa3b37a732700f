// The app shell, on every page (loaded deferred from base.html and the offline page):
// - registers the service worker and, when a new version takes over, offers "Updated — reload";
// - refuses a money action (a form marked data-money-action) while offline, and says so when
//   its request cannot reach the server: nothing is ever queued to be sent later;
// - shows htmx requests: the triggering control is disabled, the target is aria-busy, a
//   progress bar runs, and a failed request says so in an aria-live region.
// User-visible words come from data-msg-* attributes rendered (and translated) by the templates.
(() => {
  "use strict";

  const status = document.querySelector("[data-app-status]");
  const message = (name, fallback) => (status && status.dataset[name]) || fallback;

  function announce(text) {
    if (!status) return;
    status.textContent = text;  // the region stays in the page (CSS hides it empty) so it is announced
  }

  // --- service worker and the update banner -------------------------------------------------
  const script = document.currentScript;
  const swUrl = script && script.dataset.sw;
  if (swUrl && "serviceWorker" in navigator && window.isSecureContext) {
    // The first worker taking control of a page is an install, not an update: no banner then.
    let controlled = Boolean(navigator.serviceWorker.controller);
    navigator.serviceWorker.addEventListener("controllerchange", () => {
      if (controlled) {
        const banner = document.querySelector("[data-update-banner]");
        if (banner) banner.hidden = false;
      }
      controlled = true;
    });
    navigator.serviceWorker.register(swUrl, { scope: "/" }).catch(() => {});
  }

  // --- the offline page in the resident's language -----------------------------------------
  // Every page records its language; the cached offline page (one card per language) shows the
  // card of the language the resident last read the app in.
  const LANG_KEY = "gridcoin-lang";
  const offlineCards = document.querySelectorAll("[data-offline-lang]");
  try {
    if (offlineCards.length) {
      const wanted = (localStorage.getItem(LANG_KEY) || "").toLowerCase();
      const base = wanted.split("-")[0];
      const card = [...offlineCards].find((c) => c.dataset.offlineLang === wanted)
        || [...offlineCards].find((c) => c.dataset.offlineLang === base);
      if (card) {
        offlineCards.forEach((c) => { c.hidden = c !== card; });
        document.documentElement.lang = card.dataset.offlineLang;
        document.title = card.dataset.offlineTitle || document.title;
      }
    } else if (document.documentElement.lang) {
      localStorage.setItem(LANG_KEY, document.documentElement.lang);
    }
  } catch (e) { /* storage blocked: the offline page stays in the default language */ }

  document.addEventListener("click", (event) => {
    if (!event.target.closest) return;
    if (event.target.closest("[data-reload]")) window.location.reload();
    if (event.target.closest("[data-print]")) window.print();
  });

  // --- money actions are never sent offline, never queued -----------------------------------
  const MONEY = "[data-money-action]";

  function refuse(form, text) {
    let note = form.querySelector(".money-refusal");
    if (!note) {
      note = document.createElement("p");
      note.className = "money-refusal form-errors";
      note.setAttribute("role", "alert");
      form.prepend(note);
    }
    note.textContent = text;
  }

  function clearRefusal(form) {
    const note = form && form.querySelector(".money-refusal");
    if (note) note.remove();
  }

  const offlineText = () => message("msgOfflineMoney", "You're offline. Nothing was sent; try again when you're connected.");

  // Capture phase on the document: runs before htmx's own submit listener on the form, and
  // stopping the event there keeps htmx from ever starting the request.
  document.addEventListener("submit", (event) => {
    const form = event.target.closest && event.target.closest(MONEY);
    if (!form) return;
    if (navigator.onLine) {
      clearRefusal(form);
      return;
    }
    event.preventDefault();
    event.stopPropagation();
    refuse(form, offlineText());
  }, true);

  document.addEventListener("htmx:beforeRequest", (event) => {
    const form = event.target.closest && event.target.closest(MONEY);
    if (form && !navigator.onLine) {
      event.preventDefault();
      refuse(form, offlineText());
    }
  });

  // --- htmx request states -------------------------------------------------------------------
  let running = 0;
  // Keyed by the request (its XMLHttpRequest): htmx re-fires afterRequest on another element
  // when the swap removed the one that asked, so the element cannot be the key.
  const busy = new Map();

  function controlsOf(elt) {
    if (elt.tagName === "FORM") return [...elt.querySelectorAll("button, input[type=submit]")];
    return [elt];
  }

  function start(event) {
    const detail = event.detail;
    // Polling (no triggering event) runs quietly; a person's tap or submit shows progress.
    if (!detail.xhr || !detail.requestConfig || !detail.requestConfig.triggeringEvent) return;
    const controls = controlsOf(detail.elt).filter((c) => !c.disabled);
    for (const control of controls) {
      if (control.tagName === "A") control.setAttribute("aria-disabled", "true");
      else control.disabled = true;
      control.classList.add("is-busy");
    }
    busy.set(detail.xhr, { controls, target: detail.target });
    if (detail.target) detail.target.setAttribute("aria-busy", "true");
    running += 1;
    document.documentElement.classList.add("htmx-busy");
  }

  function finish(event) {
    const request = busy.get(event.detail.xhr);
    if (!request) return;
    busy.delete(event.detail.xhr);
    for (const control of request.controls) {
      if (control.tagName === "A") control.removeAttribute("aria-disabled");
      else control.disabled = false;
      control.classList.remove("is-busy");
    }
    if (request.target) request.target.removeAttribute("aria-busy");
    running = Math.max(0, running - 1);
    if (!running) document.documentElement.classList.remove("htmx-busy");
  }

  document.addEventListener("htmx:beforeSend", start);
  document.addEventListener("htmx:afterRequest", finish);
  document.addEventListener("htmx:sendAbort", finish);
  document.addEventListener("htmx:timeout", finish);

  document.addEventListener("htmx:afterRequest", (event) => {
    if (event.detail.successful) announce("");
  });

  document.addEventListener("htmx:sendError", (event) => {
    finish(event);
    const form = event.detail.elt.closest && event.detail.elt.closest(MONEY);
    if (form) {
      refuse(form, navigator.onLine
        ? message("msgMoneyUnreachable", "Could not reach GridCoin: nothing was queued. When you're connected, check your wallet before trying again.")
        : offlineText());
    }
    announce(message("msgUnreachable", "Could not reach GridCoin. Check your connection and try again."));
  });

  document.addEventListener("htmx:responseError", (event) => {
    finish(event);
    announce(message("msgResponseError", "Could not reach GridCoin: the server answered with an error. Try again in a moment."));
  });
})();
