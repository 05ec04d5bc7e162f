from bot.slack.edit_budget import EditBudget


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_edits_of_one_message_are_spaced() -> None:
    clock = Clock()
    budget = EditBudget(clock=clock)
    assert budget.allow_status_edit("T1", "m1")
    assert not budget.allow_status_edit("T1", "m1")
    assert budget.allow_status_edit("T1", "m2"), "other messages are not held back"
    clock.now += 1.0
    assert budget.allow_status_edit("T1", "m1")


def test_a_burst_in_one_workspace_is_capped_and_refills() -> None:
    clock = Clock()
    budget = EditBudget(per_minute=60, burst=5, clock=clock)
    allowed = [budget.allow_status_edit("T1", f"m{i}") for i in range(20)]
    assert allowed.count(True) == 5
    assert budget.allow_status_edit("T2", "x"), "workspaces have separate budgets"
    clock.now += 2.0
    assert [budget.allow_status_edit("T1", f"n{i}") for i in range(3)] == [True, True, False]


def test_answers_use_the_budget_without_being_refused() -> None:
    clock = Clock()
    budget = EditBudget(per_minute=60, burst=2, clock=clock)
    for i in range(4):
        budget.count_final_edit("T1", f"m{i}")
    assert not budget.allow_status_edit("T1", "new")


def test_only_edits_that_still_hold_a_message_back_are_remembered() -> None:
    """A long-running process streams many turns: what it remembers stays small."""
    clock = Clock()
    budget = EditBudget(per_minute=6000, burst=6000, clock=clock)
    for second in range(1000):
        for message in range(3):
            assert budget.allow_status_edit("T1", f"m{second}-{message}")
        clock.now += 0.5
    assert len(budget._last_edit) <= 6, "two spacing windows' worth at most"
    assert not budget.allow_status_edit("T1", "m999-0"), "recent edits still hold back"
