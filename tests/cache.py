"""Emptying the cache between tests (login lockouts and rate limits count there)."""

from __future__ import annotations


def clear_cache() -> None:
    """Empty the cache. On Redis only the cache's own keys go: the same database holds Celery's
    queues and the channel layer, which FLUSHDB would take too."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    backend = caches["default"]
    if isinstance(backend, RedisCache):
        client = backend._cache.get_client(write=True)
        keys = list(client.scan_iter(match=f"{backend.key_prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    else:
        backend.clear()
