"""The AI app surfaces: the Messages tab of `agent_view` apps, and the legacy
`assistant_view` threads. Both greet with suggested prompts; the conversation itself
arrives as direct messages (see events.py)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext

from bot.slack.assistant_threads import PROMPTS_TITLE, SUGGESTED_PROMPTS, AssistantThreads
from bot.slack.background import BackgroundTasks


def register_assistant_listeners(
    app: AsyncApp, threads: AssistantThreads, background: BackgroundTasks
) -> None:
    @app.event("app_home_opened")
    async def on_home_opened(event: dict[str, Any], context: AsyncBoltContext) -> None:
        """agent_view: the Messages tab opened. Prompts go to the channel, not a thread
        (Slack ignores the call for agent apps when a thread_ts is given)."""
        if event.get("tab") != "messages" or context.client is None:
            return
        background.spawn(
            context.client.assistant_threads_setSuggestedPrompts(
                channel_id=event["channel"], title=PROMPTS_TITLE, prompts=SUGGESTED_PROMPTS
            )
        )

    @app.event("assistant_thread_started")
    async def on_thread_started(event: dict[str, Any], context: AsyncBoltContext) -> None:
        """assistant_view (legacy): a new thread in the assistant pane."""
        thread = event.get("assistant_thread") or {}
        channel_id, thread_ts = thread.get("channel_id"), thread.get("thread_ts")
        if not channel_id or not thread_ts or context.client is None:
            return
        await threads.remember(channel_id, thread_ts)
        background.spawn(
            context.client.assistant_threads_setSuggestedPrompts(
                channel_id=channel_id,
                thread_ts=thread_ts,
                title=PROMPTS_TITLE,
                prompts=SUGGESTED_PROMPTS,
            )
        )

    @app.event("assistant_thread_context_changed")
    async def on_context_changed() -> None:
        """The user looked at another channel beside the pane: nothing the tutor needs."""
