"""Stripe events for tests: the fixtures in payments/fixtures, signed the way Stripe signs
(``Stripe-Signature: t=<unix>,v1=HMAC-SHA256(secret, "<t>.<payload>")``), and the checks every
lifecycle test ends with."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from pathlib import Path

from django.db.models import Sum

from ledger.models import Account
from ledger.verify import verify_chain

FIXTURES = Path(__file__).resolve().parents[2] / "payments" / "fixtures"
SECRETS = ["whsec_test_current", "whsec_test_next"]
_cache: dict[str, dict] = {}


def fixture(event_type: str) -> dict:
    if event_type not in _cache:
        _cache[event_type] = json.loads((FIXTURES / f"{event_type}.json").read_text())
    return copy.deepcopy(_cache[event_type])


def stripe_header(payload: bytes, secret: str = SECRETS[0], t: int | None = None) -> str:
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def post(client, event: dict | bytes, *, secret: str = SECRETS[0], header: str | None = None, t: int | None = None):
    payload = event if isinstance(event, bytes) else json.dumps(event).encode()
    sig = header if header is not None else stripe_header(payload, secret, t)
    return client.post("/webhooks/stripe/", data=payload, content_type="application/json",
                       headers={"Stripe-Signature": sig})


def event_for(event_type: str, *, event_id: str, payment_intent: str, **fields) -> dict:
    """A fixture event re-pointed at ``payment_intent`` under a new event id, with ``fields``
    set on its object."""
    event = fixture(event_type)
    event["id"] = event_id
    obj = event["data"]["object"]
    if obj["object"] == "payment_intent":
        obj["id"] = payment_intent
    else:
        obj["payment_intent"] = payment_intent
    obj.update(fields)
    return event


def assert_conserved_and_verified() -> None:
    """Every asset's holdings equal what its issuance account issued, and the chain replays."""
    for asset in Account.objects.values_list("asset_id", flat=True).distinct():
        held = Account.objects.filter(asset_id=asset).exclude(kind="issuance").aggregate(s=Sum("balance"))["s"] or 0
        issued = Account.objects.filter(asset_id=asset, kind="issuance").aggregate(s=Sum("balance"))["s"] or 0
        assert held == -issued, (asset, held, issued)
        assert not Account.objects.filter(asset_id=asset, balance__lt=0).exclude(kind="issuance").exists()
    report = verify_chain()
    assert report.ok, [str(p) for p in report.problems]
