// In-app QR scanner: the camera via getUserMedia, decoded by the browser's BarcodeDetector
// where it exists, otherwise by the vendored jsQR. A decoded device URL (…/d/<id>) opens that
// device's page on this site; anything else is shown, never followed.

const root = document.querySelector("[data-scanner]");
const video = root.querySelector("video");
const status = root.querySelector(".scan-status");
const start = root.querySelector("[data-start]");
const DEVICE_PATH = /^\/d\/([A-Za-z0-9_-]{1,32})\/?$/;

export function deviceIdFrom(text) {
  const trimmed = (text || "").trim();
  try {
    const url = new URL(trimmed, location.origin);
    const match = DEVICE_PATH.exec(url.pathname);
    if (match) return match[1];
  } catch (_) { /* not a URL */ }
  return /^[A-Za-z0-9_-]{1,32}$/.test(trimmed) ? trimmed : null;
}

function say(text) { status.textContent = text; }

// The page's words, in the reader's language, from data-msg-* attributes; {name} is filled in.
function msg(name, values = {}) {
  return (root.dataset[name] || "").replace(/\{(\w+)\}/g, (_, key) => values[key] ?? "");
}

function openDevice(text) {
  const id = deviceIdFrom(text);
  if (!id) { say(msg("msgNotDevice", { text: text.slice(0, 80) })); return false; }
  say(msg("msgFound", { id }));
  location.assign(`/d/${encodeURIComponent(id)}`);
  return true;
}

function loadJsQR() {
  if (window.jsQR) return Promise.resolve(window.jsQR);
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = root.dataset.jsqr;
    script.onload = () => resolve(window.jsQR);
    script.onerror = () => reject(new Error("could not load the QR decoder"));
    document.head.append(script);
  });
}

async function makeDecoder() {
  if ("BarcodeDetector" in window) {
    try {
      const formats = await window.BarcodeDetector.getSupportedFormats();
      if (formats.includes("qr_code")) {
        const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
        return async () => (await detector.detect(video))[0]?.rawValue ?? null;
      }
    } catch (_) { /* fall back to jsQR */ }
  }
  const jsQR = await loadJsQR();
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true });
  return async () => {
    const width = video.videoWidth, height = video.videoHeight;
    if (!width || !height) return null;
    const scale = Math.min(1, 640 / Math.max(width, height));
    canvas.width = Math.round(width * scale);
    canvas.height = Math.round(height * scale);
    context.drawImage(video, 0, 0, canvas.width, canvas.height);
    const image = context.getImageData(0, 0, canvas.width, canvas.height);
    return jsQR(image.data, image.width, image.height, { inversionAttempts: "dontInvert" })?.data ?? null;
  };
}

async function scan() {
  if (!navigator.mediaDevices?.getUserMedia) {
    say(msg("msgNoCameraHere"));
    return;
  }
  start.disabled = true;
  say(msg("msgStarting"));
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  } catch (error) {
    start.disabled = false;
    say(msg("msgNoCamera", { error: error.message }));
    return;
  }
  video.srcObject = stream;
  await video.play();
  const decode = await makeDecoder();
  say(msg("msgLooking"));
  const stop = () => stream.getTracks().forEach((track) => track.stop());
  const tick = async () => {
    try {
      const text = await decode();
      if (text && openDevice(text)) { stop(); return; }
    } catch (_) { /* a frame that could not be read */ }
    setTimeout(tick, 200);
  };
  tick();
}

start.addEventListener("click", scan);
document.querySelector("[data-manual]").addEventListener("submit", (event) => {
  event.preventDefault();
  openDevice(new FormData(event.target).get("id"));
});
