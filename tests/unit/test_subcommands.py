"""Which `/tutor` texts name a subcommand: a word alone, or a word that takes text first."""

from __future__ import annotations

from bot.slack.listeners.commands import subcommand_word


def test_a_subcommand_is_its_word_and_quiz_takes_a_topic() -> None:
    assert subcommand_word("") == "help"
    assert subcommand_word("New") == "new"
    assert subcommand_word("quiz") == "quiz"
    assert subcommand_word("Quiz Roman roads") == "quiz"
    assert subcommand_word("quiz\nRoman roads") == "quiz"
    assert subcommand_word("new ideas in Rome?") == "new ideas in rome?", "a question"
    assert subcommand_word("quizzes in antiquity?") == "quizzes in antiquity?", "a question"
