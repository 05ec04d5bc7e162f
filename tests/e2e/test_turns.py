"""The whole flow, through Slack and model stand-ins over real HTTP, for every backend."""

from __future__ import annotations

from bot.local.scripted_model import MARKDOWN_SAMPLE
from bot.settings import BackendKind
from bot.slack.render import ZERO_WIDTH_SPACE
from tests.e2e.conftest import Harness

CHANNEL = "C100"
DM = "D100"
USER = "U100"


def thinking(text: str) -> bool:
    return "thinking" in text.lower()


async def test_mention_posts_placeholder_edits_status_and_answers_in_thread(
    harness: Harness,
) -> None:
    status, _, ts = await harness.events.mention(
        CHANNEL, USER, "<@UBOT> [slow:2] Who was Hypatia?"
    )  # slow enough that a status is always seen before the answer
    assert status == 200
    replies = await harness.wait_for_bot_replies(CHANNEL, ts, 1)
    answer = replies[0]
    assert harness.slack.visible_text(CHANNEL, answer.ts) == "Answer 1: Who was Hypatia?"

    posts = harness.slack.calls_to("chat.postMessage")
    assert len(posts) == 1
    assert posts[0].args["thread_ts"] == ts
    assert "thinking" in posts[0].args["text"].lower()
    edits = [c for c in harness.slack.calls_to("chat.update") if c.args["ts"] == answer.ts]
    assert len(edits) >= 2, "at least one status edit before the answer"
    assert thinking(edits[0].args["text"])
    assert not thinking(edits[-1].args["text"])


async def test_follow_up_in_the_thread_keeps_the_context(harness: Harness) -> None:
    _, _, root = await harness.events.mention(CHANNEL, USER, "<@UBOT> Who was Hypatia?")
    await harness.wait_for_bot_replies(CHANNEL, root, 1)
    await harness.events.mention(CHANNEL, USER, "<@UBOT> Where did she teach?", thread_ts=root)
    replies = await harness.wait_for_bot_replies(CHANNEL, root, 2)
    assert harness.slack.visible_text(CHANNEL, replies[1].ts) == "Answer 2: Where did she teach?"

    _, _, other = await harness.events.mention(CHANNEL, USER, "<@UBOT> A new topic")
    replies = await harness.wait_for_bot_replies(CHANNEL, other, 1)
    assert harness.slack.visible_text(CHANNEL, replies[0].ts) == "Answer 1: A new topic"


async def test_top_level_dms_are_one_conversation_and_dm_threads_their_own(
    harness: Harness,
) -> None:
    await harness.events.dm(DM, USER, "First question")
    await harness.slack.wait_for(
        lambda: _top_level_answers(harness) == ["Answer 1: First question"]
    )
    await harness.events.dm(DM, USER, "Second question")
    await harness.slack.wait_for(lambda: len(_top_level_answers(harness)) == 2)
    assert _top_level_answers(harness)[1] == "Answer 2: Second question"

    _, _, thread_root = await harness.events.dm(DM, USER, "Third, then a thread")
    await harness.slack.wait_for(lambda: len(_top_level_answers(harness)) == 3)
    await harness.events.dm(DM, USER, "In a thread", thread_ts=thread_root)
    replies = await harness.wait_for_bot_replies(DM, thread_root, 1)
    assert harness.slack.visible_text(DM, replies[0].ts) == "Answer 1: In a thread"
    for post in harness.slack.calls_to("chat.postMessage")[:3]:
        assert post.args.get("thread_ts") is None, "top-level DMs get top-level answers"


def _top_level_answers(harness: Harness) -> list[str]:
    texts = [
        harness.slack.visible_text(DM, m.ts)
        for m in harness.slack.channel_top_level(DM)
        if m.bot_id
    ]
    return [t for t in texts if not thinking(t)]


async def test_slash_command_starts_a_thread_that_mentions_continue(harness: Harness) -> None:
    status, _ = await harness.events.slash_command(
        "/tutor",
        "Why did Rome fall?",
        channel_id=CHANNEL,
        user_id=USER,
        response_url=harness.slack.new_response_url(),
    )
    assert status == 200
    await harness.slack.wait_for(lambda: bool(harness.slack.channel_top_level(CHANNEL)))
    root = harness.slack.channel_top_level(CHANNEL)[0]
    text = await harness.wait_for_text(CHANNEL, root.ts, lambda t: "Answer 1" in t)
    assert "Why did Rome fall?" in text and f"<@{USER}>" in text
    assert "Answer 1: Why did Rome fall?" in text

    await harness.events.mention(CHANNEL, USER, "<@UBOT> And the East?", thread_ts=root.ts)
    replies = await harness.wait_for_bot_replies(CHANNEL, root.ts, 2)
    assert harness.slack.visible_text(CHANNEL, replies[-1].ts) == "Answer 2: And the East?"


