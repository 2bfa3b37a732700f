"""The in-browser "Verify" (frontend/static/frontend/verify.js) at 390×844 in the system
Chromium, against the app's own read API: on a sealed transaction's page every check passes;
then, with Playwright rewriting one API response at a time, each tampering (a flipped byte in the
transaction bytes, the signature, the invoker's key, the proof path, the header, its signature,
the orderer key, the checkpoint's signature, a cosignature or the global log proof; a checkpoint
of another header; a quorum not met; no checkpoint at all) is reported by its own named failure.
The receipt has the same button; a browser without Ed25519 is told so; axe-core finds nothing
serious on the page with a result showing, under the page's own CSP."""

from __future__ import annotations

import base64
import copy
import os
from pathlib import Path

import pytest

from tests.frontend.test_browser_phone import PHONE, phone_browser, tap_size

AXE = Path(__file__).resolve().parents[1] / "assets" / "axe-core-4.14.1.min.js"


# WebCrypto as in a browser without Ed25519: importing such a key is "not supported".
NO_ED25519 = """
const importKey = SubtleCrypto.prototype.importKey;
SubtleCrypto.prototype.importKey = function (format, key, algorithm, ...rest) {
  const name = typeof algorithm === "string" ? algorithm : algorithm && algorithm.name;
  if (name === "Ed25519") return Promise.reject(new DOMException("Unrecognized name", "NotSupportedError"));
  return importKey.call(this, format, key, algorithm, ...rest);
};
"""


def flip_hex(text: str, at: int = 0) -> str:
    raw = bytearray(bytes.fromhex(text))
    raw[at] ^= 0x01
    return raw.hex()


def flip_b64(text: str, at: int = -1) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[at] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def flip_cosignature(checkpoint: dict) -> dict:
    """Flip the last signature byte of the first witness cosignature, in the note and the list."""
    line = checkpoint["cosignatures"][0]["line"]
    dash, name, sig = line.split(" ")
    bad = f"{dash} {name} {flip_b64(sig)}"
    checkpoint["cosignatures"][0]["line"] = bad
    checkpoint["note"] = checkpoint["note"].replace(line, bad)
    return checkpoint


def flip_orderer_line(checkpoint: dict) -> dict:
    """Flip the last byte of the orderer's signature on the checkpoint note."""
    line = checkpoint["note"].split("\n")[len(checkpoint["body"].split("\n"))]
    dash, name, sig = line.split(" ")
    checkpoint["note"] = checkpoint["note"].replace(line, f"{dash} {name} {flip_b64(sig)}")
    return checkpoint


def other_header_hash(checkpoint: dict) -> dict:
    """A checkpoint body naming another header hash for the block (the note follows it)."""
    bad = checkpoint["body"].replace(checkpoint["header_hash"], flip_hex(checkpoint["header_hash"]))
    checkpoint["note"] = checkpoint["note"].replace(checkpoint["body"], bad)
    checkpoint["body"] = bad
    return checkpoint


@pytest.fixture
def sealed_world(settings, transactional_db):
    from tests.frontend.verify_world import build_verify_world

    return build_verify_world(settings)


