"""Deliveries: the e-mail a resident gets, their preferences honoured, and a task that retries
or runs twice never sending twice."""

from __future__ import annotations

import smtplib
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from notifications import sending, services
from notifications.models import Channel, Delivery, DeliveryStatus, Kind, Notification, Preference
from notifications.tasks import MAX_RETRIES, deliver_notification


def notify(world, run, *, users=None, key="payment-credited:41", kind=Kind.PAYMENT_CREDITED, data=None):
    return run(services.notifications_create, kind=kind, event_key=key,
               user_ids=[u.pk for u in (users or [world.alice.user])], data=data or {"wh": 1251, "payment": 41},
               url="/wallet/")


def test_the_payment_email_says_what_landed_and_where_to_look(world, run_after_commit, mailoutbox, settings):
    settings.GRIDCOIN_PUBLIC_URL = "https://grid.example.org"
    notify(world, run_after_commit)
    [message] = mailoutbox
    assert message.to == ["alice@example.org"]
    assert message.subject == "GridCoin: Your payment has landed"
    assert "Hello alice," in message.body
    assert "1.251 kWh were added to your wallet." in message.body
    assert "https://grid.example.org/wallet/" in message.body
    assert "https://grid.example.org/notifications/settings/" in message.body
    assert message.extra_headers["X-GridCoin-Event"] == "payment-credited:41"


def test_the_device_email_names_the_device(world, run_after_commit, mailoutbox):
    notify(world, run_after_commit, kind=Kind.DEVICE_LOW, key="device-low:HM-ALICE:1",
           data={"device": "HM-ALICE", "device_name": "Alice's meter", "spendable_wh": 420})
    [message] = mailoutbox
    assert message.subject == "GridCoin: Alice's meter is running low"
    assert "Only 0.420 kWh left." in message.body


def test_a_user_without_an_address_is_skipped(world, run_after_commit, mailoutbox):
    world.alice.user.email = ""
    world.alice.user.save()
    notify(world, run_after_commit)
    assert mailoutbox == [] and not Delivery.objects.exists()
    assert Notification.objects.get().in_app


# An uncompressed P-256 point (the generator of the curve), as a browser's p256dh key.
P256DH = "BGsX0fLhLEJH-Lzm5WOkQPJ3A32BLeszoPShOUXYmMKWT-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"


def test_preferences_turn_channels_off_per_kind(world, run_after_commit, mailoutbox,
                                                django_capture_on_commit_callbacks):
    services.preferences_set(user=world.alice.user, enabled={
        (Kind.PAYMENT_CREDITED, Channel.IN_APP), (Kind.DEVICE_OFF, Channel.EMAIL), (Kind.DEVICE_OFF, Channel.IN_APP),
        (Kind.DEVICE_LOW, Channel.PUSH)})
    notify(world, run_after_commit)  # payment: in-app only
    notification = Notification.objects.get()
    assert notification.in_app and not notification.deliveries.exists() and mailoutbox == []
    notify(world, run_after_commit, kind=Kind.DEVICE_OFF, key="device-off:HM-ALICE:1", data={"device": "HM-ALICE"})
    assert len(mailoutbox) == 1
    # Low by push only: recorded (off the list) once a browser of hers is subscribed.
    notify(world, run_after_commit, kind=Kind.DEVICE_LOW, key="device-low:HM-ALICE:1", data={"device": "HM-ALICE"})
    assert not Notification.objects.filter(kind=Kind.DEVICE_LOW).exists()
    services.push_subscription_save(user=world.alice.user, endpoint="https://push.test/alice", p256dh=P256DH,
                                    auth="A" * 22)
    with django_capture_on_commit_callbacks(execute=False):  # not sent: no push service here
        services.notifications_create(kind=Kind.DEVICE_LOW, event_key="device-low:HM-ALICE:2",
                                      user_ids=[world.alice.user.pk], data={"device": "HM-ALICE"})
    low = Notification.objects.get(kind=Kind.DEVICE_LOW)
    assert not low.in_app and [d.channel for d in low.deliveries.all()] == [Channel.PUSH]
    # Bob has chosen nothing: everything on.
    notify(world, run_after_commit, users=[world.bob.user], key="payment-credited:42")
    assert len(mailoutbox) == 2


