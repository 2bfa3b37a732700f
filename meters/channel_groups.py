"""Which websocket groups have a listener: asked of the channel layer's storage directly, the
one place that reads channels' and channels_redis' internals.

``group_send`` costs two Redis round trips even for a group nobody is in, and a gateway batch
announces a thousand devices of which a handful have a page open, so sending to all of them
would dominate its cost. Neither library has a public "is anyone in this group" call, so
``listened_groups`` reads their storage: the in-memory layer's ``groups`` table, and
channels_redis' group keys (``_group_key``; a group is a sorted set that exists while it has
members) on the shard ``consistent_hash`` picks among ``hosts``. Importing this module refuses
releases it was not written for (``SUPPORTED_CHANNELS``, ``SUPPORTED_CHANNELS_REDIS``);
``tests/meters/test_meters_channel_groups.py`` checks the internals on the installed releases
and on a live Redis. To support a new release: read those names in its source, run that test
and tests/meters/test_device_ws.py, then add the release series here.
"""

from __future__ import annotations

import logging
from typing import Any

import channels
import channels_redis

from gridcoin.library_versions import require_version

logger = logging.getLogger(__name__)

SUPPORTED_CHANNELS = ("4.3",)
SUPPORTED_CHANNELS_REDIS = ("4.3",)
# What is relied on, with the parameter names of the methods.
REDIS_LAYER_METHODS: dict[str, tuple[str, ...]] = {"_group_key": ("self", "group"), "consistent_hash": ("self", "value")}
REDIS_LAYER_ATTRIBUTES = ("hosts",)  # one connection-kwargs dict per shard, in consistent_hash's order
IN_MEMORY_LAYER_ATTRIBUTES = ("groups",)  # {group: {channel: joined at}}, a group removed when empty


def check_channels_versions() -> None:
    """Refuse channels or channels_redis releases this module was not written for (run at import)."""
    test = "tests/meters/test_meters_channel_groups.py"
    require_version("channels", channels.__version__, SUPPORTED_CHANNELS, module=__name__,
                    relies_on="InMemoryChannelLayer.groups", test=test)
    require_version("channels-redis", channels_redis.__version__, SUPPORTED_CHANNELS_REDIS, module=__name__,
                    relies_on="RedisChannelLayer._group_key, consistent_hash, hosts and its groups as sorted sets",
                    test=test)


check_channels_versions()

_redis_clients: dict[str, Any] = {}
# One reply byte per key, "1" if it exists: a thousand keys in one command and one reply
# (a pipeline of a thousand EXISTS cost more in redis-py's packing and parsing than the rest).
_EXISTS_EACH = "local r = {} for i, k in ipairs(KEYS) do r[i] = redis.call('EXISTS', k) end return table.concat(r)"


def listened_groups(layer, groups: set[str]) -> set[str] | None:
    """Which of ``groups`` have a member, asked without an event loop: the in-memory layer's
    own table, or one script of ``EXISTS`` per Redis shard. None when the layer cannot tell
    (another backend, a host form we do not know, Redis away): then every group is sent to."""
    in_memory = getattr(layer, "groups", None)
    if isinstance(in_memory, dict) and type(layer).__name__ == "InMemoryChannelLayer":
        return {g for g in groups if in_memory.get(g)}
    if type(layer).__module__ != "channels_redis.core" or type(layer).__name__ != "RedisChannelLayer":
        return None
    try:
        by_shard: dict[int, list[str]] = {}
        for group in groups:
            by_shard.setdefault(layer.consistent_hash(group), []).append(group)
        listened: set[str] = set()
        for index, members in by_shard.items():
            found = _redis_client(layer.hosts[index]).eval(
                _EXISTS_EACH, len(members), *(layer._group_key(g) for g in members))
            listened.update(g for g, bit in zip(members, found, strict=True) if bit == 49)  # b"1"
        return listened
    except Exception:  # a host form we do not know (sentinels), Redis away: let group_send decide
        logger.debug("could not ask Redis which device groups are listened to", exc_info=True)
        return None


def _redis_client(host: dict[str, Any]):
    import redis

    client = _redis_clients.get(repr(host))
    if client is None:
        options = dict(host)
        client = _redis_clients[repr(host)] = redis.Redis.from_url(options.pop("address"), **options)
    return client
