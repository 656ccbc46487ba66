"""The one Redis connection pool every part of the Redis store shares, and the errors they share.

`redis` is imported only when a backend opens: it is an optional extra (`vf-mcp[redis]`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from vf_mcp.config import ENV_STORE_URL
from vf_mcp.errors import StoreError

if TYPE_CHECKING:
    from redis.asyncio import Redis

PREFIX = "vf-mcp:"


class RedisBackend:
    """One connection pool for every part of the store, and the errors they all share."""

    def __init__(self, url: str, *, ttl_seconds: float, prefix: str = PREFIX) -> None:
        from redis.asyncio import Redis

        self.redis: Redis = Redis.from_url(url)
        self.ttl = max(1, int(ttl_seconds))
        self.prefix = prefix

    @asynccontextmanager
    async def errors(self, what: str) -> AsyncIterator[None]:
        from redis.exceptions import RedisError

        try:
            yield
        except RedisError as exc:
            # The URL may hold a password, so the message names the variable, not the value.
            raise StoreError(
                f"Could not {what} in the Redis store ({type(exc).__name__}); check that the "
                f"server in {ENV_STORE_URL} is running and reachable"
            ) from None

    async def aclose(self) -> None:
        await self.redis.aclose()