def test_every_channel_off_records_nothing(world, run_after_commit, mailoutbox):
    services.preferences_set(user=world.alice.user, enabled=set())
    assert notify(world, run_after_commit) == []
    assert Notification.objects.count() == 0 and mailoutbox == []


def test_a_channel_turned_off_before_sending_is_not_sent(world, django_capture_on_commit_callbacks, mailoutbox):
    with django_capture_on_commit_callbacks(execute=False) as queued:
        services.notifications_create(kind=Kind.PAYMENT_CREDITED, event_key="payment-credited:43",
                                      user_ids=[world.alice.user.pk], data={"wh": 1})
    Preference.objects.create(user=world.alice.user, kind=Kind.PAYMENT_CREDITED, channel=Channel.EMAIL, enabled=False)
    for callback in queued:
        callback()
    assert mailoutbox == []
    assert Delivery.objects.get(channel=Channel.EMAIL).status == DeliveryStatus.SKIPPED


def test_the_settings_page_saves_choices(world):
    client = Client()
    client.force_login(world.alice.user)
    page = client.get("/notifications/settings/")
    assert page.status_code == 200
    assert page.content.count(b'type="checkbox"') == 9 and b"checked" in page.content
    response = client.post("/notifications/settings/", {"on": ["device_off:push", "payment_credited:email"]})
    assert response.status_code == 302
    chosen = {pair for pair, on in services.selectors.preferences_for(world.alice.user).items() if on}
    assert chosen == {("device_off", "push"), ("payment_credited", "email")}
    refused = client.post("/notifications/settings/", {"on": ["device_off:fax"]}, follow=True)
    assert b"Unknown notification choice" in refused.content
    assert {pair for pair, on in services.selectors.preferences_for(world.alice.user).items() if on} == chosen


class FlakySMTP:
    """The e-mail backend's send: fails ``failures`` times, then sends."""

    def __init__(self, monkeypatch, failures: int):
        self.failures = failures
        self.calls = 0
        original = mail.EmailMessage.send

        def send(message, fail_silently=False):
            self.calls += 1
            if self.calls <= self.failures:
                raise smtplib.SMTPServerDisconnected("connection lost")
            return original(message, fail_silently)

        monkeypatch.setattr(mail.EmailMessage, "send", send)


def test_a_failing_send_is_retried_and_sent_once(world, run_after_commit, mailoutbox, monkeypatch, worker_retries):
    smtp = FlakySMTP(monkeypatch, failures=2)
    notify(world, run_after_commit)
    delivery = Delivery.objects.get(channel=Channel.EMAIL)
    assert (delivery.status, delivery.attempts, smtp.calls, len(mailoutbox)) == (DeliveryStatus.SENT, 3, 3, 1)
    # A duplicate of the task (redelivered by the broker, or queued twice) sends nothing.
    deliver_notification.delay(delivery.pk)
    deliver_notification.apply(args=[delivery.pk])
    assert (smtp.calls, len(mailoutbox)) == (3, 1)


def test_a_send_that_keeps_failing_is_given_up(world, run_after_commit, mailoutbox, monkeypatch, worker_retries):
    smtp = FlakySMTP(monkeypatch, failures=100)
    notify(world, run_after_commit)
    delivery = Delivery.objects.get(channel=Channel.EMAIL)
    assert delivery.status == DeliveryStatus.FAILED and "SMTPServerDisconnected" in delivery.last_error
    assert smtp.calls == delivery.attempts == MAX_RETRIES + 1 and mailoutbox == []


