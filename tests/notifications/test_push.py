"""Web Push end to end against a local push service: the browser's subscription is kept
through the subscribe endpoint, a credited payment is pushed to it with a VAPID signature and
an aes128gcm payload that the subscription's own key decrypts; retries send once; a
subscription the push service says is gone (404/410) is removed."""

from __future__ import annotations

import json
import stat

import pytest
from django.test import Client

from notifications import push, services
from notifications.models import Channel, Delivery, DeliveryStatus, Kind, Notification, PushSubscription
from notifications.tasks import deliver_notification
from payments.models import Payment
from payments.testing import build_market
from tests.notifications.push_service import BrowserSubscription, start_push_service, verified_vapid


@pytest.fixture
def push_service():
    service = start_push_service()
    yield service
    service.server.shutdown()
    service.server.server_close()


@pytest.fixture
def market(db, settings, tmp_path):
    settings.DATA_DIR = tmp_path  # a VAPID key of this test's own, generated on first use
    settings.GRIDCOIN_VAPID_PRIVATE_KEY = ""
    settings.GRIDCOIN_VAPID_SUBJECT = "mailto:ops@grid.example.org"
    return build_market()


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def subscribe(client: Client, browser: BrowserSubscription):
    return client.post("/notifications/push/subscribe/", data=json.dumps(browser.to_json()),
                       content_type="application/json")


def pay(market, run, event_id: str):
    response = run(market.deliver, market.notification(id=event_id, amount=1001))
    assert response.json()["status"] == "applied", response.content
    return Payment.objects.get(payment_id=event_id)


def test_a_payment_is_pushed_signed_and_encrypted_for_the_subscription(market, push_service, run_after_commit):
    browser = BrowserSubscription.create(push_service.endpoint("alice-phone"))
    assert subscribe(signed_in(market.resident), browser).status_code == 201
    payment = pay(market, run_after_commit, "pay-push-1")

    [message] = push_service.received
    assert message.path == "/push/alice-phone" and message.status == 201
    key, claims = verified_vapid(message, push_service.origin)
    assert key == push.application_server_key()  # the key browsers subscribed with
    assert claims["sub"] == "mailto:ops@grid.example.org"
    assert int(message.headers["ttl"]) > 0
    payload = browser.decrypt(message)
    assert payload["event"] == f"payment-credited:{payment.pk}"
    assert payload["kind"] == Kind.PAYMENT_CREDITED and payload["title"] == "Your payment has landed"
    assert payload["body"] == "1.251 kWh were added to your wallet." and payload["url"] == "/wallet/"
    delivery = Delivery.objects.get(channel=Channel.PUSH)
    assert delivery.status == DeliveryStatus.SENT and delivery.sent_to == [PushSubscription.objects.get().pk]
    # The same task again (a duplicate from the broker) pushes nothing.
    deliver_notification.apply(args=[delivery.pk])
    assert len(push_service.received) == 1


def test_a_busy_push_service_is_retried_and_gets_it_once(market, push_service, run_after_commit, worker_retries):
    browser = BrowserSubscription.create(push_service.endpoint("alice-phone"))
    subscribe(signed_in(market.resident), browser)
    push_service.answers.extend([503, 429])
    payment = pay(market, run_after_commit, "pay-push-2")
    assert [r.status for r in push_service.received] == [503, 429, 201]
    [accepted] = push_service.accepted()
    assert browser.decrypt(accepted)["event"] == f"payment-credited:{payment.pk}"
    delivery = Delivery.objects.get(channel=Channel.PUSH)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 3)
    deliver_notification.delay(delivery.pk)
    assert len(push_service.received) == 3


def test_a_retry_skips_the_phones_already_reached(market, push_service, run_after_commit, worker_retries):
    client = signed_in(market.resident)
    phone, tablet = (BrowserSubscription.create(push_service.endpoint(name)) for name in ("phone", "tablet"))
    subscribe(client, phone)
    subscribe(client, tablet)
    push_service.answers.extend([201, 503])  # the phone gets it, the tablet's service is busy once
    pay(market, run_after_commit, "pay-push-3")
    assert [(r.path, r.status) for r in push_service.received] == [
        ("/push/phone", 201), ("/push/tablet", 503), ("/push/tablet", 201)]


@pytest.mark.parametrize("gone", [404, 410])
def test_a_subscription_that_is_gone_is_removed(market, push_service, run_after_commit, gone):
    client = signed_in(market.resident)
    old, new = (BrowserSubscription.create(push_service.endpoint(name)) for name in ("old", "new"))
    subscribe(client, old)
    subscribe(client, new)
    push_service.answers.append(gone)
    pay(market, run_after_commit, "pay-push-4")
    assert list(PushSubscription.objects.values_list("endpoint", flat=True)) == [new.endpoint]
    assert Delivery.objects.get(channel=Channel.PUSH).status == DeliveryStatus.SENT
    assert [r.path for r in push_service.accepted()] == ["/push/new"]


