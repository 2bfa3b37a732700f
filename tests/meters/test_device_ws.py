"""``/ws/devices/<public_id>/`` on the real ASGI application: anyone hears an existing
device's public state, only the owner's members and the utility hear its consumption (checked
per event), unknown devices are refused; one test through the real Redis channel layer."""

from __future__ import annotations

import os
import uuid

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import override_settings

from accounts.models import Membership
from frontend import simulators
from gridcoin.asgi import application
from meters import channel_groups, live, services
from tests.ledger.test_ledger_websocket import HEADERS, IN_MEMORY, session_cookie
from tests.meters_world import MeterWorld, build_meter_world

TIMEOUT = 5


@pytest.fixture(autouse=True)
def fresh_in_memory_layer():
    with override_settings(CHANNEL_LAYERS=IN_MEMORY):
        yield


@pytest.fixture
def mw(transactional_db, settings) -> MeterWorld:
    return build_meter_world(settings)


def headers_of(mw, name: str) -> list[tuple[bytes, bytes]]:
    if name == "anonymous":
        return HEADERS
    return HEADERS + [(b"cookie", session_cookie(mw.persona(name).user))]


def run(coroutine_function):
    return async_to_sync(coroutine_function)()


async def connect(headers: list[tuple[bytes, bytes]], public_id: str) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, f"/ws/devices/{public_id}/", headers=headers)
    connected, code = await communicator.connect(timeout=TIMEOUT)
    assert connected, code
    snapshot = await communicator.receive_json_from(timeout=TIMEOUT)
    assert snapshot["event"] == "device.state" and snapshot["payload"]["public_id"] == public_id
    return communicator


async def next_event(communicator: WebsocketCommunicator, event: str) -> dict:
    message = await communicator.receive_json_from(timeout=TIMEOUT)
    assert message["event"] == event, message
    return message["payload"]


def fund(mw, public_id: str, wh: int, key: str) -> None:
    services.device_fund(user=mw.alice.user, public_id=public_id, amount_wh=wh, idempotency_key=key)


@pytest.mark.parametrize("name", ["anonymous", "charlie"])
def test_anyone_gets_the_current_state_on_connect(mw, name):
    fund(mw, "SL-0001", 250, "s1")
    headers = headers_of(mw, name)

    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/devices/SL-0001/", headers=headers)
        assert (await communicator.connect(timeout=TIMEOUT))[0]
        message = await communicator.receive_json_from(timeout=TIMEOUT)
        assert message == {"event": "device.state", "payload": {
            "public_id": "SL-0001", "relay": "on", "balance_wh": 250, "reserved_wh": 0, "spendable_wh": 250}}
        await communicator.disconnect()

    run(scenario)


def test_unknown_device_is_refused_with_4404(mw):
    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/devices/NOPE-1/", headers=HEADERS)
        connected, code = await communicator.connect(timeout=TIMEOUT)
        assert not connected and code == 4404

    run(scenario)


def test_a_foreign_origin_is_refused(mw):
    async def scenario():
        foreign = [(b"origin", b"http://evil.example"), (b"host", b"testserver")]
        communicator = WebsocketCommunicator(application, "/ws/devices/SL-0001/", headers=foreign)
        assert not (await communicator.connect(timeout=TIMEOUT))[0]

    run(scenario)


def test_funding_pushes_the_new_state_to_a_stranger(mw):
    async def scenario():
        communicator = await connect(HEADERS, "SL-0001")
        await sync_to_async(fund)(mw, "SL-0001", 1_250, "f1")
        payload = await next_event(communicator, "device.state")
        assert payload == {"public_id": "SL-0001", "relay": "on", "balance_wh": 1_250, "reserved_wh": 0,
                           "spendable_wh": 1_250}
        assert await communicator.receive_nothing(timeout=0.2)
        await communicator.disconnect()

    run(scenario)


def test_consumption_reaches_the_owner_and_the_utility_but_not_a_stranger(mw):
    fund(mw, "HM-ALICE", 100, "f1")
    headers = {name: headers_of(mw, name) for name in ("alice", "bob", "uma", "charlie", "anonymous")}

    async def scenario():
        listeners = {name: await connect(h, "HM-ALICE") for name, h in headers.items()}
        await sync_to_async(simulators.meter_tick)(device=mw.meter, wh=100)
        for name, communicator in listeners.items():
            state = await next_event(communicator, "device.state")
            assert (state["relay"], state["balance_wh"]) == ("off", 0)
            if name in ("alice", "bob", "uma"):
                consumption = await next_event(communicator, "device.consumption")
                assert (consumption["counter"], consumption["import_wh"], consumption["burned"]) == (1, 100, 100)
            assert await communicator.receive_nothing(timeout=0.2), name
            await communicator.disconnect()

    run(scenario)


