import pytest

from bot.turns.text import clean_text


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Who was Hypatia?", "Who was Hypatia?"),
        ("lone \ud800high", "lone high"),
        ("lone \udc00low", "lone low"),
        ("at the end\ud83d", "at the end"),
        ("a\x00b", "ab"),
        ("bell\x07 escape\x1b[31m del\x7f c1\x85", "bell escape[31m del c1"),
        ("lines\nand\ttabs", "lines\nand\ttabs"),
        ("windows\r\nold mac\rend", "windows\nold mac\nend"),
        (
            "emoji 😀, accents é, a zero\u200dwidth joiner",
            "emoji 😀, accents é, a zero\u200dwidth joiner",
        ),
        ("a pair \ud83d\ude00 joined", "a pair 😀 joined"),
        ("", ""),
    ],
)
def test_clean_text_keeps_text_and_drops_what_is_not(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


def test_cleaned_text_encodes_as_utf8() -> None:
    clean_text("\ud800\udfff\ud800 x \udbff").encode("utf-8")
