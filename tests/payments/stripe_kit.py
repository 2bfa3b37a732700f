"""Stripe events for tests: the fixtures in payments/fixtures, signed the way Stripe signs
(``Stripe-Signature: t=<unix>,v1=HMAC-SHA256(secret, "<t>.<payload>")``), the checks every
lifecycle test ends with, and Stripe's refunds API faked at the HTTP client (no network)."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import stripe
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


class FakeStripeAPI(stripe.HTTPClient):
    """Stripe's refunds API in memory, at the stripe library's HTTP client level (install as
    ``stripe.default_http_client``): ``POST /v1/refunds`` makes a refund once per
    ``Idempotency-Key`` (a repeat replays the first answer, as Stripe does), ``GET /v1/refunds``
    lists a PaymentIntent's refunds. ``fail_next`` answers the next request 500; ``decline``
    answers every create 400 (e.g. the charge is already refunded)."""

    name = "fake"

    def __init__(self) -> None:
        super().__init__()
        self.refunds: list[dict] = []
        self.by_key: dict[str, dict] = {}
        self.requests: list[tuple[str, str, dict]] = []
        self.fail_next = 0
        self.decline = ""
        self.status = "succeeded"

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        form = {k: v[0] for k, v in parse_qs(post_data or "").items()}
        self.requests.append((method.upper(), parts.path, {**query, **form}))
        if self.fail_next:
            self.fail_next -= 1
            return json.dumps({"error": {"type": "api_error", "message": "try again"}}), 500, {}
        if parts.path == "/v1/refunds" and method.lower() == "get":
            data = [r for r in self.refunds if r["payment_intent"] == query.get("payment_intent")]
            return json.dumps({"object": "list", "data": data, "has_more": False, "url": "/v1/refunds"}), 200, {}
        if parts.path == "/v1/refunds" and method.lower() == "post":
            key = dict(headers or {}).get("Idempotency-Key", "")
            if key in self.by_key:
                return json.dumps(self.by_key[key]), 200, {"Idempotent-Replayed": "true"}
            if self.decline:
                return json.dumps({"error": {"type": "invalid_request_error", "code": self.decline,
                                             "message": f"refused: {self.decline}"}}), 400, {}
            refund = {"id": f"re_fake{len(self.refunds) + 1}", "object": "refund", "amount": int(form["amount"]),
                      "payment_intent": form["payment_intent"], "currency": "inr", "status": self.status,
                      "failure_reason": None,
                      "metadata": {k[len("metadata["):-1]: v for k, v in form.items() if k.startswith("metadata[")}}
            self.refunds.append(refund)
            self.by_key[key] = refund
            return json.dumps(refund), 200, {}
        return json.dumps({"error": {"type": "invalid_request_error", "message": "no such route"}}), 404, {}

    def request_stream(self, method, url, headers, post_data=None, *, _usage=None):
        raise NotImplementedError

    def created(self) -> list[tuple[str, str, dict]]:
        return [r for r in self.requests if r[0] == "POST" and r[1] == "/v1/refunds"]