def test_permission_is_rechecked_per_event(mw):
    """Bob leaves Alice's household while listening: he hears the public state, no more
    consumption; a deactivated Alice hears none either."""
    fund(mw, "HM-ALICE", 500, "f1")

    def bob_leaves():
        Membership.objects.filter(user=mw.bob.user, organisation=mw.alice.organisation).delete()

    def alice_deactivated():
        get_user_model().objects.filter(pk=mw.alice.user.pk).update(is_active=False)

    bob_headers, alice_headers = headers_of(mw, "bob"), headers_of(mw, "alice")

    async def scenario():
        bob = await connect(bob_headers, "HM-ALICE")
        alice = await connect(alice_headers, "HM-ALICE")
        await sync_to_async(bob_leaves)()
        await sync_to_async(alice_deactivated)()
        await sync_to_async(simulators.meter_tick)(device=mw.meter, wh=10)
        for communicator in (bob, alice):
            assert (await next_event(communicator, "device.state"))["balance_wh"] == 490
            assert await communicator.receive_nothing(timeout=0.3)
            await communicator.disconnect()

    run(scenario)


def test_a_settled_window_pushes_state(mw):
    from datetime import timedelta

    from django.utils import timezone

    start = timezone.now()
    fund(mw, "SL-0001", 300, "w1")
    services.device_fund(user=mw.alice.user, public_id="SL-0001", amount_wh=200, idempotency_key="w2",
                         window_start=start, window_end=start + timedelta(minutes=30))

    async def scenario():
        communicator = await connect(HEADERS, "SL-0001")
        results = await sync_to_async(services.windows_settle_due)(start + timedelta(hours=1))
        assert results and results[0].ok
        payload = await next_event(communicator, "device.state")
        assert payload["balance_wh"] == 300 and payload["reserved_wh"] == 0
        await communicator.disconnect()

    run(scenario)


def real_redis_layer() -> dict:
    """CHANNEL_LAYERS for the real Redis, under a prefix of this test's own."""
    return {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                        "CONFIG": {"hosts": [os.environ["REDIS_URL"]], "prefix": f"gridcoin-test-{uuid.uuid4().hex}"}}}


@pytest.mark.redis
def test_state_arrives_through_the_real_redis_layer(mw):
    redis_layer = real_redis_layer()
    headers = headers_of(mw, "uma")
    with override_settings(CHANNEL_LAYERS=redis_layer):
        layer = get_channel_layer()
        assert type(layer).__module__ == "channels_redis.core"

        async def scenario():
            try:
                communicator = await connect(headers, "HM-ALICE")
                await sync_to_async(fund)(mw, "HM-ALICE", 40, "r1")
                assert (await next_event(communicator, "device.state"))["balance_wh"] == 40
                await sync_to_async(simulators.meter_tick)(device=mw.meter, wh=40)
                assert (await next_event(communicator, "device.state"))["relay"] == "off"
                assert (await next_event(communicator, "device.consumption"))["burned"] == 40
                await communicator.disconnect()
            finally:
                await layer.flush()
                await layer.close_pools()

        run(scenario)


def announce_a_batch_with_one_listener(mw) -> None:
    """A gateway batch announces many devices; only the one with a listener is sent to, and
    its listener hears it."""
    layer = get_channel_layer()
    sent: list[str] = []
    group_send = layer.group_send

    async def spy(group, message):
        sent.append(group)
        await group_send(group, message)

    layer.group_send = spy

    async def scenario():
        communicator = await connect(HEADERS, "SL-0001")
        await sync_to_async(live.devices_state_changed)(
            {"SL-0001": None, "HM-ALICE": {"counter": 1, "import_wh": 5, "export_wh": 0}})
        assert (await next_event(communicator, "device.state"))["public_id"] == "SL-0001"
        await communicator.disconnect()

    run(scenario)
    assert sent == ["device.SL-0001"]
    assert channel_groups.listened_groups(layer, {"device.SL-0001", "device.HM-ALICE"}) == set()


def test_a_batch_announcement_sends_only_to_listened_devices(mw):
    announce_a_batch_with_one_listener(mw)


@pytest.mark.redis
def test_a_batch_announcement_asks_redis_which_devices_are_listened_to(mw):
    redis_layer = real_redis_layer()
    with override_settings(CHANNEL_LAYERS=redis_layer):
        layer = get_channel_layer()
        try:
            announce_a_batch_with_one_listener(mw)
        finally:
            async_to_sync(layer.flush)()
