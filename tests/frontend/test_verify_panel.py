"""The "Verify" panel as the server renders it (the checks themselves run in the browser:
test_verify_browser.py): on a sealed transaction's page and receipt, the button with the API
prefix, the transaction's hash, the translated texts and the pinned keys as JSON; on an unsealed one, a note
instead; and no inline executable script (CSP)."""

from __future__ import annotations

import json
import re

import pytest

from tests.personas import build_world


@pytest.fixture
def world(db, settings):
    return build_world(settings)


def _panel(html: str) -> str | None:
    found = re.search(r"<div data-verify [^>]*>", html)
    return found.group(0) if found else None


def _texts(html: str) -> dict:
    found = re.search(r'<script id="verify-texts" type="application/json">(.*?)</script>', html, re.S)
    assert found, "no verify texts"
    return json.loads(found.group(1))


def _no_inline_script(html: str) -> None:
    for tag, body in re.findall(r"(<script[^>]*>)(.*?)</script>", html, re.S):
        assert 'src="' in tag or 'type="application/json"' in tag, tag
        assert 'src="' not in tag or not body.strip(), tag


@pytest.mark.parametrize("page", ["frontend:transaction", "frontend:receipt"])
def test_a_sealed_transaction_has_the_verify_button(client, world, page):
    from django.urls import reverse

    client.force_login(world.alice.user)
    tx_hash = world.tx["alice_to_charlie"]
    html = client.get(reverse(page, args=[tx_hash])).content.decode()
    panel = _panel(html)
    assert panel is not None
    assert f'data-tx-hash="{tx_hash}"' in panel and 'data-api="/api/v1/ledger/"' in panel
    assert re.search(r'<button type="button" class="button primary block" data-verify-button>Verify</button>', html)
    assert 'aria-live="polite"' in html
    assert re.search(r'<script type="module" src="[^"]*frontend/verify\.js"></script>', html)
    texts = _texts(html)
    assert texts["header_signature_bad"] == "The block’s signature does not match the orderer’s key."
    assert "%(invoker)s" in texts["summary_genuine"]
    # The keys the check trusts come with the page, not with the API answers it checks.
    assert 'data-trust="verify-trust"' in panel
    found = re.search(r'<script id="verify-trust" type="application/json">(.*?)</script>', html, re.S)
    assert found, "no pinned keys"
    from ledger import log
    from ledger.sealing import orderer_public_hex

    assert json.loads(found.group(1)) == {
        "orderer": {"public_key": orderer_public_hex(), "origin": log.origin(), "quorum": log.quorum()},
        "witnesses": [{"name": w.qualified_name, "public_key": bytes(w.public_key).hex()} for w in log.witnesses()]}
    _no_inline_script(html)


def test_an_unsealed_transaction_says_when_it_can_be_verified(client, world):
    from django.urls import reverse

    client.force_login(world.alice.user)
    html = client.get(reverse("frontend:transaction", args=[world.tx["unsealed"]])).content.decode()
    assert _panel(html) is None
    assert "It can be verified once it is sealed into a block" in html
    assert "verify.js" not in html
