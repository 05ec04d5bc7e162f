"""Many workspaces (OAuth): installs through /slack/install, Slack's approval (the stand-in)
and /slack/oauth_redirect; each workspace answered with its own bot token; uninstall."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from http.cookies import SimpleCookie

import aiohttp
import pytest

from bot.app import TutorBot
from bot.local.openai_api import OpenAIStandIn
from bot.local.slack_api import SlackStandIn
from bot.local.slack_events import SlackEventSender
from bot.settings import BackendKind
from bot.slack.installation_store import RedisInstallationStore
from bot.slack.oauth import ORG_WIDE_REFUSED
from bot.storage.keys import Keys
from bot.turns.workspace_purge import SECONDS_PER_DAY
from tests.conftest import RedisServer
from tests.e2e.conftest import SIGNING_SECRET, bot_settings, start_bot

CLIENT_ID, CLIENT_SECRET = "111.222", "client-secret"
USER = "U100"
# Two workspaces, each with a channel of its own (the stand-in refuses another's token there).
CHANNELS = {"TA": "CA", "TB": "CB"}


@dataclass
class Slack:
    """The bot in OAuth mode and the stand-ins, played from the outside."""

    slack: SlackStandIn
    openai: OpenAIStandIn
    bot: TutorBot
    base_url: str
    keys: Keys
    browser: aiohttp.ClientSession

    def events(self, team_id: str) -> SlackEventSender:
        """Slack's deliveries for one workspace, to its bot user."""
        return SlackEventSender(
            self.base_url + "/slack/events",
            SIGNING_SECRET,
            team_id=team_id,
            bot_user_id=self.slack.workspaces[team_id].bot_user_id,
        )

    async def start_install(self, team_id: str) -> tuple[str, str]:
        """/slack/install: (Slack's approval URL, the state cookie as the browser sends it)."""
        async with self.browser.get(
            self.base_url + "/slack/install", params={"team": team_id}, allow_redirects=False
        ) as response:
            assert response.status == 302, await response.text()
            cookie = SimpleCookie(response.headers["Set-Cookie"])
            name, morsel = next(iter(cookie.items()))
            return response.headers["Location"], f"{name}={morsel.value}"

    async def approve(self, approval_url: str) -> str:
        """The installer approves in Slack: the redirect back to the bot, with a code."""
        async with self.browser.get(approval_url, allow_redirects=False) as response:
            assert response.status == 302, await response.text()
            return response.headers["Location"]

    async def redirect(self, url: str, cookie: str) -> tuple[int, str]:
        async with self.browser.get(url, headers={"Cookie": cookie}) as response:
            return response.status, await response.text()

    async def install(self, team_id: str) -> tuple[int, str]:
        approval, cookie = await self.start_install(team_id)
        return await self.redirect(await self.approve(approval), cookie)

    async def ask(self, team_id: str, question: str) -> tuple[str, str]:
        """A mention in the workspace's channel; (channel, the thread it is answered in)."""
        events = self.events(team_id)
        bot_user = self.slack.workspaces[team_id].bot_user_id
        channel = CHANNELS[team_id]
        try:
            status, _, ts = await events.mention(channel, USER, f"<@{bot_user}> {question}")
        finally:
            await events.close()
        assert status == 200
        return channel, ts

    def answers(self, channel: str, ts: str) -> list[str]:
        return [self.slack.visible_text(channel, m.ts) for m in self.slack.thread(channel, ts)]


