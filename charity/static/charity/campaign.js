// Live progress of a campaign page: "campaign.progress" over /ws/campaigns/<slug>/ moves the
// bar and the figures. The server sends the current figures on every (re)connect. When the
// websocket cannot be had (a proxy without websockets, a flaky phone network), the page polls
// the JSON progress endpoint instead until a socket opens again.

const POLL_MS = 20000;

function money(minor, currency, scale, locale) {
  const value = minor / 10 ** scale;
  try {
    return new Intl.NumberFormat(locale || undefined, {
      style: "currency", currency, minimumFractionDigits: scale, maximumFractionDigits: scale,
    }).format(value);
  } catch {
    return `${currency} ${value.toFixed(scale)}`;
  }
}

function kwh(wh, locale) {
  return new Intl.NumberFormat(locale || undefined, { minimumFractionDigits: 3, maximumFractionDigits: 3 })
    .format(wh / 1000);
}

export function applyProgress(root, p) {
  const locale = root.dataset.numberLocale;
  const scale = Number(root.dataset.scale || 2);
  const set = (name, text) => { for (const el of root.querySelectorAll(`[data-live="${name}"]`)) el.textContent = text; };
  for (const bar of root.querySelectorAll('[data-live="bar"]')) {
    bar.value = p.percent;
    bar.textContent = `${p.percent}%`;
  }
  set("raised", money(p.raised, p.currency, scale, locale));
  set("percent", String(p.percent));
  set("donors", String(p.donors));
  set("pool", kwh(p.pool_wh, locale));
  set("disbursed", kwh(p.disbursed_wh, locale));
  root.dispatchEvent(new CustomEvent("gridcoin:campaign.progress", { detail: p, bubbles: true }));
}

export function connectCampaign(root) {
  const slug = root.dataset.campaignLive;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${location.host}/ws/campaigns/${encodeURIComponent(slug)}/`;
  let delay = 1000;
  let socket;
  let retry;
  let poller;

  async function poll() {
    try {
      const response = await fetch(root.dataset.progressUrl, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (response.ok) applyProgress(root, await response.json());
    } catch {
      // offline: the next poll or the socket catches up
    }
  }
  function startPolling() {
    if (poller) return;
    root.dataset.livePolling = "true";
    poll();
    poller = setInterval(poll, POLL_MS);
  }
  function stopPolling() {
    clearInterval(poller);
    poller = undefined;
    root.dataset.livePolling = "false";
  }
  function open() {
    try {
      socket = new WebSocket(url);
    } catch {
      startPolling();
      return;
    }
    socket.addEventListener("open", () => {
      delay = 1000;
      stopPolling();
      root.dataset.liveConnected = "true";
      for (const dot of root.querySelectorAll('[data-live="status"]')) dot.classList.add("connected");
    });
    socket.addEventListener("message", (message) => {
      const { event, payload } = JSON.parse(message.data);
      if (event === "campaign.progress") applyProgress(root, payload);
    });
    socket.addEventListener("close", (closed) => {
      root.dataset.liveConnected = "false";
      for (const dot of root.querySelectorAll('[data-live="status"]')) dot.classList.remove("connected");
      if (closed.code === 4404) return; // no such campaign
      startPolling();
      retry = setTimeout(open, delay + Math.random() * 500);
      delay = Math.min(delay * 2, 60000);
    });
  }
  if (!("WebSocket" in window)) startPolling();
  else open();
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && socket && socket.readyState === WebSocket.CLOSED) {
      clearTimeout(retry);
      delay = 1000;
      open();
    }
  });
}

for (const root of document.querySelectorAll("[data-campaign-live]")) connectCampaign(root);
