"""``meters.channel_groups`` reads channels' and channels_redis' storage to skip groups nobody
listens to: unsupported releases are refused when it is imported, the internals it uses exist
on the installed releases, and on a live Redis it sees exactly the groups that have members.
An upgrade that changes them fails here instead of silently dropping websocket events."""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import sys
import uuid
from pathlib import Path

import channels
import channels_redis
import pytest
from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer
from channels_redis.core import RedisChannelLayer

from gridcoin.library_versions import UnsupportedLibraryVersion
from meters import channel_groups

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("library", "module"), [("channels", channels), ("channels-redis", channels_redis)])
def test_an_unsupported_release_is_refused_when_the_module_is_imported(monkeypatch, library, module):
    monkeypatch.setattr(module, "__version__", "5.0.0")
    monkeypatch.delitem(sys.modules, "meters.channel_groups")
    with pytest.raises(UnsupportedLibraryVersion) as refused:
        importlib.import_module("meters.channel_groups")
    message = str(refused.value)
    assert f"{library} 5.0.0 is installed" in message and f"written for {library} 4.3.x" in message
    assert "tests/meters/test_meters_channel_groups.py" in message


def test_the_installed_releases_are_supported():
    channel_groups.check_channels_versions()


def test_the_redis_layer_has_the_methods_and_attributes_relied_on():
    for name, expected in channel_groups.REDIS_LAYER_METHODS.items():
        assert tuple(inspect.signature(getattr(RedisChannelLayer, name)).parameters) == expected, name
    layer = RedisChannelLayer(hosts=["redis://127.0.0.1:6379/2"], prefix="probe")
    for name in channel_groups.REDIS_LAYER_ATTRIBUTES:
        assert hasattr(layer, name), name
    assert layer.hosts == [{"address": "redis://127.0.0.1:6379/2"}]
    assert isinstance(layer._group_key("device.X"), bytes)
    assert layer.consistent_hash("device.X") == 0  # one shard


def test_the_in_memory_layer_keeps_its_groups_in_a_table():
    layer = InMemoryChannelLayer()
    assert all(hasattr(layer, name) for name in channel_groups.IN_MEMORY_LAYER_ATTRIBUTES)

    async def scenario() -> None:
        await layer.group_add("device.A", "channel-1")
        assert channel_groups.listened_groups(layer, {"device.A", "device.B"}) == {"device.A"}
        await layer.group_discard("device.A", "channel-1")
        assert channel_groups.listened_groups(layer, {"device.A", "device.B"}) == set()

    async_to_sync(scenario)()


@pytest.mark.redis
def test_on_redis_exactly_the_groups_with_members_are_listened():
    layer = RedisChannelLayer(hosts=[os.environ["REDIS_URL"]], prefix=f"gridcoin-test-{uuid.uuid4().hex}")
    groups = {f"device.G{n}" for n in range(5)}

    async def scenario() -> None:
        try:
            await layer.group_add("device.G1", "channel-a")
            await layer.group_add("device.G3", "channel-b")
            await layer.group_add("device.G3", "channel-c")
            assert channel_groups.listened_groups(layer, groups) == {"device.G1", "device.G3"}
            await layer.group_discard("device.G3", "channel-b")
            assert channel_groups.listened_groups(layer, groups) == {"device.G1", "device.G3"}
            await layer.group_discard("device.G3", "channel-c")
            await layer.group_discard("device.G1", "channel-a")
            assert channel_groups.listened_groups(layer, groups) == set()
        finally:
            await layer.flush()
            await layer.close_pools()

    async_to_sync(scenario)()


def test_other_layers_are_sent_to_without_asking():
    class OtherLayer:
        groups = {"device.A": {"channel": 0.0}}

    assert channel_groups.listened_groups(OtherLayer(), {"device.A"}) is None


def test_no_other_module_reads_the_channel_layers_internals():
    offenders = []
    for app in ("meters", "iot_gateway", "ledger", "frontend", "payments", "gridcoin", "bench"):
        for path in (ROOT / app).rglob("*.py"):
            if path == Path(channel_groups.__file__):
                continue
            used = {node.attr for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Attribute)}
            offenders += [f"{path.relative_to(ROOT)}: {name}" for name in sorted(used & {"_group_key"})]
    assert offenders == []
