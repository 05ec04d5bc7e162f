"""Where a turn's answer goes, for a first attempt and for one resumed after a crash.

This is the one place that reads the journal to decide how a turn's reply continues: the
recorded place is reused (the surface ends a stream a dead process left open), a post that
was in flight when the process died is looked for before a second one is made, and after a
resumed turn the stray placeholders of earlier attempts are removed.
"""

from __future__ import annotations

import asyncio
import logging
import time

from bot.turns.records import Journal
from bot.turns.surface import ReplySurface

log = logging.getLogger(__name__)

# How long a placeholder post another process claimed may take before it counts as lost.
PLACEHOLDER_POST_SECONDS = 10.0
PLACE_CHECK_SECONDS = 0.05


async def place_answer(surface: ReplySurface, journal: Journal) -> None:
    """Make sure the turn's answer has a place: the recorded one, one being posted (the early
    placeholder shown at intake), a lost post, or a new one."""
    progress = journal.progress
    claimed = progress.place is None and await journal.claim_placeholder()
    if progress.place is None and not claimed:
        await _wait_for_place(journal)
    if progress.place is not None:
        await surface.restore(progress.place)
        return
    if not claimed:  # claimed by an attempt that died before recording a place
        found = await surface.find_placeholder()
        if found is not None:
            await journal.answer_placed(found)
            return
    await journal.answer_placed(await surface.show_placeholder())


async def _wait_for_place(journal: Journal) -> None:
    """Wait (a little) for the place of a post another attempt claimed to be recorded: the
    early placeholder is usually being posted right now. A claim older than that is an
    attempt that died."""
    while await journal.place_recorded() is None:
        claimed_at = journal.progress.placeholder_claimed_at
        if time.time() > claimed_at + PLACEHOLDER_POST_SECONDS:
            return
        await asyncio.sleep(PLACE_CHECK_SECONDS)


async def tidy_after_resume(surface: ReplySurface, journal: Journal, context: object) -> None:
    """After a turn that took more than one attempt, remove what earlier attempts left."""
    if journal.progress.attempts <= 1:
        return
    try:
        await surface.remove_strays()
    except Exception:  # tidying up; the answer is delivered
        log.exception("could not look for stray placeholders %s", context)
