"""Where a turn's answer goes, for a first attempt and for one resumed after a crash.

This is the one place that reads the journal to decide how a turn's reply continues: the
recorded place is reused (the surface ends a stream a dead process left open), a post that
was in flight when the process died is looked for before a second one is made, and after a
resumed turn the stray placeholders of earlier attempts are removed.
"""

from __future__ import annotations

import logging

from bot.turns.records import Journal
from bot.turns.surface import ReplySurface

log = logging.getLogger(__name__)


async def place_answer(surface: ReplySurface, journal: Journal) -> None:
    """Make sure the turn's answer has a place: the recorded one, a lost post, or a new one."""
    progress = journal.progress
    if progress.place is not None:
        await surface.restore(progress.place)
        return
    if progress.posting_placeholder:
        found = await surface.find_placeholder()
        if found is not None:
            await journal.answer_placed(found)
            return
    await journal.placeholder_posting()
    await journal.answer_placed(await surface.show_placeholder())


async def tidy_after_resume(surface: ReplySurface, journal: Journal, context: object) -> None:
    """After a turn that took more than one attempt, remove what earlier attempts left."""
    if journal.progress.attempts <= 1:
        return
    try:
        await surface.remove_strays()
    except Exception:  # tidying up; the answer is delivered
        log.exception("could not look for stray placeholders %s", context)
