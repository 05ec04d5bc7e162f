"""Who the bot is in Slack (`auth.test`), learnt once at start so that no request waits for it.

Bolt's single-workspace authorization calls `auth.test` on every request until one call has
succeeded, so each request of a first burst pays a Slack round trip before its ack. Here the
bot asks once when it starts, and Bolt's `authorize` hands every request the cached answer
without any call. A token Slack refuses stops the start with a plain ConfigError. While Slack
cannot be reached the bot starts anyway (one warning): requests then get the token and the
request's workspace without the bot's own ids, and `auth.test` is asked again in the
background (one warning per attempt, backing off) until Slack answers.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import ConfigError
from bot.slack.client import slack_error_code
from bot.slack.socket_mode import REFUSED_TOKEN_ERRORS

log = logging.getLogger(__name__)

# The start waits this long for auth.test at most (the client's own retries included).
CHECK_SECONDS = 10.0
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 60.0


class BotIdentity(AsyncAuthorize):
    """Bolt's `authorize` for the one workspace of SLACK_BOT_TOKEN, answered from memory."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        check_seconds: float = CHECK_SECONDS,
        first_retry_seconds: float = FIRST_RETRY_SECONDS,
    ) -> None:
        super().__init__()
        self._client = client
        self._check_seconds = check_seconds
        self._first_retry_seconds = first_retry_seconds
        self._known: AuthorizeResult | None = None
        self._retrying: asyncio.Task[None] | None = None

    @property
    def known(self) -> AuthorizeResult | None:
        """What auth.test said, once it has answered."""
        return self._known

    async def learn(self) -> None:
        """Ask Slack once who the bot is.

        Raises ConfigError when Slack refuses the token. When Slack cannot be reached, logs a
        warning and keeps asking in the background (`close` stops that).
        """
        problem = await self._ask()
        if problem is None:
            return
        log.warning(
            "cannot check SLACK_BOT_TOKEN with Slack (%s); starting anyway and asking again "
            "in %.0f s",
            problem,
            self._first_retry_seconds,
        )
        self._retrying = asyncio.create_task(self._keep_asking())

    async def close(self) -> None:
        if self._retrying is not None:
            self._retrying.cancel()
            await asyncio.gather(self._retrying, return_exceptions=True)
            self._retrying = None

    async def __call__(
        self,
        *,
        context: Any,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        actor_enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        actor_user_id: str | None = None,
    ) -> AuthorizeResult:
        """The cached identity, without any call (before Slack answered: the token and the
        request's workspace)."""
        if self._known is not None:
            return self._known
        return AuthorizeResult(
            enterprise_id=enterprise_id, team_id=team_id, bot_token=self._client.token
        )

    async def _ask(self) -> str | None:
        """None once Slack answered; else what stood in the way. ConfigError: refused."""
        try:
            async with asyncio.timeout(self._check_seconds):
                response = await self._client.auth_test()
        except SlackApiError as error:
            code = slack_error_code(error)
            if code in REFUSED_TOKEN_ERRORS:
                raise ConfigError(
                    f"Slack refused SLACK_BOT_TOKEN ({code}). Use the Bot User OAuth Token "
                    "(xoxb-…) from the app's OAuth & Permissions page, after installing the "
                    "app to the workspace."
                ) from None
            return f"Slack answered {code}"
        except TimeoutError:
            return f"no answer within {self._check_seconds:.0f} s"
        except (aiohttp.ClientError, OSError) as error:
            return f"Slack unreachable: {type(error).__name__}"
        self._known = AuthorizeResult.from_auth_test_response(
            auth_test_response=response,
            bot_token=self._client.token,
            bot_scopes=response.headers.get("x-oauth-scopes"),
        )
        return None

    async def _keep_asking(self) -> None:
        delay = self._first_retry_seconds
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)
            try:
                problem = await self._ask()
            except ConfigError as error:  # refused since the start: say so, keep trying
                problem = str(error)
            if problem is None:
                log.info("Slack answered auth.test: the bot's identity is known")
                return
            log.warning("cannot check SLACK_BOT_TOKEN with Slack (%s); asking again in %.0f s",
                        problem, delay)  # fmt: skip
