"""Slack mrkdwn as readable terminal text, for the local mode's chat.

The bot posts what Slack shows: `*bold*`, `_italic_`, `<url|label>` links, `&amp;`-escaped
text, code blocks. A terminal shows it as a person would read it in Slack: styles as ANSI
escapes when the output is a terminal (plain text otherwise), links as "label (url)".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FENCE = "```"
CODE_INDENT = "    "

# Code spans and <…> tokens are rendered on their own, then stand in the text as markers
# (private-use characters: not letters, not spaces) so styles can surround them.
_TOKEN = re.compile(r"`[^`\n]+`|<[^<>\n]+>")
_MARKER = re.compile("\ue000(\\d+)\ue001")
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?!\w)")
_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])")
_EMOJI = re.compile(r":([a-z0-9_+-]+):")
EMOJI = {
    "warning": "⚠",
    "x": "✖",
    "white_check_mark": "✔",
    "heavy_check_mark": "✔",
    "information_source": "ℹ",
    "wave": "👋",
}
SPECIAL_MENTIONS = {"here", "channel", "everyone"}


# While a line is styled, emphasis is marked with private-use characters (neither word
# characters nor spaces, so nested styles still match); `Style` turns them into ANSI or nothing.
BOLD = ("\ue010", "\ue011")
ITALIC = ("\ue012", "\ue013")
STRIKE = ("\ue014", "\ue015")
ANSI = {
    BOLD[0]: "\x1b[1m",
    BOLD[1]: "\x1b[22m",
    ITALIC[0]: "\x1b[3m",
    ITALIC[1]: "\x1b[23m",
    STRIKE[0]: "\x1b[9m",
    STRIKE[1]: "\x1b[29m",
}
_STYLE_MARK = re.compile("[" + "".join(ANSI) + "]")


@dataclass(frozen=True)
class Style:
    """How emphasis is shown: ANSI escapes on a terminal, nothing on a pipe or file."""

    ansi: bool

    def finish(self, text: str) -> str:
        """Replace the emphasis marks by ANSI escapes (or drop them)."""
        return _STYLE_MARK.sub(lambda m: ANSI[m.group(0)] if self.ansi else "", text)

    def dim(self, text: str) -> str:
        return f"\x1b[2m{text}\x1b[22m" if self.ansi else text


PLAIN = Style(ansi=False)


def unescape(text: str) -> str:
    """Undo Slack's escaping of its three control characters (`&amp;` last)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def mrkdwn_to_terminal(text: str, style: Style = PLAIN) -> str:
    """The text a person would read in Slack, styled for a terminal (or plain)."""
    parts = text.split(FENCE)
    rendered: list[str] = []
    for index, part in enumerate(parts):
        if index % 2:
            rendered.append(_code_block(part))
            continue
        if index > 0:  # the line break after a closing fence
            part = part.removeprefix("\n")
        if index < len(parts) - 1:  # the line break before an opening fence
            part = part.removesuffix("\n")
        rendered.append("\n".join(_prose_line(line, style) for line in part.split("\n")))
    return "\n".join(piece for piece in rendered if piece).strip("\n")


def _code_block(code: str) -> str:
    """A fenced block, indented so it stands out, its text exactly as written."""
    lines = unescape(code).strip("\n").split("\n")
    return "\n".join(CODE_INDENT + line if line else "" for line in lines)


def _prose_line(line: str, style: Style) -> str:
    tokens: list[str] = []

    def stash(match: re.Match[str]) -> str:
        tokens.append(_token(match.group(0)))
        return f"\ue000{len(tokens) - 1}\ue001"

    line = _TOKEN.sub(stash, line)
    for pattern, (start, end) in ((_BOLD, BOLD), (_ITALIC, ITALIC), (_STRIKE, STRIKE)):
        line = pattern.sub(lambda m, s=start, e=end: f"{s}{m.group(1)}{e}", line)
    line = _EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), unescape(line))
    return style.finish(_MARKER.sub(lambda m: tokens[int(m.group(1))], line))


def _token(token: str) -> str:
    """An inline code span (kept with its backticks) or a `<…>` link, mention or special."""
    if token.startswith("`"):
        return unescape(token)
    target, _, label = token[1:-1].partition("|")
    target, label = unescape(target), unescape(label)
    if target.startswith("@"):
        return "@" + (label or target[1:])
    if target.startswith("#"):
        return "#" + (label or target[1:])
    if target.startswith("!"):
        name = target[1:].split("^", 1)[0]
        if name in SPECIAL_MENTIONS:
            return "@" + name
        return label or name
    plain_target = target.removeprefix("mailto:")
    if not label or label in (target, plain_target):
        return plain_target
    return f"{label} ({target})"
