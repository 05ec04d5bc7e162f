"""Slack mrkdwn shown in the local mode's terminal chat: readable, styled only on a terminal."""

from __future__ import annotations

import pytest

from bot.local.scripted_model import MARKDOWN_SAMPLE
from bot.local.terminal_text import Style, mrkdwn_to_terminal, unescape
from bot.slack.render import markdown_to_mrkdwn

ANSI = Style(ansi=True)


@pytest.mark.parametrize(
    ("mrkdwn", "plain"),
    [
        ("_Thinking…_", "Thinking…"),
        ("*Solon* reformed _Athens_ ~once~", "Solon reformed Athens once"),
        ("read <https://example.org/a_b|the docs>", "read the docs (https://example.org/a_b)"),
        ("<https://example.org>", "https://example.org"),
        ("<mailto:a@b.org|a@b.org>", "a@b.org"),
        ("hi <@U123> and <@U9|ann> in <#C1|general>", "hi @U123 and @ann in #general"),
        ("<!here> <!subteam^S1|@team>", "@here @team"),
        ("a &lt;b&gt; &amp;lt; c", "a <b> &lt; c"),
        (":warning: The model failed", "⚠ The model failed"),
        ("snake_case_name and 2*3*4", "snake_case_name and 2*3*4"),
        ("`*not bold*` and `&lt;x&gt;`", "`*not bold*` and `<x>`"),
        ("*bold with <https://x.org|a link>*", "bold with a link (https://x.org)"),
    ],
)
def test_plain_output_reads_like_slack_shows_it(mrkdwn: str, plain: str) -> None:
    assert mrkdwn_to_terminal(mrkdwn) == plain


def test_styles_are_ansi_on_a_terminal() -> None:
    assert mrkdwn_to_terminal("*bold*", ANSI) == "\x1b[1mbold\x1b[22m"
    assert mrkdwn_to_terminal("_it_", ANSI) == "\x1b[3mit\x1b[23m"
    assert mrkdwn_to_terminal("~gone~", ANSI) == "\x1b[9mgone\x1b[29m"
    assert mrkdwn_to_terminal("*_both_*", ANSI) == "\x1b[1m\x1b[3mboth\x1b[23m\x1b[22m"


def test_no_escape_codes_without_a_terminal() -> None:
    assert "\x1b" not in mrkdwn_to_terminal(markdown_to_mrkdwn(MARKDOWN_SAMPLE))


def test_code_blocks_are_indented_and_kept_verbatim() -> None:
    text = "Try:\n```\nif a &lt; b and *x*:\n    pass\n```\nDone."
    assert mrkdwn_to_terminal(text, ANSI) == "Try:\n    if a < b and *x*:\n        pass\nDone."


def test_a_rendered_model_answer_reads_well() -> None:
    shown = mrkdwn_to_terminal(markdown_to_mrkdwn(MARKDOWN_SAMPLE))
    assert shown.splitlines()[:3] == ["Key points", "", "Caesar crossed the Rubicon in 49 BC."]
    assert "• He was a general" in shown
    assert '    print("veni, vidi, vici")' in shown
    assert shown.endswith("Read more on Wikipedia (https://en.wikipedia.org/wiki/Julius_Caesar).")


def test_unescape_turns_ampersand_last() -> None:
    assert unescape("&amp;gt; &gt;") == "&gt; >"
