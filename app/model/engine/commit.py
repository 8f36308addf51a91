"""The commit pipeline: one journal transaction per mutation, outbox included.

After :meth:`Committer.commit` an edit is durable: one transaction holds its
record (with the s0 blocks it touched), the label index rows, the undo data,
the undo/redo stacks, the counters and its start events.  :meth:`complete`
marks it done with its complete events once every level is written.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.model.engine.counters import Counters
from app.model.engine.history import History, Step
from app.model.events import messages, outbox
from app.model.events.blobstore import put_blob
from app.model.events.gotime import now_go
from app.model.geometry import Coord
from app.model.journal.journal import Journal
from app.model.mutations.base import BlockChange, IndexRow, Mutation, Plan, Stamp


@dataclass(frozen=True)
class _Recording:
    """What a kind may use while its record is written (see :class:`Recording`)."""

    stamp: Stamp
    touched: tuple[Coord, ...]
    cur: sqlite3.Cursor

    def put_spans(self, spans: NDArray[np.integer[Any]]) -> str:
        return Journal.put_spans(self.cur, spans)


class Committer:
    """Writes mutations into one dataset's journal.

    Parameters
    ----------
    journal : Journal
        The journal.
    counters : Counters
        The counters (raised in each transaction).
    history : History
        The undo/redo stacks.
    uuid : str
        The version UUID stamped on records.
    user : str, optional
        Stamped on records.
    """

    def __init__(
        self, journal: Journal, counters: Counters, history: History, uuid: str,
        user: str | None,
    ) -> None:
        self.journal = journal
        self.counters = counters
        self.history = history
        self.uuid = uuid
        self.user = user

    def stamp(self, n_ids: int = 1) -> Stamp:
        """A stamp with ``n_ids`` new consecutive MutationIDs."""
        return Stamp(self.counters.reserve_ids(n_ids), self.uuid, now_go(), self.user)

    def commit(
        self, plan: Plan, changes: list[BlockChange], step: Step | None
    ) -> tuple[Mutation, list[IndexRow]]:
        """Check the result and journal the mutation in one durable transaction.

        Raises the plan's InvalidMutationError (nothing written) if its result
        is not allowed.
        """
        outcome = plan.finish(changes)
        stamp = self.stamp(outcome.n_ids)
        written = [c for c in changes if c.new is not None]
        with self.journal.transaction() as cur:
            record = outcome.record(_Recording(stamp, tuple(c.coord for c in written), cur))
            Journal.put_mutation(cur, record.to_json(), "s0")
            Journal.set_label_counts(cur, outcome.rows)
            Journal.put_undo_maps(
                cur, stamp.mutation_id, [(c.coord, c.undo_map) for c in written if c.undo_map]
            )
            self.history.record(cur, stamp.mutation_id, plan.undoable, step)
            Journal.raise_counters(cur, self.counters.values())
            append_events(cur, record, complete=False)
        return record, outcome.rows

    def commit_done(self, make: Callable[[Stamp], Mutation]) -> Mutation:
        """Journal a mutation without voxels (durable and done at once)."""
        record = make(self.stamp())
        with self.journal.transaction() as cur:
            Journal.put_mutation(cur, record.to_json(), "done")
            Journal.raise_counters(cur, self.counters.values())
            append_events(cur, record, complete=False)
        return record

    def complete(self, record: Mutation) -> None:
        """Mark the mutation done and add its complete events.

        Not fsync'ed: if a crash loses it, reopening replays the mutation and
        writes the same events again.
        """
        with self.journal.transaction(durable=False) as cur:
            Journal.put_mutation(cur, record.to_json(), "done")
            append_events(cur, record, complete=True)


def append_events(cur: sqlite3.Cursor, record: Mutation, *, complete: bool) -> None:
    """Append a mutation's start (or ``-complete``) messages to the outbox, in
    the open transaction (bulky fields go to the blob store by reference)."""
    msgs = record.messages(complete)
    if not msgs:
        return
    conn = cur.connection
    payloads = [messages.encode_message(m, lambda data: put_blob(conn, data)) for m in msgs]
    outbox.append_events(conn, record.mutation_id, msgs[0]["Action"], payloads)
