// "Verify" on a transaction page or a receipt: checks in this browser, with WebCrypto only,
// what the server claims about one transaction (byte formats in docs/ledger-format.md):
//   1. its hash is the SHA-256 of the exact document bytes the API serves;
//   2. the invoker's Ed25519 signature over the proposal inside those bytes;
//   3. the RFC 9162 inclusion proof up to the Merkle root in the block header;
//   4. the header's RFC 8785 bytes hash to the block's header hash and carry the orderer's
//      signature, against the orderer key the page was served with;
//   5. the block's checkpoint (C2SP signed note) names this block and header hash, is signed by
//      the orderer, holds this transaction in its global log root (RFC 9162 inclusion), and
//      carries at least the quorum of valid witness cosignatures (cosignature/v1).
// Nothing here trusts a "valid" flag from the server: every check recomputes from bytes. The keys
// it checks against (the orderer's, the witnesses', the quorum) are pinned by the page itself (a
// JSON script element rendered with it), never taken from the API responses being checked. The
// texts come translated from the page too, so no inline script is needed.

const enc = new TextEncoder();

// --- bytes ------------------------------------------------------------------------------------

export function hexToBytes(hex) {
  if (typeof hex !== "string" || !/^([0-9a-f]{2})*$/i.test(hex)) throw new Error("not hex");
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

export function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function b64ToBytes(text) {
  if (typeof text !== "string") throw new Error("not base64");
  const raw = atob(text);
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

export function bytesToB64(bytes) {
  return btoa(String.fromCharCode(...bytes));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

function endsWith(bytes, suffix) {
  return bytes.length >= suffix.length && equalBytes(bytes.subarray(bytes.length - suffix.length), suffix);
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

// --- RFC 8785 (JCS) for the values the ledger's headers hold --------------------------------
// Strings serialise as ECMAScript's JSON.stringify does (which is what RFC 8785 specifies) and
// keys sort by UTF-16 code units (JavaScript's default sort). Numbers are limited to safe
// integers: the header holds nothing else, and a float would need RFC 8785's number rules.

export function canonicalJson(value) {
  if (value === null || typeof value === "boolean") return JSON.stringify(value);
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new Error("only safe integers are canonicalised here");
    return String(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
  }
  throw new Error(`cannot canonicalise ${typeof value}`);
}

// --- RFC 6962 / 9162 Merkle inclusion (a port of ledger/merkle.py verify_inclusion) ----------

export async function leafHash(data) {
  return sha256(concat(Uint8Array.of(0), data));
}

export async function nodeHash(left, right) {
  return sha256(concat(Uint8Array.of(1), left, right));
}

export async function verifyInclusion(leaf, index, size, path, root) {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  // BigInt: sizes past 2^31 must not wrap in JavaScript's 32-bit bit operators.
  let fn = BigInt(index);
  let sn = BigInt(size - 1);
  let r = await leafHash(leaf);
  for (const p of path) {
    if (p.length !== 32 || sn === 0n) return false;
    if (fn & 1n || fn === sn) {
      r = await nodeHash(p, r);
      if (!(fn & 1n)) {
        while (fn && !(fn & 1n)) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && equalBytes(r, root);
}

// --- Ed25519 ----------------------------------------------------------------------------------

export class Ed25519Unavailable extends Error {}

let ed25519Support = null;

export async function ed25519Supported() {
  if (ed25519Support === null) {
    try {
      // The RFC 8032 test 1 public key: any valid point will do to probe the algorithm.
      await crypto.subtle.importKey("raw", hexToBytes("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"),
        { name: "Ed25519" }, false, ["verify"]);
      ed25519Support = true;
    } catch (error) {
      ed25519Support = false;
    }
  }
  return ed25519Support;
}

// The ledger's Ed25519 rule (docs/ledger-format.md, conventions) refuses keys and R of small order
// and keys whose y is not below p. WebCrypto checks only the equation, under which the neutral
// point as a key verifies a signature of every message, so those points are refused here first.
const FIELD_PRIME = (1n << 255n) - 19n;
const ORDER_8_Y = 2707385501144840649318225287225658788936804267575313519463743609750303402022n;
const SMALL_ORDER_Y = new Set([0n, 1n, FIELD_PRIME - 1n, FIELD_PRIME, FIELD_PRIME + 1n, ORDER_8_Y,
  FIELD_PRIME - ORDER_8_Y]);

// y of a point's encoding: little-endian, without the top bit (the sign of x).
function pointY(encoding) {
  let y = 0n;
  for (let i = 31; i >= 0; i -= 1) y = (y << 8n) | BigInt(i === 31 ? encoding[i] & 0x7f : encoding[i]);
  return y;
}

export function usablePublicKey(encoding) {
  if (encoding.length !== 32) return false;
  const y = pointY(encoding);
  return y < FIELD_PRIME && !SMALL_ORDER_Y.has(y);
}

export async function verifyEd25519(publicKey, signature, message) {
  if (!(await ed25519Supported())) throw new Ed25519Unavailable("Ed25519 is not available in this browser");
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  if (!usablePublicKey(publicKey) || SMALL_ORDER_Y.has(pointY(signature.subarray(0, 32)))) return false;
  let key;
  try {
    key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
  } catch (error) {
    return false; // not a point on the curve: no signature can match it
  }
  return crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
}

// --- C2SP signed notes ------------------------------------------------------------------------

// Key id: the first 4 bytes of SHA-256(name || "\n" || type || public key); type 0x01 is an
// Ed25519 note signature, 0x04 a cosignature/v1 (C2SP signed-note and tlog-cosignature).
export async function noteKeyId(name, type, publicKey) {
  return (await sha256(concat(enc.encode(`${name}\n`), Uint8Array.of(type), publicKey))).subarray(0, 4);
}

// Signature lines of a note ("— <name> <base64>"), after the blank line that ends the body.
export function noteSignatures(note, body) {
  if (typeof note !== "string" || !note.startsWith(`${body}\n`)) return null;
  return note.slice(body.length + 1).split("\n").filter((line) => line !== "").map(parseSignatureLine);
}

export function parseSignatureLine(line) {
  const match = /^\u2014 (\S+) (\S+)$/.exec(line);
  if (!match) return { name: null, bytes: null, line };
  let bytes = null;
  try {
    bytes = b64ToBytes(match[2]);
  } catch (error) {
    bytes = null;
  }
  return { name: match[1], bytes, line };
}

export async function verifyNoteSignature(body, line, publicKey) {
  if (!line.bytes || line.bytes.length !== 4 + 64) return false;
  if (!equalBytes(line.bytes.subarray(0, 4), await noteKeyId(line.name, 0x01, publicKey))) return false;
  return verifyEd25519(publicKey, line.bytes.subarray(4), enc.encode(body));
}

export async function verifyCosignature(body, line, publicKey) {
  if (!line.bytes || line.bytes.length !== 4 + 8 + 64) return false;
  if (!equalBytes(line.bytes.subarray(0, 4), await noteKeyId(line.name, 0x04, publicKey))) return false;
  const time = new DataView(line.bytes.buffer, line.bytes.byteOffset + 4, 8).getBigUint64(0, false);
  const message = enc.encode(`cosignature/v1\ntime ${time}\n${body}`);
  return verifyEd25519(publicKey, line.bytes.subarray(12), message);
}

// Body lines: origin, tree size, base64 root, "block <number> <header hash>".
export function parseCheckpointBody(body) {
  const lines = typeof body === "string" ? body.split("\n") : [];
  if (lines.length !== 5 || lines[4] !== "") return null;
  const block = /^block (\d+) ([0-9a-f]{64})$/.exec(lines[3]);
  if (!/^\d+$/.test(lines[1]) || !block) return null;
  return { origin: lines[0], treeSize: Number(lines[1]), root: lines[2], block: Number(block[1]), headerHash: block[2] };
}

// --- the checks -------------------------------------------------------------------------------

class CheckFailed extends Error {
  constructor(key, params = {}) {
    super(key);
    this.key = key;
    this.params = params;
  }
}

function must(condition, key, params) {
  if (!condition) throw new CheckFailed(key, params);
}

async function fetchJson(url, notFound) {
  let response;
  try {
    response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  } catch (error) {
    throw new CheckFailed("network_failed", { url });
  }
  if (response.status === 404 && notFound) throw notFound;
  if (!response.ok) throw new CheckFailed("fetch_failed", { url, status: response.status });
  return response.json();
}

function decode(fn, value, key) {
  try {
    return fn(value);
  } catch (error) {
    throw new CheckFailed(key);
  }
}

function listOf(data) {
  return Array.isArray(data) ? data : (data && Array.isArray(data.results) ? data.results : []);
}

// A witness's key name: "<msp_id>/witness" (FORMAT16); accepts a list entry naming either.
function witnessKeyName(witness) {
  return witness.name && witness.name.includes("/") ? witness.name : `${witness.organisation}/${witness.name}`;
}

// Each step returns {key?, params} or throws CheckFailed naming what failed; `state` carries what
// later steps need.
export const STEPS = [
  {
    id: "hash",
    async run(state) {
      const doc = state.doc;
      must(doc.tx_hash === state.txHash, "hash_other_tx");
      const bytes = decode(b64ToBytes, doc.bytes, "hash_mismatch");
      must(bytesToHex(await sha256(bytes)) === state.txHash, "hash_mismatch");
      // The signed proposal and the signature are the last two members of the document (JCS
      // order: effects, proposal, signature), so the proposal checked next is the one hashed here.
      const proposal = decode(b64ToBytes, doc.proposal_bytes, "proposal_not_in_document");
      const suffix = concat(enc.encode(',"proposal":'), proposal, enc.encode(`,"signature":${JSON.stringify(doc.signature)}}`));
      must(endsWith(bytes, suffix), "proposal_not_in_document");
      let parsed;
      try {
        parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
      } catch (error) {
        throw new CheckFailed("proposal_not_in_document");
      }
      must(canonicalJson(Object.keys(parsed).sort()) === '["effects","proposal","signature"]', "proposal_not_in_document");
      state.proposal = proposal;
      return { params: { hash: state.txHash.slice(0, 12) } };
    },
  },
  {
    id: "signature",
    async run(state) {
      const doc = state.doc;
      let proposal;
      try {
        proposal = JSON.parse(new TextDecoder().decode(state.proposal));
      } catch (error) {
        throw new CheckFailed("invoker_signature_bad", { invoker: doc.invoker });
      }
      must(proposal.invoker === doc.invoker, "invoker_not_signer", { invoker: doc.invoker });
      const key = decode(hexToBytes, doc.invoker_public_key, "invoker_signature_bad");
      const signature = decode(b64ToBytes, doc.signature, "invoker_signature_bad");
      must(await verifyEd25519(key, signature, state.proposal), "invoker_signature_bad", { invoker: doc.invoker });
      return { params: { invoker: doc.invoker } };
    },
  },
  {
    id: "inclusion",
    async run(state) {
      const proof = state.proof;
      const header = proof.block && proof.block.header;
      must(header && typeof header === "object", "header_missing");
      must(proof.tx_hash === state.txHash, "proof_other_tx");
      must(proof.tree_size === header.tx_count, "proof_bad", { block: header.number });
      const path = decode((nodes) => nodes.map(hexToBytes), proof.audit_path || [], "proof_bad");
      const root = decode(hexToBytes, header.merkle_root, "proof_bad");
      must(await verifyInclusion(hexToBytes(state.txHash), proof.leaf_index, proof.tree_size, path, root), "proof_bad",
        { block: header.number });
      state.header = header;
      return { params: { block: header.number, index: proof.leaf_index + 1, size: proof.tree_size } };
    },
  },
  {
    id: "header",
    async run(state) {
      const block = state.proof.block;
      const header = state.header;
      must(state.doc.block === null || state.doc.block === undefined || state.doc.block === header.number,
        "header_other_block");
      const bytes = enc.encode(decode(canonicalJson, header, "header_hash_bad"));
      state.headerHash = bytesToHex(await sha256(bytes));
      must(state.headerHash === block.header_hash, "header_hash_bad", { block: header.number });
      const key = decode(hexToBytes, state.orderer.public_key, "header_signature_bad");
      const signature = decode(hexToBytes, block.signature, "header_signature_bad");
      must(await verifyEd25519(key, signature, bytes), "header_signature_bad", { block: header.number });
      return { params: { block: header.number, key: state.orderer.public_key.slice(0, 16) } };
    },
  },
  {
    id: "witnesses",
    async run(state) {
      const { orderer, header } = state;
      // Fetched here, not up front: a block sealed before checkpoints existed, or one whose
      // checkpoint is not published, still gets its first four checks.
      const checkpoint = await fetchJson(`${state.api}checkpoints/${header.number}/`,
        new CheckFailed("checkpoint_missing", { block: header.number }));
      const body = parseCheckpointBody(checkpoint.body);
      must(body !== null, "checkpoint_malformed");
      must(body.origin === orderer.origin, "checkpoint_malformed");
      must(body.block === header.number && body.headerHash === state.headerHash, "checkpoint_other_block",
        { block: header.number });
      const lines = noteSignatures(checkpoint.note, checkpoint.body);
      must(lines !== null, "checkpoint_malformed");
      const ordererKey = decode(hexToBytes, orderer.public_key, "checkpoint_signature_bad");
      const signed = lines.find((line) => line.name === orderer.origin);
      must(signed && (await verifyNoteSignature(checkpoint.body, signed, ordererKey)), "checkpoint_signature_bad");
      // The transaction is a leaf of the global log whose root the checkpoint (and so the
      // witnesses) commit to: an operator cannot later show a history without it.
      const inLog = await fetchJson(`${state.api}proofs/inclusion/?tx=${encodeURIComponent(state.txHash)}`
        + `&tree_size=${body.treeSize}`);
      const logPath = decode((nodes) => nodes.map(hexToBytes), inLog.proof || [], "log_inclusion_bad");
      const logRoot = decode(b64ToBytes, body.root, "checkpoint_malformed");
      must(inLog.tx_hash === state.txHash && inLog.tree_size === body.treeSize
        && (await verifyInclusion(hexToBytes(state.txHash), inLog.leaf_index, body.treeSize, logPath, logRoot)),
      "log_inclusion_bad", { block: header.number });
      // Count each registered witness once, with the key the page pins for it.
      const keys = new Map(listOf(state.witnesses).map((w) => [witnessKeyName(w), w.public_key]));
      const valid = new Set();
      const bad = [];
      for (const line of lines) {
        if (line === signed || valid.has(line.name)) continue;
        const hex = keys.get(line.name);
        if (hex === undefined) continue; // someone the ledger does not know as a witness: ignored
        const ok = await verifyCosignature(checkpoint.body, line, decode(hexToBytes, hex, "checkpoint_malformed"));
        if (ok) valid.add(line.name);
        else bad.push(line.name);
      }
      const quorum = Number(orderer.quorum) || 0;
      const params = { valid: valid.size, quorum, names: [...valid].join(", "), bad: bad.join(", "),
        block: header.number, size: body.treeSize };
      must(!bad.length, "cosignature_bad", params);
      must(valid.size >= quorum, "quorum_missing", params);
      return { key: quorum === 0 && valid.size === 0 ? "witnesses_none_required" : "witnesses_ok", params };
    },
  },
];

async function load(api, txHash, trust) {
  const tx = encodeURIComponent(txHash);
  const [doc, proof] = await Promise.all([
    fetchJson(`${api}transactions/${tx}/document/`),
    fetchJson(`${api}transactions/${tx}/proof/`),
  ]);
  return { api, txHash, doc, proof, orderer: trust.orderer, witnesses: trust.witnesses };
}

// `trust`: {orderer: {public_key, origin, quorum}, witnesses: [{name, public_key}]}, as pinned by
// the page.
export async function verifyTransaction(api, txHash, trust) {
  const results = [];
  if (!globalThis.crypto || !crypto.subtle) {
    return { results, fatal: "no_webcrypto" };
  }
  if (!trust || !trust.orderer || typeof trust.orderer.public_key !== "string") {
    return { results, fatal: "trust_missing" };
  }
  let state;
  try {
    state = await load(api, txHash, trust);
  } catch (error) {
    return { results, fatal: error.key || "fetch_failed", params: error.params || {} };
  }
  const ed25519 = await ed25519Supported();
  let failed = false;
  for (const step of STEPS) {
    // A later step needs what an earlier one established; after a failure they cannot run.
    if (failed) {
      results.push({ id: step.id, status: "skipped", key: "skipped" });
      continue;
    }
    try {
      const outcome = await step.run(state);
      results.push({ id: step.id, status: "ok", key: outcome.key || `${step.id}_ok`, params: outcome.params || {} });
    } catch (error) {
      if (error instanceof Ed25519Unavailable) {
        results.push({ id: step.id, status: "unavailable", key: "no_ed25519" });
        failed = true;
      } else if (error instanceof CheckFailed) {
        results.push({ id: step.id, status: "failed", key: error.key, params: error.params });
        failed = true;
      } else {
        results.push({ id: step.id, status: "failed", key: "unexpected", params: { message: String(error) } });
        failed = true;
      }
    }
  }
  return { results, ed25519, block: state.header ? state.header.number : null };
}

// --- the page ---------------------------------------------------------------------------------

// Translations use Python's "%(name)s" placeholders, as gettext's python-format checks them.
export function format(text, params = {}) {
  return String(text).replace(/%\((\w+)\)s/g, (all, name) => (name in params ? String(params[name]) : all));
}

const MARKS = { ok: "✓", failed: "✗", skipped: "–", unavailable: "?" };

function render(panel, texts, outcome) {
  const list = panel.querySelector("[data-verify-results]");
  const summary = panel.querySelector("[data-verify-summary]");
  list.replaceChildren();
  for (const result of outcome.results) {
    const item = document.createElement("li");
    item.className = `verify-check verify-${result.status}`;
    item.dataset.check = result.id;
    item.dataset.status = result.status;
    const mark = document.createElement("span");
    mark.className = "verify-mark";
    mark.setAttribute("aria-hidden", "true");
    mark.textContent = MARKS[result.status];
    const label = document.createElement("span");
    label.className = "visually-hidden";
    label.textContent = `${texts[`status_${result.status}`]}: `;
    const text = document.createElement("span");
    text.className = "verify-text";
    text.textContent = format(texts[result.key] || result.key, result.params);
    item.append(mark, label, text);
    list.append(item);
  }
  let key;
  if (outcome.fatal) key = outcome.fatal;
  else if (outcome.results.every((r) => r.status === "ok")) key = "summary_genuine";
  else if (outcome.results.some((r) => r.status === "failed")) key = "summary_failed";
  else key = "summary_incomplete";
  const first = outcome.results.find((r) => r.status !== "ok");
  summary.dataset.outcome = key;
  // The summary may name what any check established (invoker, block, witnesses).
  const params = Object.assign({}, ...outcome.results.map((r) => r.params || {}), outcome.params || {});
  params.reason = first ? format(texts[first.key] || first.key, first.params) : "";
  summary.textContent = format(texts[key] || key, params);
}

function pinned(panel) {
  const element = panel.dataset.trust && document.getElementById(panel.dataset.trust);
  try {
    return element ? JSON.parse(element.textContent) : null;
  } catch (error) {
    return null;
  }
}

function start(panel) {
  const texts = JSON.parse(document.getElementById(panel.dataset.texts).textContent);
  const button = panel.querySelector("[data-verify-button]");
  button.addEventListener("click", async () => {
    button.disabled = true;
    panel.setAttribute("aria-busy", "true");
    const summary = panel.querySelector("[data-verify-summary]");
    summary.dataset.outcome = "checking";
    summary.textContent = texts.checking;
    let outcome;
    try {
      // Read at each click: the keys are the page's, whatever the API answers meanwhile.
      outcome = await verifyTransaction(panel.dataset.api, panel.dataset.txHash, pinned(panel));
    } catch (error) {
      outcome = { results: [], fatal: "unexpected", params: { message: String(error) } };
    }
    render(panel, texts, outcome);
    panel.removeAttribute("aria-busy");
    button.disabled = false;
  });
}

for (const panel of document.querySelectorAll("[data-verify]")) start(panel);