@pytest.fixture
async def oauth(redis_server: RedisServer, redis_prefix: str) -> AsyncIterator[Slack]:
    slack = SlackStandIn(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    for team_id, channel in CHANNELS.items():
        slack.add_workspace(team_id, channels=(channel,))
    slack.add_workspace("TE", enterprise_id="E1", channels=("CE",))
    openai = OpenAIStandIn()
    slack_url, openai_url = await slack.start(), await openai.start()
    settings = dataclasses.replace(
        bot_settings(slack_url, openai_url, redis_server.url, redis_prefix, BackendKind.CHAT),
        slack_bot_token=None,
        slack_client_id=CLIENT_ID,
        slack_client_secret=CLIENT_SECRET,
        slack_state_secret="state-secret",
    )
    bot, events, base_url = await start_bot(settings)
    await events.close()
    slack.redirect_url = base_url + "/slack/oauth_redirect"  # the app's Redirect URL
    browser = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
    try:
        yield Slack(slack, openai, bot, base_url, Keys(redis_prefix), browser)
    finally:
        await browser.close()
        await bot.stop(grace_seconds=2)
        await slack.stop()
        await openai.stop()


async def test_two_workspaces_install_and_are_answered_each_with_its_own_token(
    oauth: Slack,
) -> None:
    for team_id in CHANNELS:
        status, page = await oauth.install(team_id)
        assert status == 200, page
        assert oauth.slack.workspaces[team_id].token is not None
    exchanges = oauth.slack.calls_to("oauth.v2.access")
    assert len(exchanges) == 2
    assert exchanges[0].args.get("client_secret") is None, "sent as HTTP Basic auth"
    store = RedisInstallationStore(oauth.bot.redis, oauth.keys)
    for team_id in CHANNELS:
        bot = await store.async_find_bot(enterprise_id=None, team_id=team_id)
        assert bot is not None and bot.bot_id == f"B{team_id}", "asked auth.test with its token"

    asked = {team_id: await oauth.ask(team_id, f"Who ruled {team_id}?") for team_id in CHANNELS}
    for team_id, (channel, ts) in asked.items():
        answer = f"Answer 1: Who ruled {team_id}?"  # its own bot's mention is stripped
        await oauth.slack.wait_for(lambda c=channel, t=ts, a=answer: oauth.answers(c, t) == [a])
        posted = oauth.slack.thread(channel, ts)
        assert {m.team for m in posted} == {team_id}
        assert {m.user for m in posted} == {oauth.slack.workspaces[team_id].bot_user_id}
    await oauth.bot.worker.wait_idle()
    for call in oauth.slack.calls:
        channel = call.args.get("channel")
        if channel in CHANNELS.values():
            assert call.ok, (call.method, call.error)
            assert CHANNELS[str(call.team)] == channel, "every call with its workspace's token"


async def test_a_replayed_or_expired_state_is_refused(oauth: Slack) -> None:
    approval, cookie = await oauth.start_install("TA")
    back = await oauth.approve(approval)
    assert (await oauth.redirect(back, cookie))[0] == 200
    status, page = await oauth.redirect(back, cookie)  # the same link again
    assert status == 401 and "invalid_state" in page

    states = oauth.bot.oauth_flow.settings.state_store  # type: ignore[union-attr]
    approval, cookie = await oauth.start_install("TB")
    back = await oauth.approve(approval)
    states.clock = lambda: time.time() + 601  # type: ignore[attr-defined]  (ten minutes on)
    status, page = await oauth.redirect(back, cookie)
    assert status == 401 and "invalid_state" in page
    assert not await oauth.bot.redis.exists(oauth.keys.installation("TB"))

    no_cookie = await oauth.approve((await oauth.start_install("TB"))[0])
    status, _ = await oauth.redirect(no_cookie, "")
    assert status == 400, "a state from another browser"


async def test_an_org_wide_install_is_refused_with_a_page(oauth: Slack) -> None:
    approval, cookie = await oauth.start_install("TE")
    state = approval.split("state=")[1].split("&")[0]
    code = oauth.slack.grant("TE", ("chat:write",), org_wide=True)
    status, page = await oauth.redirect(
        f"{oauth.base_url}/slack/oauth_redirect?code={code}&state={state}", cookie
    )
    assert status == 400
    assert ORG_WIDE_REFUSED.split(".")[0] in page
    assert not [key async for key in oauth.bot.redis.scan_iter(oauth.keys.prefix + "install*")]
    assert oauth.slack.calls_to("auth.revoke"), "the org-wide token is given back"


async def test_uninstall_removes_the_installation_and_purges_the_data_later(
    oauth: Slack,
) -> None:
    for team_id in CHANNELS:
        assert (await oauth.install(team_id))[0] == 200
    asked = {team_id: await oauth.ask(team_id, "Who was Solon?") for team_id in CHANNELS}
    for channel, ts in asked.values():
        await oauth.slack.wait_for(lambda c=channel, t=ts: oauth.answers(c, t) == [
            "Answer 1: Who was Solon?"
        ])  # fmt: skip
    await oauth.bot.worker.wait_idle()
    redis, keys = oauth.bot.redis, oauth.keys

    # Slack revokes the token and tells the bot (both events come for one uninstall).
    oauth.slack.uninstall("TA")
    events = oauth.events("TA")
    try:
        status, _ = await events.send_event({"type": "app_uninstalled"})
        assert status == 200
        tokens = {"oauth": [], "bot": [oauth.slack.workspaces["TA"].bot_user_id]}
        assert (await events.send_event({"type": "tokens_revoked", "tokens": tokens}))[0] == 200
    finally:
        await events.close()
    assert not await redis.exists(keys.installation("TA"))
    assert await redis.exists(keys.installation("TB"))
    due = await oauth.bot.purges.scheduled("TA")  # type: ignore[union-attr]
    assert due is not None and abs(due - (time.time() + 30 * SECONDS_PER_DAY)) < 60

    # A later mention there is not answered, and nothing breaks: the other one still is.
    calls_before = len(oauth.slack.calls)
    await oauth.ask("TA", "Anyone there?")
    await oauth.bot.worker.wait_idle()
    assert not [c for c in oauth.slack.calls[calls_before:] if c.team == "TA"]
    channel, ts = await oauth.ask("TB", "Still there?")
    await oauth.slack.wait_for(lambda: oauth.answers(channel, ts) == ["Answer 1: Still there?"])

    # Thirty days on, the workspace's data goes; the other workspace's stays.
    def workspace_keys(team_id: str) -> list[str]:
        return [key for key in keys_now if f":{team_id}:" in key or key.endswith(f":{team_id}")]

    keys_now = [key async for key in redis.scan_iter(keys.prefix + "*")]
    assert workspace_keys("TA"), "the workspace has data to purge"
    histories = [
        await redis.get(k) for k in keys_now if k.startswith(keys.conversation("chat", "TA:"))
    ]
    purges = oauth.bot.purges
    assert purges is not None
    purges.clock = lambda: time.time() + 31 * SECONDS_PER_DAY
    assert await purges.run_due() == ["TA"]
    keys_now = [key async for key in redis.scan_iter(keys.prefix + "*")]
    left = [k for k in workspace_keys("TA") if ":seen:" not in k and ":turn:" not in k]
    assert left == [], left
    assert workspace_keys("TB")
    for history_id in histories:
        assert not await redis.exists(keys.chat_history(str(history_id)))
    assert await purges.scheduled("TA") is None


async def test_a_turn_in_flight_when_its_workspace_uninstalls_ends_quietly(oauth: Slack) -> None:
    assert (await oauth.install("TA"))[0] == 200
    release = oauth.openai.hold("POST", r"/chat/completions$")
    channel, ts = await oauth.ask("TA", "Who was Pericles?")
    await oauth.slack.wait_for(lambda: len(oauth.slack.thread(channel, ts)) == 1)  # Thinking…
    oauth.slack.uninstall("TA")
    events = oauth.events("TA")
    try:
        assert (await events.send_event({"type": "app_uninstalled"}))[0] == 200
    finally:
        await events.close()
    release.set()
    await oauth.bot.worker.wait_idle()
    scrape = (await oauth.bot.scrape(None))[0].decode()
    assert 'tutor_turns_total{outcome="undeliverable"} 1.0' in scrape

    # Installed again before the purge: the data is kept, and the bot answers again.
    assert (await oauth.install("TA"))[0] == 200
    assert await oauth.bot.purges.scheduled("TA") is None  # type: ignore[union-attr]
    channel, ts = await oauth.ask("TA", "And now?")
    await oauth.slack.wait_for(lambda: oauth.answers(channel, ts) == ["Answer 1: And now?"])