async def test_slash_command_help_is_ephemeral(harness: Harness) -> None:
    for text in ("help", ""):
        status, body = await harness.events.slash_command(
            "/tutor", text, channel_id=CHANNEL, user_id=USER, response_url="http://unused"
        )
        assert status == 200
        assert '"response_type": "ephemeral"' in body.replace('":"', '": "')
        assert "/tutor help" in body
    assert harness.openai.requests == []


async def test_slash_command_where_the_bot_cannot_post_answers_via_response_url(
    harness: Harness,
) -> None:
    harness.slack.channels_without_bot.add("C_NOT_MEMBER")
    await harness.events.slash_command(
        "/tutor",
        "Who built Petra?",
        channel_id="C_NOT_MEMBER",
        user_id=USER,
        response_url=harness.slack.new_response_url(),
    )
    await harness.slack.wait_for(
        lambda: any(
            "Answer 1: Who built Petra?" in p.get("text", "")
            for p in harness.slack.response_url_posts
        )
    )
    visible = [
        p for p in harness.slack.response_url_posts if p.get("response_type") == "in_channel"
    ]
    assert visible and "Who built Petra?" in visible[0]["text"]


async def test_failed_run_ends_in_a_plain_message(harness: Harness) -> None:
    _, _, ts = await harness.events.mention(CHANNEL, USER, "<@UBOT> [fail] Who was Caesar?")
    replies = await harness.wait_for_bot_replies(CHANNEL, ts, 1)
    text = harness.slack.visible_text(CHANNEL, replies[0].ts)
    assert "Sorry" in text and not thinking(text)


async def test_run_past_its_deadline_is_cancelled(harness: Harness) -> None:
    await harness.restart(run_timeout=0.5)
    _, _, ts = await harness.events.mention(CHANNEL, USER, "<@UBOT> [slow:5] A long one")
    replies = await harness.wait_for_bot_replies(CHANNEL, ts, 1)
    text = harness.slack.visible_text(CHANNEL, replies[0].ts)
    assert "took longer than 0.5 seconds" in text
    assert any("cancel" in r.path for r in harness.openai.requests) or (
        harness.settings.backend.value == "chat"
    )


async def test_a_restart_keeps_the_conversation_map(harness: Harness) -> None:
    _, _, root = await harness.events.mention(CHANNEL, USER, "<@UBOT> Who was Ashoka?")
    await harness.wait_for_bot_replies(CHANNEL, root, 1)
    await harness.restart()
    await harness.events.mention(CHANNEL, USER, "<@UBOT> What did he believe?", thread_ts=root)
    replies = await harness.wait_for_bot_replies(CHANNEL, root, 2)
    assert harness.slack.visible_text(CHANNEL, replies[1].ts) == "Answer 2: What did he believe?"


async def test_a_redelivered_event_adds_nothing(harness: Harness) -> None:
    event_ts = "1700000000.000100"
    status, _, ts = await harness.events.mention(
        CHANNEL, USER, "<@UBOT> Once only", ts=event_ts, event_id="Ev_ONCE"
    )
    assert status == 200
    for retry in (1, 2, 3):
        status, _, _ = await harness.events.mention(
            CHANNEL, USER, "<@UBOT> Once only", ts=event_ts, event_id="Ev_ONCE", retry_num=retry
        )
        assert status == 200
    await harness.events.channel_message(CHANNEL, USER, "<@UBOT> Once only", ts=event_ts)
    await harness.wait_for_bot_replies(CHANNEL, ts, 1)
    await harness.wait_idle()
    assert len(harness.slack.calls_to("chat.postMessage")) == 1
    user_messages = [
        r for r in harness.openai.requests if r.method == "POST" and _adds_user_message(r.path)
    ]
    assert len(user_messages) == 1


def _adds_user_message(path: str) -> bool:
    return path.endswith("/messages") or path.endswith("/responses") or "chat/completions" in path


async def test_model_output_never_broadcasts(harness: Harness) -> None:
    question = "<@UBOT> [echo] <!channel> <!here> <!everyone> <!subteam^S1> <@U999> hi"
    _, _, ts = await harness.events.mention(CHANNEL, USER, question)
    [reply] = await harness.wait_for_bot_replies(CHANNEL, ts, 1)
    shown = harness.slack.visible_text(CHANNEL, reply.ts)  # the markdown block
    for text in (shown, reply.text, str(reply.blocks)):
        for dangerous in ("<!channel>", "<!here>", "<!everyone>", "<!subteam^S1>", "<@U999>"):
            assert dangerous not in text
    assert "&lt;!channel&gt;" in reply.text, "the notification text is escaped mrkdwn"
    assert (
        shown.replace(ZERO_WIDTH_SPACE, "")
        == "<!channel> <!here> <!everyone> <!subteam^S1> <@U999> hi"
    )


