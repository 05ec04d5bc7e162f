"""The `state` of install links (OAuth mode), kept in Redis: one-time and expiring.

/slack/install issues a state, Slack hands it back on /slack/oauth_redirect, and it is
consumed there: a link works once (GETDEL, atomic across processes) and only within
`expiration_seconds`. Each state is signed with SLACK_STATE_SECRET (HMAC-SHA256), so a
state the bot never issued is refused without asking Redis. The issue time is kept in the
record and checked against an injectable clock; Redis's expiry only clears leftovers.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable

from redis.asyncio import Redis
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

from bot.storage.keys import Keys

log = logging.getLogger(__name__)

# Bolt's default: an installer has ten minutes from /slack/install to approving in Slack.
STATE_EXPIRATION_SECONDS = 600
# Redis keeps a record this much longer than it is valid, then drops it by itself.
LEFTOVER_SECONDS = 60


class RedisStateStore(AsyncOAuthStateStore):
    """slack_sdk's async OAuth state store interface, on Redis under the bot's key prefix."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        secret: str,
        *,
        expiration_seconds: int = STATE_EXPIRATION_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._secret = secret.encode()
        self.expiration_seconds = expiration_seconds
        self.clock = clock

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: object, **kwargs: object) -> str:
        nonce = secrets.token_urlsafe(24)
        await self._redis.set(
            self._keys.oauth_state(nonce),
            repr(self.clock()),
            ex=self.expiration_seconds + LEFTOVER_SECONDS,
        )
        return f"{nonce}.{self._signature(nonce)}"

    async def async_consume(self, state: str) -> bool:
        """True once for a state this bot issued within the expiration; False after."""
        nonce, _, signature = (state or "").partition(".")
        if not nonce or not hmac.compare_digest(signature, self._signature(nonce)):
            log.info("an install redirect with a state this bot did not issue")
            return False
        issued = await self._redis.getdel(self._keys.oauth_state(nonce))
        if issued is None:
            log.info("an install redirect with a used or expired state")
            return False
        try:
            age = self.clock() - float(issued)
        except ValueError:
            return False
        if age > self.expiration_seconds:
            log.info("an install redirect with an expired state (%.0f s old)", age)
            return False
        return True

    def _signature(self, nonce: str) -> str:
        return hmac.new(self._secret, nonce.encode(), hashlib.sha256).hexdigest()
