// Live device state over /ws/devices/<public_id>/ for any element marked data-device-live.
// Applies "device.state" (relay badge, balances) and "device.consumption" (owner's readings
// list) to the page, re-broadcasts both as DOM events for page scripts (the simulators), and
// reconnects with backoff. The server sends the current state on every (re)connect, so a page
// that was asleep never keeps showing old money.

export function kwh(wh, locale) {
  if (locale) {
    // As the server formats it (Babel, the page's language in the utility's country).
    return new Intl.NumberFormat(locale, { minimumFractionDigits: 3, maximumFractionDigits: 3 }).format(wh / 1000);
  }
  const sign = wh < 0 ? "-" : "";
  const abs = Math.abs(wh);
  return `${sign}${Math.floor(abs / 1000)}.${String(abs % 1000).padStart(3, "0")}`;
}

function applyState(root, payload) {
  for (const badge of root.querySelectorAll('[data-live="relay"]')) {
    badge.textContent = payload.relay.toUpperCase();
    badge.classList.toggle("relay-on", payload.relay === "on");
    badge.classList.toggle("relay-off", payload.relay !== "on");
  }
  const locale = root.dataset.numberLocale;
  for (const el of root.querySelectorAll('[data-live="balance"]')) el.textContent = kwh(payload.balance_wh, locale);
  for (const el of root.querySelectorAll('[data-live="spendable"]')) el.textContent = kwh(payload.spendable_wh, locale);
}

function applyConsumption(root, payload) {
  const list = root.querySelector('[data-live="readings"]');
  if (!list) return;
  list.querySelector(".empty")?.remove();
  const item = document.createElement("li");
  const wh = payload.burned ?? payload.wh ?? 0;
  const time = document.createElement("time");
  time.dateTime = payload.timestamp;
  // The utility's time zone, as every time on the page (not the phone's own).
  const zone = root.dataset.timeZone || undefined;
  time.textContent = new Date(payload.timestamp).toLocaleTimeString(root.dataset.numberLocale || [], {
    timeZone: zone, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  const amount = document.createElement("strong");
  amount.textContent = `${kwh(wh, root.dataset.numberLocale)} kWh`;
  item.append(time, " ", amount);
  list.prepend(item);
  while (list.children.length > 20) list.lastElementChild.remove();
}

export function connectDevice(root) {
  const publicId = root.dataset.deviceLive;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${location.host}/ws/devices/${encodeURIComponent(publicId)}/`;
  const status = () => root.querySelectorAll('[data-live="status"]');
  let delay = 1000;
  let socket;
  let retry;

  function open() {
    socket = new WebSocket(url);
    socket.addEventListener("open", () => {
      delay = 1000;
      root.dataset.liveConnected = "true";
      for (const dot of status()) dot.classList.add("connected");
    });
    socket.addEventListener("message", (message) => {
      const { event, payload } = JSON.parse(message.data);
      if (event === "device.state") applyState(root, payload);
      else if (event === "device.consumption") applyConsumption(root, payload);
      document.dispatchEvent(new CustomEvent(`gridcoin:${event}`, { detail: payload }));
    });
    socket.addEventListener("close", (closed) => {
      root.dataset.liveConnected = "false";
      for (const dot of status()) dot.classList.remove("connected");
      if (closed.code === 4404) return; // no such device: nothing to wait for
      retry = setTimeout(open, delay + Math.random() * 500);
      delay = Math.min(delay * 2, 30000);
    });
  }
  open();
  // A phone waking up reconnects at once instead of waiting out the backoff.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && socket.readyState === WebSocket.CLOSED) {
      clearTimeout(retry);
      delay = 1000;
      open();
    }
  });
}

for (const root of document.querySelectorAll("[data-device-live]")) connectDevice(root);