def test_in_process_a_failed_send_waits_for_the_sweep(world, run_after_commit, mailoutbox, monkeypatch):
    """The embedded default: tasks run in-process and errors propagate, so a failed attempt is
    not retried on the spot (it would hold the request); the sweep sends it a little later."""
    smtp = FlakySMTP(monkeypatch, failures=1)
    notify(world, run_after_commit)  # the failure is logged by the on-commit hook, the request goes on
    delivery = Delivery.objects.get(channel=Channel.EMAIL)
    assert (delivery.status, delivery.attempts, mailoutbox) == (DeliveryStatus.PENDING, 1, [])
    assert services.deliveries_resend_due() == 0  # not yet: it waits before trying again
    later = timezone.now() + services.resend_wait(1) + timedelta(seconds=1)
    assert services.deliveries_resend_due(now=later) == 1
    assert (Delivery.objects.get(pk=delivery.pk).status, smtp.calls, len(mailoutbox)) == (DeliveryStatus.SENT, 2, 1)
    assert services.deliveries_resend_due(now=later + timedelta(hours=2)) == 0


def test_the_sweep_takes_over_lost_tasks(world, django_capture_on_commit_callbacks, mailoutbox):
    with django_capture_on_commit_callbacks(execute=False):  # the broker lost the queued tasks
        for key in ("payment-credited:45", "payment-credited:47"):
            services.notifications_create(kind=Kind.PAYMENT_CREDITED, event_key=key, user_ids=[world.alice.user.pk],
                                          data={"wh": 1})
    never_tried, claimed = Delivery.objects.order_by("id")
    # A worker claimed the second one and died.
    Delivery.objects.filter(pk=claimed.pk).update(status=DeliveryStatus.SENDING, attempts=1, claimed_at=timezone.now())
    assert services.deliveries_resend_due() == 0
    past = timezone.now() - services.DELIVERY_CLAIM_TIMEOUT - timedelta(seconds=1)
    Delivery.objects.filter(pk=claimed.pk).update(claimed_at=past)
    Notification.objects.update(created_at=past)
    assert services.deliveries_resend_due() == 2
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT}
    assert len(mailoutbox) == 2


def test_a_delivery_claimed_by_another_task_is_left_to_it(world, django_capture_on_commit_callbacks, mailoutbox):
    with django_capture_on_commit_callbacks(execute=False):
        services.notifications_create(kind=Kind.PAYMENT_CREDITED, event_key="payment-credited:44",
                                      user_ids=[world.alice.user.pk], data={"wh": 1})
    delivery = Delivery.objects.get(channel=Channel.EMAIL)
    claimed = sending._claim(delivery.pk)
    assert claimed is not None
    assert services.delivery_send(delivery_id=delivery.pk, final_attempt=False) == ""
    assert mailoutbox == []


@pytest.mark.parametrize("missing", [10**9])
def test_a_task_for_a_vanished_delivery_does_nothing(db, missing):
    assert deliver_notification.apply(args=[missing]).get() == ""


def test_an_unexpected_error_is_left_to_the_sweep_and_given_up_after_the_last_attempt(
        world, django_capture_on_commit_callbacks, mailoutbox, monkeypatch):
    with django_capture_on_commit_callbacks(execute=False):
        services.notifications_create(kind=Kind.PAYMENT_CREDITED, event_key="payment-credited:46",
                                      user_ids=[world.alice.user.pk], data={"wh": 1})
    delivery = Delivery.objects.get(channel=Channel.EMAIL)

    def broken(message, fail_silently=False):
        raise RuntimeError("template engine exploded")

    monkeypatch.setattr(mail.EmailMessage, "send", broken)
    with pytest.raises(RuntimeError):
        services.delivery_send(delivery_id=delivery.pk, final_attempt=False)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
    assert "template engine exploded" in delivery.last_error
    Delivery.objects.filter(pk=delivery.pk).update(attempts=services.MAX_ATTEMPTS)
    assert services.delivery_send(delivery_id=delivery.pk, final_attempt=False) == ""
    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.FAILED and mailoutbox == []
