"""Counters shown in the status bar: mutation count and event outbox backlog."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from app.model.dataset import Dataset


@dataclass(frozen=True)
class DatasetStats:
    """What the status bar shows about a dataset.

    Attributes
    ----------
    mutations : int
        Mutations recorded in the dataset's log.
    backlog : int or None
        Events in the outbox not yet acknowledged by Kafka (None if unknown).
    """

    mutations: int
    backlog: int | None


def dataset_stats(dataset: Dataset, mutations: int | None = None) -> DatasetStats:
    """Read the counters (call on a worker thread: it queries the journal).

    Uses ``Dataset.mutation_count`` / ``Dataset.outbox_backlog`` when the model
    provides them, else reads the journal's outbox table directly.
    """
    count = getattr(dataset, "mutation_count", None)
    if mutations is None:
        mutations = int(count() if callable(count) else count) if count is not None else len(
            dataset.mutations()
        )
    return DatasetStats(int(mutations), outbox_backlog(dataset))


def outbox_backlog(dataset: Dataset) -> int | None:
    """Events not yet acknowledged by the broker, or None if it cannot be told."""
    value: Any = getattr(dataset, "outbox_backlog", None)
    if value is not None:
        return int(value() if callable(value) else value)
    journal = getattr(dataset, "_journal", None)
    if journal is None:
        return None
    try:
        from app.model.events.outbox import backlog

        with journal._lock:
            return int(backlog(journal.connection))
    except (ImportError, AttributeError, sqlite3.Error):
        return None
