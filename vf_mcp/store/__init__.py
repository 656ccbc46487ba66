"""The adapters that keep what the server needs between calls: in process by default (`memory`),
in Redis for several workers and restarts (`redis`). Every key expires after the configured TTL.

The ports they fill are declared by the layers that use them (`base.Store` lists them);
`open_store` is the one factory the composition root (`vf_mcp.app`) opens a deployment's with.
"""

from __future__ import annotations

from vf_mcp.store.base import Closeable, Store, check_store


def open_store(
    url: str | None, *, ttl_seconds: float, max_mb: int = 512, transcript_max_kb: int = 4096
) -> Store:
    """The store a deployment configured: Redis for `redis://` URLs, else in process (holding
    at most `max_mb`); a live transcript keeps at most `transcript_max_kb` either way."""
    if url is None:
        from vf_mcp.store.memory import MB, Limits, in_memory_store

        limits = Limits(max_bytes=max_mb * MB, transcript_max_bytes=transcript_max_kb * 1024)
        return in_memory_store(ttl_seconds=ttl_seconds, limits=limits)
    # Imported only when configured: the redis package is an optional extra.
    from vf_mcp.store.redis import redis_store

    return redis_store(url, ttl_seconds=ttl_seconds, transcript_max_bytes=transcript_max_kb * 1024)


__all__ = ["Closeable", "Store", "check_store", "open_store"]
