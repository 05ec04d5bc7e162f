"""Making model output safe and sized for Slack messages.

`&`, `<` and `>` are control characters in Slack's mrkdwn: escaping them is what keeps a
model from posting a working `<!channel>`, `<!here>`, `<!everyone>`, `<!subteam^…>` or
`<@U…>`. Long answers are split where a reader would pause (paragraphs), and a code block
cut in two is closed and reopened so both halves still render as code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Slack recommends at most 4,000 characters of `text`; stay under with room for a fence.
MESSAGE_LIMIT = 3_900
# A section block's text is at most 3,000 characters (the placeholder shows partial answers).
SECTION_LIMIT = 2_900
# Slack's markdown_text is at most 12,000 characters per message.
MARKDOWN_LIMIT = 11_500
FENCE = "```"
_SPACE_BEFORE_LIMIT = re.compile(r"\s+\S*$")


def escape_mrkdwn(text: str) -> str:
    """Escape Slack's control characters so text is shown as written, never as a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_SLACK_REFERENCE = re.compile(r"<(?=[!@#])")
ZERO_WIDTH_SPACE = "\u200b"


def neutralise_markdown(markdown: str) -> str:
    """Markdown for Slack's `markdown_text`, with no `<!here>`, `<@U…>` or `<#C…>` it would act on.

    A zero-width space after such a `<` keeps the text looking as written. The change is
    local, so the neutralised form of a growing text stays a prefix of its later forms,
    which is what lets a stream append only the new part.
    """
    return _SLACK_REFERENCE.sub("<" + ZERO_WIDTH_SPACE, markdown)


def render_partial(markdown: str, limit: int = SECTION_LIMIT) -> str:
    """An answer still being written, as mrkdwn of at most `limit` characters (+ " …")."""
    first, *rest = split_message(markdown_to_mrkdwn(markdown), limit)
    return f"{first} …" if rest else first


_INLINE_CODE = re.compile(r"(`[^`\n]+`)")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^\s)]+|mailto:[^\s)]+)\)")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+")
_QUOTE = re.compile(r"^\s{0,3}>\s?")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_BOLD_MARK = "\x00"


def markdown_to_mrkdwn(markdown: str) -> str:
    """Render a model's Markdown as Slack mrkdwn, every character of the text escaped.

    Code (fenced and inline) is kept verbatim; headings become bold lines, bullets "•",
    links `<url|text>`, **bold** `*bold*`, *italic* `_italic_`, ~~strike~~ `~strike~`.
    The only `<` in the result are those of links we built from http(s)/mailto URLs, so
    model output can never form `<!channel>` or a mention.
    """
    lines: list[str] = []
    in_fence = False
    for line in markdown.split("\n"):
        if line.strip().startswith(FENCE):
            in_fence = not in_fence
            lines.append(FENCE)  # Slack ignores a language name; it would show as text
        elif in_fence:
            lines.append(escape_mrkdwn(line))
        else:
            lines.append(_render_line(line))
    return "\n".join(lines)


def _render_line(line: str) -> str:
    if _RULE.match(line):
        return "──────────"
    heading = _HEADING.match(line)
    if heading:
        return f"*{_render_inline(heading.group(1)).replace('*', '')}*"
    prefix = ""
    quote = _QUOTE.match(line)
    if quote:
        prefix, line = ">", line[quote.end() :]
        prefix += " " if line else ""
    bullet = _BULLET.match(line)
    if bullet:
        prefix += f"{bullet.group(1)}• "
        line = line[bullet.end() :]
    return prefix + _render_inline(line)


def _render_inline(text: str) -> str:
    parts = _INLINE_CODE.split(text)
    rendered = []
    for index, part in enumerate(parts):
        rendered.append(escape_mrkdwn(part) if index % 2 else _render_prose(part))
    return "".join(rendered)


def _render_prose(text: str) -> str:
    links: list[str] = []

    def keep_link(match: re.Match[str]) -> str:
        label = _render_prose(match.group(1)).replace("|", "¦")
        url = escape_mrkdwn(match.group(2)).replace("|", "%7C")
        links.append(f"<{url}|{label}>")
        return f"\x01{len(links) - 1}\x01"

    text = _LINK.sub(keep_link, text)
    text = escape_mrkdwn(text)
    text = _BOLD.sub(lambda m: f"{_BOLD_MARK}{m.group(2)}{_BOLD_MARK}", text)
    text = _ITALIC.sub(lambda m: f"_{m.group(1)}_", text)
    text = _STRIKE.sub(lambda m: f"~{m.group(1)}~", text)
    text = text.replace(_BOLD_MARK, "*")
    return re.sub("\x01(\\d+)\x01", lambda m: links[int(m.group(1))], text)


@dataclass(frozen=True)
class _Segment:
    text: str
    fence_opening: str | None = None  # "```lang" when the segment is a fenced code block


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split `text` into chunks of at most `limit` characters, in order, losing nothing.

    Prefers paragraph boundaries, then line breaks, then spaces; a fenced code block that
    must be split is closed at the end of one chunk and reopened at the start of the next.
    """
    if limit < 2 * len(FENCE) + 20:
        raise ValueError("limit too small to split code blocks")
    chunks: list[str] = []
    current = ""
    for segment in _segments(text):
        for piece in _pieces(segment, limit):
            joined = f"{current}\n\n{piece}" if current else piece
            if len(joined) <= limit:
                current = joined
            else:
                chunks.append(current)
                current = piece
    if current or not chunks:
        chunks.append(current)
    return chunks


def _segments(text: str) -> list[_Segment]:
    """Paragraphs and whole fenced code blocks, in order."""
    segments: list[_Segment] = []
    paragraph: list[str] = []
    code: list[str] | None = None
    for line in text.split("\n"):
        if code is not None:
            code.append(line)
            if line.strip().startswith(FENCE):
                segments.append(_Segment("\n".join(code), fence_opening=code[0].strip()))
                code = None
        elif line.strip().startswith(FENCE):
            _flush(paragraph, segments)
            code = [line]
        elif not line.strip():
            _flush(paragraph, segments)
        else:
            paragraph.append(line)
    _flush(paragraph, segments)
    if code is not None:  # an unclosed fence: close it so the rest is not swallowed
        segments.append(_Segment("\n".join([*code, FENCE]), fence_opening=code[0].strip()))
    return segments


def _flush(paragraph: list[str], segments: list[_Segment]) -> None:
    if paragraph:
        segments.append(_Segment("\n".join(paragraph)))
        paragraph.clear()


def _pieces(segment: _Segment, limit: int) -> list[str]:
    """The segment itself, or parts of it no longer than `limit`."""
    if len(segment.text) <= limit:
        return [segment.text]
    if segment.fence_opening is None:
        return _split_plain(segment.text, limit)
    opening = segment.fence_opening
    body = segment.text.split("\n")[1:-1]
    room = limit - len(opening) - len(FENCE) - 2
    return [f"{opening}\n{part}\n{FENCE}" for part in _split_plain("\n".join(body), room)]


def _split_plain(text: str, limit: int) -> list[str]:
    """Split at the last line break, else the last space, else hard, before `limit`."""
    parts: list[str] = []
    while len(text) > limit:
        window = text[:limit]
        cut = window.rfind("\n")
        if cut <= 0:
            space = _SPACE_BEFORE_LIMIT.search(window)
            cut = space.start() if space and space.start() > 0 else limit
        parts.append(text[:cut])
        text = text[cut:].lstrip("\n") if text[cut : cut + 1] == "\n" else text[cut:]
    if text:
        parts.append(text)
    return parts
