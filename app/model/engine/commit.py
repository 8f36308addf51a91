"""The commit pipeline: one journal transaction per mutation, outbox included.

After :meth:`Committer.commit` an edit is durable: one transaction holds its
record (with the s0 blocks it touched), the label index rows, the undo data,
the undo/redo stacks, the counters and its start events.  :meth:`complete`
marks it done with its complete events once every level is written.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.kernels import canonical_rles
from app.model.engine.counters import Counters
from app.model.engine.history import History, Step
from app.model.errors import JournalWriteError
from app.model.events import messages, outbox
from app.model.events.blobstore import put_blob
from app.model.events.gotime import now_go
from app.model.events.message_fields import Message
from app.model.geometry import Coord
from app.model.journal.journal import Journal
from app.model.mutations.base import BlockChange, IndexRow, Mutation, Plan, Stamp

log = logging.getLogger("segmend")


@dataclass(frozen=True)
class _Recording:
    """What a kind may use while its record is written (see :class:`Recording`)."""

    stamp: Stamp
    touched: tuple[Coord, ...]
    cur: sqlite3.Cursor
    journal: Journal

    def put_spans(self, spans: NDArray[np.integer[Any]]) -> str:
        return Journal.put_spans(self.cur, canonical_rles(spans))

    def put_bytes(self, data: bytes) -> str:
        return self.journal.put_blob(self.cur, data)


class Committer:
    """Writes mutations into one dataset's journal.

    A mutation takes its MutationIDs only when its transaction commits: a
    journal that cannot be written (disk full, I/O error) refuses the edit with
    a :class:`~app.model.errors.JournalWriteError` and leaves the counters as
    they were.

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

    Attributes
    ----------
    admission : callable or None
        Called before a voxel mutation is journaled; it raises (a
        :class:`~app.model.errors.SegmendError`) to refuse the edit, which the
        engine then puts back.  The dataset sets it: edits are refused while
        checkpoints fail and too many blocks wait in memory.
    after_record : callable or None
        Called with the open transaction's cursor, a mutation's record and its
        rewritten s0 blocks once they are written (before it commits): what it
        writes is part of the mutation's transaction, and what it raises
        refuses the edit.  The dataset sets it to keep its annotations synced
        (:meth:`app.model.annotations.sets.AnnotationSets.sync_after`).
    """

    def __init__(
        self,
        journal: Journal,
        counters: Counters,
        history: History,
        uuid: str,
        user: str | None,
    ) -> None:
        self.journal = journal
        self.counters = counters
        self.history = history
        self.uuid = uuid
        self.user = user
        self.admission: Callable[[], None] | None = None
        self.after_record: Callable[[sqlite3.Cursor, Mutation, list[BlockChange]], None] | None
        self.after_record = None
        self._ids = threading.Lock()
        self._counters_written: tuple[int, dict[str, int]] | None = None
        """(the journal transaction, the counters stored by it): known while it
        is the last one committed (no re-read)."""

    def commit(
        self, plan: Plan, changes: list[BlockChange], step: Step | None, *, done: bool = False
    ) -> tuple[Mutation, list[IndexRow]]:
        """Check the result and journal the mutation in one durable transaction;
        ``done``: as complete too, with its ``-complete`` events (a mutation
        without voxels: nothing is left to do).

        Raises the :attr:`admission` check's refusal, the plan's
        InvalidMutationError if its result is not allowed, or a
        JournalWriteError: nothing written.
        """
        if self.admission is not None:
            self.admission()
        outcome = plan.finish(changes)
        written = [c for c in changes if c.new is not None]

        def write(stamp: Stamp, cur: sqlite3.Cursor) -> Mutation:
            touched = tuple(c.coord for c in written)
            record = outcome.record(_Recording(stamp, touched, cur, self.journal))
            completed = now_go() if done else None
            row = record.to_json() if completed is None else {
                **record.to_json(), "Completed": completed}
            Journal.put_mutation(cur, row, "done" if done else "s0")
            Journal.set_label_counts(cur, outcome.rows)
            Journal.put_undo_maps(
                cur, stamp.mutation_id, [(c.coord, c.undo_map) for c in written if c.undo_map]
            )
            self.history.record(cur, stamp.mutation_id, plan.undoable, step)
            starts = record.start_messages()  # (built once: the complete ones copy them)
            append_events(cur, record.mutation_id, starts)
            if completed is not None:
                append_events(cur, record.mutation_id, record.complete_messages(starts, completed))
            if self.after_record is not None:
                self.after_record(cur, record, written)
            return record

        newest = max(max((row[0] for row in outcome.rows), default=0), outcome.new_label)
        return self._journal_new(outcome.n_ids, write, newest), outcome.rows

    def commit_done(self, make: Callable[[Stamp], Mutation], label: int) -> Mutation:
        """Journal a mutation without voxels (durable and done at once), which
        raises the counters to ``label`` once it commits."""

        def write(stamp: Stamp, cur: sqlite3.Cursor) -> Mutation:
            record = make(stamp)
            Journal.put_mutation(cur, record.to_json(), "done")
            append_events(cur, record.mutation_id, record.start_messages())
            return record

        return self._journal_new(1, write, label)

    def _journal_new(
        self, n_ids: int, write: Callable[[Stamp, sqlite3.Cursor], Mutation], label: int = 0
    ) -> Mutation:
        """Run ``write`` with a stamp of ``n_ids`` new MutationIDs in one durable
        transaction that also raises the counters, to ``label`` too (the largest
        label of the result: a split's new one).  The counters take the ids and
        the label only if it commits."""
        with self._ids:
            first = self.counters.next_mutation_id
            stamp = Stamp(first, self.uuid, now_go(), self.user)
            with self.journal.transaction() as cur:
                record = write(stamp, cur)
                values = self.counters.values()
                values["next_mutation_id"] = first + n_ids
                values["max_label"] = max(values["max_label"], label)
                values["next_label"] = max(values["next_label"], label + 1)
                self._counters_written = (self.journal.transaction_id, Journal.raise_counters(
                    cur, values, self._counters_known()))
            taken = self.counters.reserve_ids(n_ids)
            self.counters.note_label(label)
        assert taken == first, "MutationIDs are reserved only by the committer"
        return record

    def _counters_known(self) -> dict[str, int] | None:
        """The counters stored, if the last transaction committed raised them
        here (None: unknown, read them)."""
        written = self._counters_written
        if written is None or written[0] != self.journal.last_committed:
            return None
        return written[1]

    def complete(self, record: Mutation) -> None:
        """Mark the mutation done, noting when (the journal's ``Completed``), and
        add its complete events, stamped then.

        Not fsync'ed: if a crash loses it, reopening replays the mutation and
        writes its complete events again.  A journal that cannot be written now
        leaves the mutation durable and not marked done (logged): the next
        writer to open the dataset completes it.
        """
        completed = now_go()
        try:
            with self.journal.transaction(durable=False) as cur:
                Journal.put_mutation(cur, {**record.to_json(), "Completed": completed}, "done")
                append_events(cur, record.mutation_id, record.messages(completed))
        except JournalWriteError as exc:
            log.warning(
                "mutation %d stays to be completed at the next opening: %s", record.mutation_id, exc
            )


def append_events(cur: sqlite3.Cursor, mutation_id: int, msgs: list[Message]) -> None:
    """Append messages of mutation ``mutation_id`` (its start or its ``-complete``
    ones) to the outbox, in the open transaction (an oversized message goes to
    the blob store, sent by reference)."""
    if not msgs:
        return
    conn = cur.connection
    payloads = [messages.encode_message(m, lambda data: put_blob(conn, data)) for m in msgs]
    outbox.append_events(conn, mutation_id, msgs[0]["Action"], payloads)
