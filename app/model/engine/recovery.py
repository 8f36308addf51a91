"""Crash recovery: re-apply the journaled mutations the HDF5 file lacks.

The file holds the state after mutation ``checkpoint_mutation_id``; the
journal holds every mutation.  Replay applies the same block transforms to
the same blocks (:meth:`Mutation.replay_transform`), so a crash at any point
leaves each mutation fully applied or not at all; a labelmap mutation's
mapping changes are applied again to the mapping the file holds.
"""

from __future__ import annotations

from collections.abc import Callable

from app.model.engine.commit import Committer
from app.model.engine.context import EngineContext
from app.model.engine.scheduler import BlockScheduler
from app.model.journal.journal import Journal
from app.model.mutations import Mutation, record_from_json


def replay(
    journal: Journal,
    scheduler: BlockScheduler,
    context: EngineContext,
    committer: Committer,
    after: int,
    *,
    complete: bool,
    remap: Callable[[Mutation], object],
) -> list[int]:
    """Re-apply, on the blocks as read, every recorded mutation after MutationID
    ``after`` (the last one the file holds), in order; returns their ids.

    With ``complete`` (a writer reopening), mutations a crash interrupted are
    marked done and their complete events written, and the cascades a crash
    cut short below the file's mutations are redone in full; a reader only
    stages the blocks in memory.  ``remap`` applies a record's mapping changes
    (labelmap mode), on the mapping the file holds.
    """
    if complete:
        for row in journal.mutations(0, state="s0"):
            record = record_from_json(row)
            if record.mutation_id <= after:
                scheduler.cascade(record.touched, full=True)
                committer.complete(record)
    replayed = []
    for row in journal.mutations(after):
        record = record_from_json(row)
        transform = record.replay_transform(context)
        if transform is not None:
            coords = list(record.touched)
            with scheduler.block_locks[0].hold(coords):
                scheduler.run(coords, transform, {})
        remap(record)
        if complete and journal.mutation_state(record.mutation_id) != "done":
            committer.complete(record)
        replayed.append(record.mutation_id)
    return replayed