def verify(page, expect):
    button = page.get_by_role("button", name="Verify")
    button.click()
    summary = page.locator("[data-verify-summary]")
    expect(summary).not_to_have_attribute("data-outcome", "checking")
    expect(button).to_be_enabled()
    return summary


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_verify_passes_then_names_each_tampering(live_server, sealed_world, monkeypatch):
    from playwright.sync_api import expect

    world = sealed_world
    tx_hash, block = world.tx_hash, world.checkpoint.number
    with phone_browser(monkeypatch) as context:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.goto(f"{live_server.url}/accounts/login/?next=/explorer/tx/{tx_hash}/")
        page.fill("#id_username", "alice")
        page.fill("#id_password", "alice-password-1")
        page.click("main button[type=submit]")
        page.wait_for_url(f"{live_server.url}/explorer/tx/{tx_hash}/")

        assert tap_size(page, "[data-verify-button]")[1] >= 44
        summary = verify(page, expect)
        expect(summary).to_have_attribute("data-outcome", "summary_genuine")
        expect(summary).to_contain_text("This transaction is genuine")
        checks = page.locator(".verify-check")
        expect(checks).to_have_count(5)
        for i in range(5):
            expect(checks.nth(i)).to_have_attribute("data-status", "ok")
        expect(page.locator('[data-check="witnesses"]')).to_contain_text("Witness cosignatures: 1 valid, 1 required (bank/witness)")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        if os.environ.get("GRIDCOIN_SCREENSHOTS"):
            page.screenshot(path=os.path.join(os.environ["GRIDCOIN_SCREENSHOTS"], "verify.png"), full_page=True)

        # Evaluated, not added as a script tag: the page's CSP (scripts from 'self' only) stays on.
        page.evaluate(AXE.read_text())
        violations = page.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations']}))
            .violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id)""")
        assert violations == []

        base = world.payloads(page, live_server.url)
        cases = [
            ("document", lambda d: {**d, "bytes": flip_b64(d["bytes"], 10)},
             "hash", "The transaction’s bytes do not hash to its hash."),
            ("document", lambda d: {**d, "signature": flip_b64(d["signature"])},
             "hash", "The signed proposal is not the one inside the transaction’s bytes."),
            ("document", lambda d: {**d, "invoker_public_key": flip_hex(d["invoker_public_key"], 3)},
             "signature", f"The invoker’s signature does not match {world.alice.identity.qualified_name}’s key."),
            ("proof", lambda p: {**p, "audit_path": [flip_hex(p["audit_path"][0])] + p["audit_path"][1:]},
             "inclusion", f"The inclusion proof does not lead to the Merkle root of block {block}."),
            ("proof", lambda p: {**p, "block": {**p["block"], "header": {
                **p["block"]["header"], "timestamp": p["block"]["header"]["timestamp"].replace("+00:00", "Z")}}},
             "header", f"Block {block}’s header does not hash to its header hash."),
            ("proof", lambda p: {**p, "block": {**p["block"], "signature": flip_hex(p["block"]["signature"], 63)}},
             "header", "The block’s signature does not match the orderer’s key."),
            ("trust", lambda t: {**t, "orderer": {**t["orderer"], "public_key": flip_hex(t["orderer"]["public_key"], 5)}},
             "header", "The block’s signature does not match the orderer’s key."),
            ("checkpoint", flip_cosignature,
             "witnesses", "The cosignature of bank/witness does not match the witness’s key."),
            ("checkpoint", flip_orderer_line,
             "witnesses", "The checkpoint’s signature does not match the orderer’s key."),
            ("checkpoint", other_header_hash,
             "witnesses", f"The checkpoint does not cover block {block} and its header hash."),
            ("log_proof", lambda p: {**p, "proof": [flip_hex(p["proof"][0])] + p["proof"][1:]},
             "witnesses", f"This transaction is not in the ledger log that the checkpoint of block {block} commits to."),
            ("trust", lambda t: {**t, "orderer": {**t["orderer"], "quorum": 2}},
             "witnesses", "Witness cosignatures: only 1 valid, 2 required."),
            ("trust", lambda t: {**t, "witnesses": [{**w, "public_key": flip_hex(w["public_key"], 2)}
                                                    for w in t["witnesses"]]},
             "witnesses", "The cosignature of bank/witness does not match the witness’s key."),
        ]
        trust = world.trust(page)
        assert trust["orderer"] == base["orderer"] and trust["witnesses"] == [
            {"name": w["name"], "public_key": w["public_key"]} for w in base["witnesses"]]
        for name, mutate, check, failure in cases:
            page.unroute_all()
            world.pin(page, trust)
            if name == "trust":
                world.pin(page, mutate(copy.deepcopy(trust)))
            else:
                world.tamper(page, live_server.url, name, mutate(copy.deepcopy(base[name])))
            summary = verify(page, expect)
            expect(summary).to_have_attribute("data-outcome", "summary_failed")
            expect(summary).to_contain_text(failure)
            expect(page.locator(f'[data-check="{check}"]')).to_have_attribute("data-status", "failed")
            expect(page.locator(f'[data-check="{check}"]')).to_contain_text(failure)

        # The keys are the page's: an API that answers with an attacker's orderer key, witnesses
        # and quorum changes nothing, and a page that pins no key checks nothing.
        page.unroute_all()
        world.pin(page, trust)
        attacker = "ab" * 32
        world.tamper(page, live_server.url, "orderer", {**base["orderer"], "public_key": attacker, "quorum": 0})
        world.tamper(page, live_server.url, "witnesses", [{**w, "public_key": attacker} for w in base["witnesses"]])
        summary = verify(page, expect)
        expect(summary).to_have_attribute("data-outcome", "summary_genuine")
        page.unroute_all()
        world.pin(page, None)
        summary = verify(page, expect)
        expect(summary).to_have_attribute("data-outcome", "trust_missing")
        expect(summary).to_contain_text("This page carries no orderer key to check against")
        world.pin(page, trust)

        # Without a published checkpoint the first four checks still run; the fifth says what is missing.
        page.unroute_all()
        world.tamper(page, live_server.url, "checkpoint", {"detail": "Not found."}, status=404)
        summary = verify(page, expect)
        expect(summary).to_contain_text(f"No checkpoint of block {block} is published")
        for check in ("hash", "signature", "inclusion", "header"):
            expect(page.locator(f'[data-check="{check}"]')).to_have_attribute("data-status", "ok")
        expect(page.locator('[data-check="witnesses"]')).to_have_attribute("data-status", "failed")
        assert errors == ["Failed to load resource: the server responded with a status of 404 (Not Found)"], errors
        errors.clear()

        # The receipt carries the same check.
        page.unroute_all()
        page.goto(f"{live_server.url}/wallet/receipts/{tx_hash}/")
        summary = verify(page, expect)
        expect(summary).to_have_attribute("data-outcome", "summary_genuine")

        # A browser without Ed25519 in WebCrypto says so instead of passing or failing the signatures.
        page.add_init_script(NO_ED25519)
        page.reload()
        summary = verify(page, expect)
        expect(summary).to_have_attribute("data-outcome", "summary_incomplete")
        expect(summary).to_contain_text("This browser cannot check Ed25519 signatures")
        expect(page.locator('[data-check="hash"]')).to_have_attribute("data-status", "ok")
        expect(page.locator('[data-check="signature"]')).to_have_attribute("data-status", "unavailable")
        assert errors == [], errors



@pytest.mark.browser
def test_a_small_order_key_is_refused_though_webcrypto_accepts_it(live_server, monkeypatch):
    """Chromium's WebCrypto checks only the equation: under the neutral point as key, R = [a]B and
    S = a verify for every message. verify.js refuses it (and R of small order) as the ledger's
    rule says, and still accepts a genuine signature."""
    import hashlib

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    order = 2**252 + 27742317777372353535851937790883648493
    seed = bytes(range(32))
    clamped = bytearray(hashlib.sha512(seed).digest()[:32])
    clamped[0] &= 248
    clamped[31] = (clamped[31] & 127) | 64
    private = Ed25519PrivateKey.from_private_bytes(seed)
    public = private.public_key().public_bytes_raw()
    any_message = public + (int.from_bytes(clamped, "little") % order).to_bytes(32, "little")
    neutral = bytes([1]) + bytes(31)
    k = int.from_bytes(hashlib.sha512(neutral + public + b"m").digest(), "little") % order
    neutral_r = neutral + (k * int.from_bytes(clamped, "little") % order).to_bytes(32, "little")
    cases = {"neutral key": [neutral.hex(), any_message.hex()], "neutral R": [public.hex(), neutral_r.hex()],
             "genuine": [public.hex(), private.sign(b"m").hex()]}
    check = """async ([key, signature, strict]) => {
        const hex = (t) => new Uint8Array(t.match(/../g).map((x) => parseInt(x, 16)));
        const message = new TextEncoder().encode("m");
        if (!strict) {
          const imported = await crypto.subtle.importKey("raw", hex(key), {name: "Ed25519"}, false, ["verify"]);
          return crypto.subtle.verify({name: "Ed25519"}, imported, hex(signature), message);
        }
        const module = await import("/static/frontend/verify.js");
        return module.verifyEd25519(hex(key), hex(signature), message);
    }"""
    with phone_browser(monkeypatch) as context:
        page = context.new_page()
        page.goto(f"{live_server.url}/accounts/login/")
        webcrypto = {name: page.evaluate(check, [*args, False]) for name, args in cases.items()}
        assert webcrypto == {"neutral key": True, "neutral R": True, "genuine": True}
        strict = {name: page.evaluate(check, [*args, True]) for name, args in cases.items()}
        assert strict == {"neutral key": False, "neutral R": False, "genuine": True}
