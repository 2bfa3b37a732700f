"""``/ws/ledger/`` on the real ASGI application: who may listen, and what they hear when a block
is sealed (after commit, through the configured channel layer)."""

from __future__ import annotations

import os
import uuid

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client, override_settings

from gridcoin.asgi import application
from ledger.models import Block
from ledger.sealing import lease_acquire, seal_next_block
from tests.ledger_helpers import Network, seal_setup

PATH = "/ws/ledger/"
HEADERS = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
HOLDER = "websocket-test"
EVENT_TIMEOUT = 5


@pytest.fixture(autouse=True)
def fresh_in_memory_layer():
    """A new in-memory layer per test (the override resets channels' cached backends), so the
    tests behave the same whether or not REDIS_URL is configured for the process."""
    with override_settings(CHANNEL_LAYERS=IN_MEMORY):
        yield


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}".encode()


def member_headers(username: str = "listener") -> tuple[object, list[tuple[bytes, bytes]]]:
    user = get_user_model().objects.create_user(username=username, password="correct horse battery")
    return user, HEADERS + [(b"cookie", session_cookie(user))]


def ledger_with_pending_transaction() -> Network:
    network = Network.create()
    seal_setup()  # block 0: the network's configuration transactions, before anyone listens
    network.mint("household:hh-alice", 5000)
    assert lease_acquire(holder=HOLDER)
    return network


def run(coroutine_function):
    return async_to_sync(coroutine_function)()


async def receive_block_sealed(communicator: WebsocketCommunicator) -> dict:
    message = await communicator.receive_json_from(timeout=EVENT_TIMEOUT)
    assert message["event"] == "block.sealed", message
    return message


def assert_matches_block(message: dict, sealed) -> None:
    block = Block.objects.get(number=sealed.number)
    assert message == {
        "event": "block.sealed",
        "payload": {"number": block.number, "header_hash": block.header_hash, "tx_count": block.tx_count},
    }
    assert block.tx_count == 1


# --- who may connect ----------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_anonymous_connection_is_refused():
    async def scenario():
        communicator = WebsocketCommunicator(application, PATH, headers=HEADERS)
        connected, code = await communicator.connect()
        assert not connected
        assert code == 4401

    run(scenario)


@pytest.mark.django_db(transaction=True)
def test_a_forged_session_cookie_is_refused():
    async def scenario():
        headers = HEADERS + [(b"cookie", f"{settings.SESSION_COOKIE_NAME}=not-a-session".encode())]
        communicator = WebsocketCommunicator(application, PATH, headers=headers)
        connected, code = await communicator.connect()
        assert not connected
        assert code == 4401

    run(scenario)


@pytest.mark.django_db(transaction=True)
def test_a_foreign_origin_is_refused_even_with_a_session():
    _, headers = member_headers()

    async def scenario():
        foreign = [(b"origin", b"http://evil.example")] + [h for h in headers if h[0] != b"origin"]
        communicator = WebsocketCommunicator(application, PATH, headers=foreign)
        connected, _ = await communicator.connect()
        assert not connected

    run(scenario)


# --- what members hear ------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_member_receives_block_sealed_after_commit():
    _, headers = member_headers()
    ledger_with_pending_transaction()

    async def scenario():
        communicator = WebsocketCommunicator(application, PATH, headers=headers)
        connected, _ = await communicator.connect()
        assert connected
        sealed = await sync_to_async(seal_next_block)(holder=HOLDER, force=True)
        assert sealed is not None
        message = await receive_block_sealed(communicator)
        await sync_to_async(assert_matches_block)(message, sealed)
        assert await communicator.receive_nothing(timeout=0.2)
        await communicator.disconnect()

    run(scenario)


@pytest.mark.django_db(transaction=True)
def test_no_event_when_the_sealing_transaction_rolls_back():
    _, headers = member_headers()
    ledger_with_pending_transaction()

    class Abort(Exception):
        pass

    def seal_then_roll_back():
        with pytest.raises(Abort), transaction.atomic():
            assert seal_next_block(holder=HOLDER, force=True) is not None
            raise Abort
        assert Block.objects.count() == 1  # the setup's only

    async def scenario():
        communicator = WebsocketCommunicator(application, PATH, headers=headers)
        connected, _ = await communicator.connect()
        assert connected
        await sync_to_async(seal_then_roll_back)()
        assert await communicator.receive_nothing(timeout=0.5)
        # The block sealed for real afterwards is announced.
        sealed = await sync_to_async(seal_next_block)(holder=HOLDER, force=True)
        message = await receive_block_sealed(communicator)
        await sync_to_async(assert_matches_block)(message, sealed)
        await communicator.disconnect()

    run(scenario)


@pytest.mark.django_db(transaction=True)
def test_every_listener_receives_the_event():
    _, first_headers = member_headers("first")
    _, second_headers = member_headers("second")
    ledger_with_pending_transaction()

    async def scenario():
        first = WebsocketCommunicator(application, PATH, headers=first_headers)
        second = WebsocketCommunicator(application, PATH, headers=second_headers)
        assert (await first.connect())[0] and (await second.connect())[0]
        await second.disconnect()  # a departed listener is simply dropped from the group
        sealed = await sync_to_async(seal_next_block)(holder=HOLDER, force=True)
        message = await receive_block_sealed(first)
        await sync_to_async(assert_matches_block)(message, sealed)
        await first.disconnect()

    run(scenario)


@pytest.mark.django_db(transaction=True)
def test_a_deactivated_member_gets_no_further_events():
    """Consumers re-check permission per event (house style §6): a user deactivated while
    connected must not keep receiving the ledger feed; the consumer closes with 4403."""
    user, headers = member_headers()
    ledger_with_pending_transaction()

    def deactivate():
        get_user_model().objects.filter(pk=user.pk).update(is_active=False)

    async def scenario():
        communicator = WebsocketCommunicator(application, PATH, headers=headers)
        connected, _ = await communicator.connect()
        assert connected
        await sync_to_async(deactivate)()
        await sync_to_async(seal_next_block)(holder=HOLDER, force=True)
        output = await communicator.receive_output(timeout=EVENT_TIMEOUT)
        assert output == {"type": "websocket.close", "code": 4403}, output

    run(scenario)


# --- the real Redis channel layer ---------------------------------------------------------------

@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_block_sealed_arrives_through_redis():
    # A prefix of our own, so listeners in other test runs sharing this Redis never interfere.
    prefix = f"gridcoin-test-{uuid.uuid4().hex}"
    redis_layer = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [os.environ["REDIS_URL"]], "prefix": prefix},
        }
    }
    _, headers = member_headers()
    ledger_with_pending_transaction()

    with override_settings(CHANNEL_LAYERS=redis_layer):
        layer = get_channel_layer()
        assert type(layer).__module__ == "channels_redis.core"

        async def scenario():
            communicator = WebsocketCommunicator(application, PATH, headers=headers)
            try:
                connected, _ = await communicator.connect(timeout=EVENT_TIMEOUT)
                assert connected
                sealed = await sync_to_async(seal_next_block)(holder=HOLDER, force=True)
                assert sealed is not None
                message = await receive_block_sealed(communicator)
                await sync_to_async(assert_matches_block)(message, sealed)
                await communicator.disconnect()
            finally:
                await layer.flush()
                await layer.close_pools()

        run(scenario)
