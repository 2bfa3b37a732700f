"""A resident on a 390×844 phone: the bell in the top bar counts unread notifications, the list
shows them and marks them read, the settings page offers push; a push delivered to the service
worker (DevTools protocol) is shown by sw-push.js with the event as its tag."""

from __future__ import annotations

import json

import pytest

from notifications import services
from notifications.models import Kind
from tests.frontend.test_browser_phone import PHONE, phone_browser, tap_size
from tests.meters_world import build_meter_world


@pytest.fixture
def phone_context(monkeypatch):
    with phone_browser(monkeypatch) as context:
        yield context


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_bell_list_and_push_on_a_phone(live_server, settings, phone_context, tmp_path):
    from playwright.sync_api import expect

    settings.DATA_DIR = tmp_path
    settings.GRIDCOIN_VAPID_PRIVATE_KEY = ""
    world = build_meter_world(settings)
    for key, kind, data in [
        ("payment-credited:1", Kind.PAYMENT_CREDITED, {"wh": 2500}),
        ("device-off:HM-ALICE:1", Kind.DEVICE_OFF, {"device": "HM-ALICE", "device_name": "Alice's meter"}),
    ]:
        services.notifications_create(kind=kind, event_key=key, user_ids=[world.alice.user.pk], data=data,
                                      url="/wallet/")

    page = phone_context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "alice-password-1")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    bell = page.get_by_role("link", name="Notifications, 2 unread")
    expect(bell).to_be_visible()
    expect(page.locator(".bell-count")).to_have_text("2")
    width, height = tap_size(page, ".bell")
    assert width >= 44 and height >= 44
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    bell.click()
    page.wait_for_url(f"{live_server.url}/notifications/")
    items = page.locator(".notif-item")
    expect(items).to_have_count(2)
    expect(items.first).to_contain_text("Alice's meter switched off")
    expect(items.nth(1)).to_contain_text("2.500 kWh were added to your wallet.")
    assert tap_size(page, ".notif-read")[1] >= 44
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    items.first.get_by_role("button", name="Mark as read").click()
    expect(page.locator(".bell-count")).to_have_text("1")
    expect(page.locator(".notif-unread")).to_have_count(1)

    page.get_by_role("link", name="Choose what you are told").click()
    page.wait_for_url(f"{live_server.url}/notifications/settings/")
    expect(page.locator("#push-status")).to_have_text("Notifications are off for this phone.")
    expect(page.get_by_role("button", name="Turn on notifications on this phone")).to_be_visible()
    assert tap_size(page, ".notif-choice")[1] >= 44
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # Nothing asked the browser for permission before the button was pressed.
    assert page.evaluate("Notification.permission") == "default"

    # The worker's push handler (sw-push.js) shows what the server pushed.
    phone_context.grant_permissions(["notifications"], origin=live_server.url)
    cdp = phone_context.new_cdp_session(page)
    registrations: list[dict] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda event: registrations.extend(event["registrations"]))
    cdp.send("ServiceWorker.enable")
    page.evaluate("navigator.serviceWorker.register('/sw.js', {scope: '/'}).then(() => navigator.serviceWorker.ready)"
                  ".then(() => true)")
    ours = [r for r in registrations if r["scopeURL"] == f"{live_server.url}/" and not r["isDeleted"]]
    for _ in range(100):  # CDP events arrive with the next round trips
        if ours:
            break
        page.evaluate("1")
        ours = [r for r in registrations if r["scopeURL"] == f"{live_server.url}/" and not r["isDeleted"]]
    registration = ours[0]
    payload = {"id": 1, "event": "payment-credited:1", "kind": "payment_credited", "title": "Your payment has landed",
               "body": "2.500 kWh were added to your wallet.", "url": "/wallet/"}
    cdp.send("ServiceWorker.deliverPushMessage", {"origin": live_server.url,
                                                  "registrationId": registration["registrationId"],
                                                  "data": json.dumps(payload)})
    page.wait_for_function("navigator.serviceWorker.ready.then(r => r.getNotifications())"
                           ".then(ns => ns.length > 0)", polling=200)
    shown = page.evaluate("navigator.serviceWorker.ready.then(r => r.getNotifications())"
                          ".then(ns => ns.map(n => ({title: n.title, body: n.body, tag: n.tag, data: n.data})))")
    assert shown == [{"title": "Your payment has landed", "body": "2.500 kWh were added to your wallet.",
                      "tag": "payment-credited:1", "data": {"url": f"{live_server.url}/wallet/"}}]
