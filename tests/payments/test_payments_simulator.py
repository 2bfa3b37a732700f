"""The payment simulator page (/payments/simulator/) and the webhook audit API, by persona:
Uma runs the utility, Betty works at the bank, Alice is a resident, Charlie is a stranger
(a producer's operator), anonymous is signed out."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.services import membership_create
from ledger import services as ledger
from ledger.models import Transaction
from payments.models import WebhookEvent
from payments.testing import build_market

URL = "/payments/simulator/"
API = "/api/v1/payments/events/"


@dataclass
class Cast:
    market: object
    clients: dict[str, Client]


@pytest.fixture
def cast(db, settings):
    market = build_market()
    users = get_user_model().objects
    people = {}
    for name, org in [("uma", market.utility), ("betty", market.bank), ("charlie", market.producer)]:
        user = users.create_user(username=name, password=f"{name}-password-1")
        membership_create(user=user, organisation=org)
        people[name] = user
    people["alice"] = market.resident
    clients = {}
    for name, user in people.items():
        clients[name] = Client()
        clients[name].force_login(user)
    clients["anonymous"] = Client()
    return Cast(market, clients)


def form(cast, **overrides) -> dict:
    data = {"payer": "hh-alice", "payee": "utility", "chaincode": "retail-seller", "bank": "testbank",
            "amount": "10.00", "currency": "INR"}
    data.update(overrides)
    return data


@pytest.mark.parametrize("who, status", [("uma", 200), ("betty", 200), ("alice", 200), ("charlie", 403)])
def test_who_may_open_the_simulator(cast, who, status):
    assert cast.clients[who].get(URL).status_code == status


def test_anonymous_is_sent_to_log_in(cast):
    response = cast.clients["anonymous"].get(URL)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert cast.clients["anonymous"].post(URL, form(cast)).status_code == 302
    assert WebhookEvent.objects.count() == 0


def test_operator_sends_a_signed_retail_payment_and_sees_the_transaction(cast):
    response = cast.clients["uma"].post(URL, form(cast, amount="10.01"))
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert (event.status, event.http_status, event.amount, event.provider) == ("applied", 200, 1001, "bank")
    assert event.signature_header.startswith("t=")  # it went through signature verification
    tx = Transaction.objects.get(tx_hash=event.tx_hash)
    assert tx.idempotency_key == f"payment:bank:testbank:{event.event_id}" and tx.invoker.qualified_name == "testbank/webhooks"
    page = response.content.decode()
    assert f'href="/explorer/tx/{tx.tx_hash}/"' in page
    assert "1.251 kWh" in page and "Payment applied" in page
    assert cast.market.household_balance() == 1251


def test_operator_sends_a_wholesale_payment(cast):
    cast.market.operate("token", "mint", {"to": "producer:sunfarm", "asset": "k", "amount": 10_000})
    response = cast.clients["uma"].post(URL, form(cast, payer="utility", payee="sunfarm", chaincode="wholesale-seller",
                                                  amount="5"))
    assert response.status_code == 200
    assert WebhookEvent.objects.get().result["wh"] == 1000


def test_refusals_are_shown_clearly(cast):
    response = cast.clients["uma"].post(URL, form(cast, payer="utility"))  # wrong type for retail
    assert response.status_code == 200
    assert "needs a household as payer" in response.content.decode()
    assert WebhookEvent.objects.get().http_status == 400
    assert cast.market.household_balance() == 0


def test_amount_is_decimal_major_units(cast):
    for bad in ["10.001", "-1", "abc", "0"]:
        response = cast.clients["uma"].post(URL, form(cast, amount=bad))
        assert response.status_code == 200
        assert "Payment applied" not in response.content.decode()
    assert WebhookEvent.objects.count() == 0


def test_htmx_post_gets_only_the_result(cast):
    response = cast.clients["uma"].post(URL, form(cast), headers={"HX-Request": "true"})
    page = response.content.decode()
    assert "Payment applied" in page and "<html" not in page


def test_resident_buys_coins_for_their_own_household(cast):
    client = cast.clients["alice"]
    page = client.get(URL + "?payer=hh-alice&chaincode=retail-seller").content.decode()
    assert 'value="hh-alice" selected' in page
    assert "wholesale-seller" not in page
    response = client.post(URL, form(cast, amount="8"))
    assert response.status_code == 200
    assert "Payment applied" in response.content.decode()
    assert cast.market.household_balance() == 1000


@pytest.mark.parametrize("overrides", [{"payer": "hh-bob"}, {"payer": "utility", "payee": "sunfarm",
                                                            "chaincode": "wholesale-seller"},
                                       {"chaincode": "wholesale-seller"}])
def test_resident_cannot_pay_for_anyone_else(cast, overrides):
    cast.market.add_household("hh-bob")
    response = cast.clients["alice"].post(URL, form(cast, **overrides))
    assert response.status_code == 403
    assert WebhookEvent.objects.count() == 0


def test_stranger_cannot_post(cast):
    assert cast.clients["charlie"].post(URL, form(cast)).status_code == 403
    assert WebhookEvent.objects.count() == 0


def test_bank_staff_sign_only_as_their_bank(cast):
    other = ledger.organisation_create(msp_id="otherbank", name="Other", org_type="bank")
    from payments.services import bank_secret_create
    bank_secret_create(organisation=other, label="k1")
    response = cast.clients["betty"].post(URL, form(cast, bank="otherbank"))
    assert response.status_code == 200
    assert WebhookEvent.objects.count() == 0  # not a choice for Betty: form error, nothing sent
    assert cast.clients["uma"].post(URL, form(cast, bank="otherbank")).status_code == 200
    assert WebhookEvent.objects.get().organisation == other


def test_method_not_allowed(cast):
    assert cast.clients["uma"].put(URL).status_code == 405


# --- the audit API ------------------------------------------------------------------------

def test_audit_api_by_persona(cast):
    cast.market.deliver(cast.market.notification())
    cast.market.deliver(cast.market.notification(), secrets=["forged"])
    uma = cast.clients["uma"].get(API)
    assert uma.status_code == 200 and uma.json()["count"] == 2
    betty = cast.clients["betty"].get(API)
    assert betty.status_code == 200 and betty.json()["count"] == 1  # the forgery names no bank
    assert betty.json()["results"][0]["bank"] == "testbank"
    assert cast.clients["uma"].get(API + "?status=rejected").json()["count"] == 1
    assert cast.clients["alice"].get(API).status_code == 403
    assert cast.clients["charlie"].get(API).status_code == 403
    assert cast.clients["anonymous"].get(API).status_code == 403
    assert cast.clients["uma"].post(API, {}).status_code == 405


def test_audit_api_is_in_the_schema(cast):
    schema = cast.clients["uma"].get("/api/schema/").content.decode()
    assert "/api/v1/payments/events/" in schema


def test_admin_lists_the_audit_read_only(cast):
    uma = get_user_model().objects.get(username="uma")
    uma.is_staff = uma.is_superuser = True
    uma.save()
    cast.market.deliver(cast.market.notification(id="admin-evt"))
    page = cast.clients["uma"].get("/admin/payments/webhookevent/?q=admin-evt")
    assert page.status_code == 200 and "admin-evt" in page.content.decode()
    assert cast.clients["uma"].get("/admin/payments/webhookevent/add/").status_code == 403
