"""The status bar says when the HDF5 file cannot be written (a failing checkpoint)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from app.model.bulk.build import build_pyramid
from app.model.dataset import open_dataset
from app.model.errors import CheckpointError
from app.ui.controller import Session
from app.ui.stats import DatasetStats
from app.ui.status import StatusIndicators
from tests.conftest import biggest, fill_disk
from tests.ui.conftest import WAIT_MS


def test_the_indicator_shows_only_while_checkpoints_fail(qtbot: Any) -> None:
    status = StatusIndicators()
    qtbot.addWidget(status)
    assert status.checkpoint.isHidden() and status.checkpoint_error is None
    status.set_stats(DatasetStats(3, None, checkpoint_error="checkpoint failed: <disk> full"))
    assert status.checkpoint_error == "checkpoint failed: <disk> full"
    qtbot.waitUntil(lambda: not status.checkpoint.isHidden(), timeout=WAIT_MS)
    assert "checkpoint failed: &lt;disk&gt; full" in status.checkpoint.text()
    assert "safe in the journal" in status.checkpoint.toolTip()
    assert status.texts()[1] == "3 mutations"
    status.set_stats(DatasetStats(4, None))
    qtbot.waitUntil(lambda: status.checkpoint.isHidden(), timeout=WAIT_MS)
    assert status.checkpoint.text() == "" and status.checkpoint.toolTip() == ""


def test_the_session_reports_the_datasets_failing_checkpoint(
    qtbot: Any,
    small_disk: Path,
    real_sources: tuple[str, str],
    real_labels: NDArray[np.uint64],
) -> None:
    path = build_pyramid(real_sources[0], small_disk / "small.h5", block_size=(16, 16, 16))
    ds = open_dataset(path, "r+", checkpoint_interval=3600.0)
    session = Session()
    status = StatusIndicators()
    qtbot.addWidget(status)
    session.stats_changed.connect(status.set_stats)
    a, b = biggest(real_labels, 2)
    ds.merge(a, [b])
    filler = fill_disk(small_disk)
    try:
        with pytest.raises(CheckpointError):
            ds.checkpoint()
        session.attach(ds)
        qtbot.waitUntil(lambda: status.checkpoint_error is not None, timeout=WAIT_MS)
        assert status.checkpoint_error == ds.checkpoint_error
        assert ds.checkpoint_error is not None and "No space left" in ds.checkpoint_error
        filler.unlink()
        ds.checkpoint()  # space is back
        session.poll_status()
        qtbot.waitUntil(lambda: status.checkpoint_error is None, timeout=WAIT_MS)
    finally:
        filler.unlink(missing_ok=True)
        session.shutdown()
        ds.close()
