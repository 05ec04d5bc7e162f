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


def test_a_subcommand_of_several_words_is_read_whatever_its_spacing_and_case() -> None:
    assert subcommand_word("Mode   Guided") == "mode guided"
    assert subcommand_word("mode\tdirect ") == "mode direct"
    assert subcommand_word("mode of a distribution?") == "mode of a distribution?", "a question"
