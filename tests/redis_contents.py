"""Every key under a prefix with its contents as text: what tests search for leftovers."""

from __future__ import annotations

from redis.asyncio import Redis

from bot.storage.keys import scan_pattern


async def redis_contents(redis: Redis, prefix: str) -> dict[str, str]:
    """Each key starting with `prefix` → its value(s) as text (any Redis type)."""
    found: dict[str, str] = {}
    async for name in redis.scan_iter(match=scan_pattern(prefix)):
        kind = await redis.type(name)
        if kind == "string":
            value: object = await redis.get(name)
        elif kind == "hash":
            value = await redis.hgetall(name)
        elif kind == "list":
            value = await redis.lrange(name, 0, -1)
        elif kind == "set":
            value = sorted(await redis.smembers(name))
        elif kind == "zset":
            value = await redis.zrange(name, 0, -1, withscores=True)
        elif kind == "stream":
            value = await redis.xrange(name)
        else:
            value = kind
        found[name] = str(value)
    return found


def naming(contents: dict[str, str], *words: str) -> dict[str, str]:
    """The keys whose name or contents hold any of `words`."""
    return {
        name: value
        for name, value in contents.items()
        if any(word in name or word in value for word in words)
    }
