"""From mutation records to DVID Kafka messages in the outbox.

The record of a mutation (DVID field names, as the journal keeps it) is the
single source of its events.  They are appended to the outbox inside the
mutation's own journal transaction, so an edit and its events are durable
together.  An undo publishes the inverse mutation's messages: undoing a split
is a ``merge`` of the new label back into the target; undoing a merge of n
labels is n ``split`` messages, one per restored label, each with its own
MutationID (the undo reserves n consecutive ids) so that consumers
de-duplicating by MutationID + Action keep them all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

from app.model.events import messages
from app.model.events.blobstore import put_blob
from app.model.events.outbox import append_events

Message = dict[str, Any]


def _common(record: dict[str, Any], mutation_id: int | None = None) -> dict[str, Any]:
    return {
        "uuid": record["UUID"],
        "mutation_id": record["MutationID"] if mutation_id is None else mutation_id,
        "timestamp": record["Timestamp"],
        "user": record.get("User"),
    }


def _inverse_splits(record: dict[str, Any]) -> Iterator[tuple[int, int, str, int]]:
    """(mutation id, restored label, split ref, its size) for an undone merge."""
    ids = record["MutationIDs"]
    sizes = record["LabelSizes"]
    for mid, (label, ref) in zip(ids, record["Splits"], strict=True):
        yield mid, int(label), str(ref), int(sizes[str(label)])


def _messages(record: dict[str, Any], complete: bool) -> list[Message]:
    action = record["Action"]
    if action == "post-maxlabel":
        return (
            []
            if complete
            else [
                messages.maxlabel(
                    max_label=record["MaxLabel"],
                    uuid=record["UUID"],
                    timestamp=record["Timestamp"],
                    user=record.get("User"),
                )
            ]
        )
    if action == "post-nextlabel":
        return (
            []
            if complete
            else [
                messages.nextlabel(
                    start=record["Start Label"],
                    end=record["End Label"],
                    uuid=record["UUID"],
                    timestamp=record["Timestamp"],
                    user=record.get("User"),
                )
            ]
        )
    if action == "undo" and record["Of"] == "merge":
        out = []
        for mid, label, ref, size in _inverse_splits(record):
            common = _common(record, mid)
            if complete:
                out.append(
                    messages.split_complete(
                        target=record["Target"],
                        new_label=label,
                        split_ref=ref,
                        target_size=record["TargetSize"],
                        new_label_size=size,
                        **common,
                    )
                )
            else:
                out.append(
                    messages.split_start(
                        target=record["Target"], new_label=label, split_ref=ref, **common
                    )
                )
        return out
    common = _common(record)
    if action == "merge" or action == "undo":
        labels = record["Labels"]
        if complete:
            return [
                messages.merge_complete(
                    target=record["Target"],
                    labels=labels,
                    target_size=record["TargetSize"],
                    **common,
                )
            ]
        return [messages.merge_start(target=record["Target"], labels=labels, **common)]
    fields = {
        "target": record["Target"],
        "new_label": record["NewLabel"],
        "split_ref": record["Split"],
    }
    if complete:
        sizes = {"target_size": record["TargetSize"], "new_label_size": record["NewLabelSize"]}
        build = messages.split_complete if action == "split" else messages.splitcoarse_complete
        return [build(**fields, **sizes, **common)]
    build_start = messages.split_start if action == "split" else messages.splitcoarse_start
    return [build_start(**fields, **common)]


def _append(cur: sqlite3.Cursor, record: dict[str, Any], complete: bool) -> None:
    msgs = _messages(record, complete)
    if not msgs:
        return
    conn = cur.connection
    payloads = [messages.encode_message(m, lambda data: put_blob(conn, data)) for m in msgs]
    append_events(conn, record["MutationID"], msgs[0]["Action"], payloads)


def start_events(cur: sqlite3.Cursor, record: dict[str, Any]) -> None:
    """Append a mutation's start message(s) to the outbox, in the open transaction."""
    _append(cur, record, complete=False)


def complete_events(cur: sqlite3.Cursor, record: dict[str, Any]) -> None:
    """Append a mutation's ``-complete`` message(s) to the outbox, in the open transaction."""
    _append(cur, record, complete=True)
