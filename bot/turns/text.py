"""Making a person's message into text every model server can take.

Slack's JSON can carry what is not text at all: a lone UTF-16 surrogate (half of an emoji
cut in two) cannot be encoded as UTF-8, so the request to the model server fails; NUL and
other control characters are refused or mangled by some servers. None of them means
anything to the model, so they are dropped before a turn is made. Newlines and tabs are
text and stay.
"""

from __future__ import annotations

import unicodedata

_KEPT_CONTROLS = frozenset("\n\t")


def clean_text(text: str) -> str:
    """`text` without lone surrogates and control characters other than newline and tab.

    Surrogate pairs are joined into the character they stand for; line ends become "\\n".
    """
    text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "ignore")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c for c in text if c in _KEPT_CONTROLS or unicodedata.category(c) != "Cc")