def test_only_gone_subscriptions_fail_the_delivery(market, push_service, run_after_commit):
    subscribe(signed_in(market.resident), BrowserSubscription.create(push_service.endpoint("old")))
    push_service.answers.append(410)
    pay(market, run_after_commit, "pay-push-5")
    assert PushSubscription.objects.count() == 0
    delivery = Delivery.objects.get(channel=Channel.PUSH)
    assert delivery.status == DeliveryStatus.FAILED and "gone" in delivery.last_error


def test_push_turned_off_sends_nothing(market, push_service, run_after_commit):
    subscribe(signed_in(market.resident), BrowserSubscription.create(push_service.endpoint("phone")))
    services.preferences_set(user=market.resident, enabled={(Kind.PAYMENT_CREDITED, Channel.IN_APP)})
    pay(market, run_after_commit, "pay-push-6")
    assert push_service.received == [] and Notification.objects.get().in_app


def test_subscribing_checks_what_the_browser_sends(market, push_service):
    client = signed_in(market.resident)
    good = BrowserSubscription.create(push_service.endpoint("phone")).to_json()
    short_key = {**good, "keys": {**good["keys"], "p256dh": good["keys"]["p256dh"][:40]}}
    for bad in [short_key, {**good, "keys": {**good["keys"], "auth": "!!"}}, {**good, "endpoint": "ftp://x/y"},
                {"endpoint": good["endpoint"]}]:
        response = client.post("/notifications/push/subscribe/", data=json.dumps(bad), content_type="application/json")
        assert response.status_code == 400, bad
    assert client.post("/notifications/push/subscribe/", data=b"not json",
                       content_type="application/json").status_code == 400
    assert Client().post("/notifications/push/subscribe/", data=json.dumps(good),
                         content_type="application/json").status_code == 401
    assert client.get("/notifications/push/subscribe/").status_code == 405
    assert PushSubscription.objects.count() == 0


def test_production_accepts_only_https_push_services(market, settings):
    settings.PRODUCTION = True
    with pytest.raises(services.NotificationError):
        services.push_subscription_save(user=market.resident, **_fields(BrowserSubscription.create("http://push.test/x")))
    services.push_subscription_save(user=market.resident, **_fields(BrowserSubscription.create("https://push.test/x")))


def test_only_the_configured_push_services_are_accepted(market, settings):
    """The server posts to the endpoint: a user must not aim it at an address inside the network."""
    settings.GRIDCOIN_PUSH_SERVICE_HOSTS = ["fcm.googleapis.com", ".push.apple.com"]
    for endpoint in ["https://10.0.0.5/x", "https://fcm.googleapis.com.evil.test/x", "https://localhost/x",
                     "https://push.apple.com.example/x"]:
        with pytest.raises(services.NotificationError):
            services.push_subscription_save(user=market.resident, **_fields(BrowserSubscription.create(endpoint)))
    for endpoint in ["https://fcm.googleapis.com/fcm/send/abc", "https://web.push.apple.com/QAbc"]:
        services.push_subscription_save(user=market.resident, **_fields(BrowserSubscription.create(endpoint)))
    assert PushSubscription.objects.count() == 2


def _fields(browser: BrowserSubscription) -> dict:
    data = browser.to_json()
    return {"endpoint": data["endpoint"], "p256dh": data["keys"]["p256dh"], "auth": data["keys"]["auth"]}


def test_unsubscribing_removes_only_ones_own(market, push_service):
    alice = signed_in(market.resident)
    browser = BrowserSubscription.create(push_service.endpoint("phone"))
    subscribe(alice, browser)
    other = get_or_create_user("mallory")
    assert signed_in(other).post("/notifications/push/unsubscribe/", data=json.dumps({"endpoint": browser.endpoint}),
                                 content_type="application/json").json() == {"status": "unknown"}
    assert PushSubscription.objects.count() == 1
    assert alice.post("/notifications/push/unsubscribe/", data=json.dumps({"endpoint": browser.endpoint}),
                      content_type="application/json").json() == {"status": "unsubscribed"}
    assert PushSubscription.objects.count() == 0


def get_or_create_user(username: str):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(username=username, password=f"{username}-password-1")


def test_the_vapid_key_is_generated_once_into_the_data_directory(market, settings, tmp_path):
    key = push.application_server_key()
    path = tmp_path / push.VAPID_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert push.application_server_key() == key and len(push.b64url_decode(key)) == 65
    settings.GRIDCOIN_VAPID_PRIVATE_KEY = path.read_text()  # as production passes it
    assert push.application_server_key() == key


def test_production_without_a_vapid_key_has_no_push(market, settings):
    settings.PRODUCTION = True
    assert push.vapid() is None and push.application_server_key() is None
    page = signed_in(market.resident).get("/notifications/settings/")
    assert b'"publicKey": null' in page.content


def test_a_malformed_vapid_key_is_refused_clearly(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.GRIDCOIN_VAPID_PRIVATE_KEY = "not-a-key"
    with pytest.raises(ImproperlyConfigured, match="GRIDCOIN_VAPID_PRIVATE_KEY"):
        push.vapid()
