"""The journal's label index reads: per label, per block, and summed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.model.journal.journal import Journal


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    """A journal whose index holds labels 1..1200 (and one past 2**63), each in
    one to three blocks, counting ``v`` voxels in each (the last: 3)."""
    journal = Journal(tmp_path / "journal.sqlite")
    labels = [*range(1, 1201), (1 << 63) + 5]
    rows = [(v, (k, 0, 0), (3 if v > 1200 else v)) for v in labels for k in range(1 + v % 3)]
    with journal.transaction() as cur:
        Journal.set_label_counts(cur, rows)
    return journal


@pytest.mark.parametrize("n", [0, 1, 499, 500, 501, 1200])
def test_labels_size_is_the_sum_of_the_labels_sizes(journal: Journal, n: int) -> None:
    labels = np.arange(1, n + 1, dtype=np.uint64)
    assert journal.labels_size(labels) == int(journal.label_sizes(labels).sum())
    assert journal.labels_size(labels) == sum(v * (1 + v % 3) for v in range(1, n + 1))


def test_labels_size_counts_missing_labels_as_zero_and_reads_large_ids(journal: Journal) -> None:
    big = (1 << 63) + 5
    labels = np.array([7, 5000, big], np.uint64)
    assert journal.labels_size(labels) == 7 * 2 + 3 * (1 + big % 3)
