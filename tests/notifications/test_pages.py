"""/notifications/: the list, the unread badge in the top bar, marking read; each user sees
and marks only their own (Alice owns, Charlie is a stranger)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from notifications import services
from notifications.models import Kind, Notification


def signed_in(persona) -> Client:
    client = Client()
    client.force_login(persona.user)
    return client


@pytest.fixture
def told(world, run_after_commit):
    def tell(persona, key, kind=Kind.PAYMENT_CREDITED, data=None):
        [notification] = run_after_commit(services.notifications_create, kind=kind, event_key=key,
                                          user_ids=[persona.user.pk], data=data or {"wh": 2500}, url="/wallet/")
        return notification
    return tell


def badge(html: bytes) -> str | None:
    found = re.search(rb'class="bell-count" data-unread="(\d+)"', html)
    return found.group(1).decode() if found else None


def test_the_list_shows_ones_own_notifications_and_the_badge_counts_unread(world, told):
    told(world.alice, "payment-credited:1")
    told(world.alice, "device-off:HM-ALICE:1", Kind.DEVICE_OFF, {"device": "HM-ALICE", "device_name": "Alice's meter"})
    told(world.charlie, "payment-credited:2", data={"wh": 7})
    page = signed_in(world.alice).get("/notifications/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Alice&#x27;s meter switched off" in html and "2.500 kWh were added to your wallet." in html
    assert "0.007" not in html  # Charlie's
    assert badge(page.content) == "2"
    assert 'aria-label="Notifications, 2 unread"' in html
    # The badge is on every page of the app.
    assert badge(signed_in(world.alice).get("/devices/").content) == "2"
    assert badge(signed_in(world.charlie).get("/devices/").content) == "1"
    assert b"bell-count" not in Client().get("/devices/").content


def test_marking_read(world, told):
    first = told(world.alice, "payment-credited:1")
    told(world.alice, "payment-credited:2")
    client = signed_in(world.alice)
    assert client.post(f"/notifications/{first.pk}/read/").status_code == 302
    assert badge(client.get("/notifications/").content) == "1"
    assert client.post("/notifications/read-all/").status_code == 302
    page = client.get("/notifications/")
    assert badge(page.content) is None and b"notif-unread" not in page.content
    assert Notification.objects.filter(read_at__isnull=True).count() == 0


def test_a_stranger_cannot_mark_anothers_notification(world, told):
    notification = told(world.alice, "payment-credited:1")
    assert signed_in(world.charlie).post(f"/notifications/{notification.pk}/read/").status_code == 404
    assert signed_in(world.charlie).post("/notifications/read-all/").status_code == 302
    notification.refresh_from_db()
    assert notification.read_at is None


@pytest.mark.parametrize("path", ["/notifications/", "/notifications/settings/"])
def test_pages_need_a_login(db, path):
    response = Client().get(path)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("method,path,status", [
    ("get", "/notifications/1/read/", 405), ("get", "/notifications/read-all/", 405),
    ("put", "/notifications/", 405), ("head", "/notifications/", 200), ("head", "/notifications/settings/", 200),
])
def test_methods(world, method, path, status):
    assert getattr(signed_in(world.alice), method)(path).status_code == status


def test_pages_have_no_inline_script_or_style(world, told):
    told(world.alice, "payment-credited:1")
    for path in ["/notifications/", "/notifications/settings/"]:
        html = signed_in(world.alice).get(path).content.decode()
        assert "style=" not in html
        for script in re.findall(r"<script([^>]*)>", html):
            assert "src=" in script or 'type="application/json"' in script, script
