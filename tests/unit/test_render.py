from bot.slack.render import (
    ZERO_WIDTH_SPACE,
    escape_mrkdwn,
    neutralise_markdown,
    render_partial,
    split_message,
)


def test_escape_neutralises_broadcasts_and_mentions() -> None:
    text = "Hi <!channel> <!here> <!everyone> <!subteam^S123> <@U1> & <https://x|y>"
    escaped = escape_mrkdwn(text)
    assert "<" not in escaped and ">" not in escaped
    assert "&lt;!channel&gt;" in escaped
    assert "&amp;" in escaped


def test_short_text_is_one_chunk() -> None:
    assert split_message("hello") == ["hello"]
    assert split_message("") == [""]


def test_split_prefers_paragraph_boundaries_and_keeps_order() -> None:
    paragraphs = [f"Paragraph {i}. " + "word " * 40 for i in range(60)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    chunks = split_message(text, limit=1000)
    assert all(len(chunk) <= 1000 for chunk in chunks)
    assert "\n\n".join(chunks) == text
    for chunk in chunks:
        assert chunk.startswith("Paragraph")


def test_long_paragraph_is_split_at_spaces_without_losing_text() -> None:
    text = " ".join(f"w{i}" for i in range(3000))
    chunks = split_message(text, limit=500)
    assert all(len(chunk) <= 500 for chunk in chunks)
    assert "".join(chunks) == text


def test_code_block_split_is_closed_and_reopened() -> None:
    code = "\n".join(f"print({i})" for i in range(400))
    text = f"Intro\n\n```python\n{code}\n```\n\nOutro"
    chunks = split_message(text, limit=600)
    assert all(len(chunk) <= 600 for chunk in chunks)
    code_chunks = [chunk for chunk in chunks if "print(" in chunk]
    assert len(code_chunks) > 1
    for chunk in code_chunks:
        block = chunk[chunk.index("```python") :]
        assert block.startswith("```python\n")
        assert chunk.count("```") == 2, "every chunk opens and closes its part of the code"
    lines = [line for chunk in code_chunks for line in chunk.split("\n") if "print(" in line]
    assert lines == code.split("\n")
    assert chunks[-1].endswith("Outro")


def test_code_block_with_blank_lines_stays_one_block() -> None:
    text = "```\na\n\nb\n```"
    assert split_message(text) == [text]


def test_unclosed_fence_is_closed() -> None:
    assert split_message("```\ncode") == ["```\ncode\n```"]


def test_markdown_becomes_slack_mrkdwn() -> None:
    from bot.slack.render import markdown_to_mrkdwn

    source = "## A **big** title\nSome **bold**, *italic*, __also bold__, ~~old~~.\n- one\n+ two"
    assert markdown_to_mrkdwn(source).split("\n") == [
        "*A big title*",
        "Some *bold*, _italic_, *also bold*, ~old~.",
        "• one",
        "• two",
    ]


def test_links_are_built_only_from_web_urls_and_escaped() -> None:
    from bot.slack.render import markdown_to_mrkdwn

    assert markdown_to_mrkdwn("[Rome](https://x.org/a?b=1&c=2)") == (
        "<https://x.org/a?b=1&amp;c=2|Rome>"
    )
    unsafe = markdown_to_mrkdwn("[x](javascript:alert(1)) [<!here>](https://x.org)")
    assert "<javascript" not in unsafe
    assert "<!here>" not in unsafe and "&lt;!here&gt;" in unsafe


def test_code_is_verbatim_but_escaped_and_fence_languages_dropped() -> None:
    from bot.slack.render import markdown_to_mrkdwn

    source = "`**x** <y>`\n```python\nif a < b: **c**\n```"
    assert markdown_to_mrkdwn(source) == "`**x** &lt;y&gt;`\n```\nif a &lt; b: **c**\n```"


def test_rendered_markdown_never_contains_a_working_broadcast() -> None:
    from bot.slack.render import markdown_to_mrkdwn

    hostile = "<!channel> **<!here>** [<!everyone>](https://a.b) `<!subteam^S1>` > <@U1>"
    rendered = markdown_to_mrkdwn(hostile)
    for token in ("<!channel>", "<!here>", "<!everyone>", "<!subteam^S1>", "<@U1>"):
        assert token not in rendered


def test_neutralised_markdown_has_no_working_references_and_grows_by_appending() -> None:
    text = "Hi <!channel> <!here> <!everyone> <!subteam^S1> <@U1> <#C1> a < b **bold**"
    safe = neutralise_markdown(text)
    for reference in ("<!channel>", "<!here>", "<!everyone>", "<!subteam^", "<@U1>", "<#C1>"):
        assert reference not in safe
    assert safe.replace(ZERO_WIDTH_SPACE, "") == text, "it still reads as written"
    for cut in range(len(text)):
        assert safe.startswith(neutralise_markdown(text[:cut])), f"not a prefix at {cut}"


def test_a_partial_answer_is_rendered_within_the_limit_with_its_code_block_closed() -> None:
    assert render_partial("**So far** <!here>") == "*So far* &lt;!here&gt;"
    partial = "Intro.\n\n```python\nprint(1)\n" + "x = 1\n" * 1000
    shown = render_partial(partial, limit=500)
    assert len(shown) <= 502 and shown.endswith(" …")
    body = shown.removesuffix(" …")
    assert body.count("```") % 2 == 0, "the code block is closed"