async def test_a_long_answer_continues_in_order_in_the_thread(harness: Harness) -> None:
    _, _, ts = await harness.events.mention(CHANNEL, USER, "<@UBOT> [long:9000] Tell me all")
    await harness.slack.wait_for(
        lambda: (
            sum(len(harness.slack.visible_text(CHANNEL, m.ts)) for m in _bot(harness, ts)) >= 8900
            and not any(
                thinking(harness.slack.visible_text(CHANNEL, m.ts)) for m in _bot(harness, ts)
            )
        )
    )
    await harness.wait_idle()
    parts = [harness.slack.visible_text(CHANNEL, m.ts) for m in _bot(harness, ts)]
    assert len(parts) >= 3
    assert all(len(p) <= 4000 for p in parts)
    numbers = [int(n) for p in parts for n in _paragraph_numbers(p)]
    assert numbers == sorted(numbers) and numbers[0] == 1


def _bot(harness: Harness, ts: str) -> list:
    return [m for m in harness.slack.thread(CHANNEL, ts) if m.bot_id]


def _paragraph_numbers(text: str) -> list[str]:
    import re

    return re.findall(r"Paragraph (\d+)", text)


async def test_messages_from_bots_and_edits_are_ignored(harness: Harness) -> None:
    await harness.events.send_event(
        {"type": "message", "channel": DM, "channel_type": "im", "user": "U2", "bot_id": "B2",
         "text": "I am a bot", "ts": "1700000001.000100"}
    )  # fmt: skip
    await harness.events.send_event(
        {"type": "message", "subtype": "message_changed", "channel": DM, "channel_type": "im",
         "ts": "1700000002.000100", "message": {"text": "edited", "user": USER}}
    )  # fmt: skip
    await harness.wait_idle()
    assert harness.slack.calls_to("chat.postMessage") == []
    assert harness.openai.requests == [] or all(
        r.path.endswith("/assistants") for r in harness.openai.requests
    )


async def test_markdown_answers_are_shown_as_markdown_with_mrkdwn_text(harness: Harness) -> None:
    _, _, ts = await harness.events.mention(CHANNEL, USER, "<@UBOT> [markdown] Caesar?")
    [reply] = await harness.wait_for_bot_replies(CHANNEL, ts, 1)
    assert reply.blocks is not None
    markdown, feedback = reply.blocks  # the answer, and the feedback buttons under it
    assert markdown == {"type": "markdown", "text": f"Answer 1: Caesar?\n\n{MARKDOWN_SAMPLE}"}
    assert feedback["type"] == "context_actions"
    text = reply.text  # notifications and older clients: Slack's own mrkdwn
    assert "*Key points*" in text and "## " not in text, "a heading is a bold line"
    assert "*Caesar* crossed the Rubicon in _49 BC_." in text
    assert "• He was a general" in text
    assert '```\nprint("veni, vidi, vici")\n```' in text, "code is kept verbatim"
    assert "<https://en.wikipedia.org/wiki/Julius_Caesar|Wikipedia>" in text


async def test_citations_become_numbered_footnotes(harness: Harness) -> None:
    _, _, ts = await harness.events.mention(CHANNEL, USER, "<@UBOT> [cite] Greek historians?")
    [reply] = await harness.wait_for_bot_replies(CHANNEL, ts, 1)
    text = harness.slack.visible_text(CHANNEL, reply.ts)
    body, _, sources = text.partition("\n\n**Sources**\n")
    assert body.endswith(
        "Herodotus wrote the Histories.[1] Thucydides wrote about the Peloponnesian War.[2] "
        "Herodotus was born in Halicarnassus.[1]"
    )
    assert "†source" not in body, "the server's own markers are replaced"
    if harness.settings.backend is not BackendKind.ASSISTANTS:  # URL citations
        assert sources == (
            "1. [Herodotus](https://en.wikipedia.org/wiki/Herodotus)\n"
            "2. [Thucydides](https://en.wikipedia.org/wiki/Thucydides)"
        )
        assert "<https://en.wikipedia.org/wiki/Herodotus|Herodotus>" in reply.text
    else:
        assert sources == "1. File file-herodotus\n2. File file-thucydides"
