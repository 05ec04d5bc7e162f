from bot.slack.seen_recently import SeenRecently


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_new_once_and_any_of_several_keys_counts() -> None:
    seen = SeenRecently(clock=Clock())
    assert seen.first_time("message:C1:1.1", "event:Ev1")
    assert not seen.first_time("message:C1:1.1", "event:Ev1")
    assert not seen.first_time("message:C1:1.1", "event:Ev2"), "the same message, another event"
    assert not seen.first_time("event:Ev2"), "remembered from the call before"
    assert seen.first_time("message:C1:2.2")


def test_keys_are_forgotten_after_their_age() -> None:
    clock = Clock()
    seen = SeenRecently(max_age_seconds=60, clock=clock)
    seen.first_time("a")
    clock.now = 59
    assert not seen.first_time("a")
    seen.first_time("b")
    clock.now = 61
    assert seen.first_time("a")
    assert len(seen) == 2, "'a' again and 'b'"


def test_it_never_holds_more_than_its_size() -> None:
    seen = SeenRecently(max_keys=3, clock=Clock())
    for key in "abcde":
        seen.first_time(key)
    assert len(seen) == 3
    assert seen.first_time("a"), "the oldest went first"
    assert not seen.first_time("e")
