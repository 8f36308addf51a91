"""Counters shown in the status bar: mutations, outbox backlog, Kafka sender state,
and why checkpoints fail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.model.dataset import Dataset


@dataclass(frozen=True)
class DatasetStats:
    """What the status bar shows about a dataset.

    Attributes
    ----------
    mutations : int
        Mutations recorded in the dataset's log.
    backlog : int or None
        Events in the outbox not yet acknowledged by Kafka (None if unknown,
        e.g. read-only).
    kafka : str
        The Kafka sender's state: ``off``, ``connecting``, ``connected`` or ``down``.
    kafka_error : str or None
        The sender's last failure, for the tooltip.
    checkpoint_error : str or None
        Why checkpoints of the HDF5 file fail (None: they do not).
    """

    mutations: int
    backlog: int | None
    kafka: str = "off"
    kafka_error: str | None = None
    checkpoint_error: str | None = None


def dataset_stats(dataset: Dataset, mutations: int | None = None) -> DatasetStats:
    """Read the counters (call on a worker thread: it queries the journal)."""
    if mutations is None:
        mutations = dataset.mutation_count()
    status = dataset.events_status()
    failing = dataset.checkpoint_error
    if status is None:
        return DatasetStats(int(mutations), None, checkpoint_error=failing)
    return DatasetStats(
        int(mutations), int(status.backlog), str(status.state), status.last_error, failing
    )
