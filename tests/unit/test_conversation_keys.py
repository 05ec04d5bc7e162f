from bot.slack.conversation_keys import direct_message_place, mention_place, without_mention


def test_mention_at_top_level_starts_a_thread_on_the_message() -> None:
    assert mention_place("T1", {"channel": "C1", "ts": "1.1"}) == ("T1:C1:1.1", "1.1")


def test_mention_in_a_thread_stays_in_that_thread() -> None:
    event = {"channel": "C1", "ts": "2.2", "thread_ts": "1.1"}
    assert mention_place("T1", event) == ("T1:C1:1.1", "1.1")


def test_top_level_dms_share_one_conversation_and_answer_at_top_level() -> None:
    first = direct_message_place("T1", {"channel": "D1", "ts": "1.1"})
    second = direct_message_place("T1", {"channel": "D1", "ts": "2.2"})
    assert first == second == ("T1:D1:top", None)


def test_dm_thread_is_its_own_conversation() -> None:
    event = {"channel": "D1", "ts": "2.2", "thread_ts": "1.1"}
    assert direct_message_place("T1", event) == ("T1:D1:1.1", "1.1")
    root = {"channel": "D1", "ts": "1.1", "thread_ts": "1.1"}
    assert direct_message_place("T1", root) == ("T1:D1:top", None)


def test_only_the_bots_own_mention_is_removed() -> None:
    assert without_mention("<@UBOT> who was <@U2>?", "UBOT") == "who was <@U2>?"
    assert without_mention("hey <@UBOT|tutor>  tell me", "UBOT") == "hey tell me"
    assert without_mention("<@UBOT>", "UBOT") == ""
