// Simulator pages: tap the panel (producer) or the bulb (consumer); while it runs, every
// second the server signs the meter's next cumulative reading and sends it through the meter
// path. The bulb follows the relay that the "device.state" websocket event reports: when the
// coins run out it goes dark, and lights again as soon as someone funds the device.
import { kwh } from "./device-live.js";

const root = document.querySelector("[data-simulator]");
const kind = root.dataset.simulator;
const toggle = root.querySelector("[data-toggle]");
const hint = root.querySelector("[data-hint]");
const TICK_MS = 1000;
let switchedOn = false;
let relay = root.dataset.relay || "on";
let timer = null;
let inFlight = false;

// The page's words, in the reader's language, from data-msg-* attributes; {name} is filled in.
function msg(name, values = {}) {
  return (root.dataset[name] || "").replace(/\{(\w+)\}/g, (_, key) => values[key] ?? "");
}

function render() {
  const running = switchedOn && (kind === "producer" || relay === "on");
  root.classList.toggle("running", running);
  root.classList.toggle("switched-on", switchedOn);
  toggle.setAttribute("aria-pressed", String(switchedOn));
  if (kind === "consumer") {
    if (switchedOn && relay !== "on") hint.textContent = msg("msgOutOfCoins");
    else if (running) hint.textContent = msg("msgBulbOn");
    else hint.textContent = msg("msgBulbOff");
  }
  if (running && !timer) timer = setInterval(tick, TICK_MS);
  if (!running && timer) { clearInterval(timer); timer = null; }
}

async function tick() {
  if (inFlight) return;
  inFlight = true;
  try {
    const response = await fetch(root.dataset.tickUrl, {
      method: "POST", headers: { "X-CSRFToken": root.dataset.csrf }, credentials: "same-origin",
    });
    const data = await response.json();
    if (data.error) { hint.textContent = data.error; switchedOn = false; render(); return; }
    root.querySelector("[data-register]").textContent = kwh(kind === "producer" ? data.export_wh : data.import_wh);
    root.querySelector("[data-counter]").textContent = data.counter;
    for (const el of root.querySelectorAll('[data-live="balance"]')) el.textContent = kwh(data.balance_wh);
    root.querySelector("[data-last]").textContent = data.ok
      ? msg(kind === "producer" ? "msgMinted" : "msgBurned", { counter: data.counter })
      : msg("msgRefused", { counter: data.counter, reason: data.reason });
    if (kind === "consumer") { relay = data.relay; render(); }
  } catch (error) {
    hint.textContent = msg("msgUnreachable", { error: error.message });
  } finally {
    inFlight = false;
  }
}

toggle.addEventListener("click", () => {
  switchedOn = !switchedOn;
  render();
  if (switchedOn && (kind === "producer" || relay === "on")) tick();
});
document.addEventListener("gridcoin:device.state", (event) => {
  relay = event.detail.relay;
  render();
});
render();
