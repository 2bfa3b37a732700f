// GridCoin's service worker, rendered by frontend.pwa_views.service_worker. It keeps the app
// shell (CSS, scripts, icons, the offline page) so the app opens and explains itself offline,
// and nothing else: pages are always fetched from the network and never stored, so a balance is
// never shown from a cache. API calls, websockets, webhooks and every non-GET request are left
// to the browser untouched.
"use strict";

const SHELL = {{ shell_json|safe }};
// The push and notificationclick handlers (notifications app).
importScripts(...SHELL.imports);
const CACHE = `gridcoin-shell-${SHELL.version}`;
const CACHE_PREFIX = "gridcoin-shell-";
const OFFLINE_URL = new URL(SHELL.offline, self.location.origin).href;
const PRECACHED = new Set(SHELL.precache.map((path) => new URL(path, self.location.origin).href));
// Never answered by this worker, whatever the method: the browser goes straight to the network.
const PASS_THROUGH = ["/api/", "/ws/", "/webhooks/", "/admin/"];

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // "reload": the shell comes from the server, not from the browser's HTTP cache.
    await cache.addAll([...PRECACHED].map((url) => new Request(url, { cache: "reload", credentials: "omit" })));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith(CACHE_PREFIX) && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

async function offlinePage() {
  const cached = await caches.match(OFFLINE_URL, { cacheName: CACHE });
  return cached || new Response("You're offline.", { status: 503, headers: { "Content-Type": "text/plain; charset=utf-8" } });
}

async function navigate(request) {
  try {
    return await fetch(request);  // never stored: a page may show money
  } catch (error) {
    return offlinePage();
  }
}

async function shellFile(request) {
  const cache = await caches.open(CACHE);
  const cached = await cache.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok && response.type === "basic") await cache.put(request, response.clone());
  return response;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (PASS_THROUGH.some((prefix) => url.pathname.startsWith(prefix))) return;
  if (request.mode === "navigate") {
    event.respondWith(navigate(request));
    return;
  }
  url.hash = "";
  if (PRECACHED.has(url.href)) event.respondWith(shellFile(request));
});
