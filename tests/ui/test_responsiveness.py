"""The GUI thread never waits on the model: a large merge leaves the event loop ticking."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from qtpy.QtCore import QTimer

from app.ui.main_window import SegmendWindow
from tests.ui.conftest import WAIT_MS, wait_idle

pytestmark = pytest.mark.gui

TICK_MS = 10
MERGES = 4
BODIES = 150
"""Each measurement queues MERGES merges of BODIES bodies back to back (the demo
cube has only 64 s0 blocks, so one merge alone ends in ~0.2 s)."""
MIN_RATE_HZ = 20.0
MAX_GAP_S = 0.5
"""Longest pause tolerated: software OpenGL (Mesa llvmpipe under Xvfb) repaints
compete with the merge for two cores; a GUI thread that waited on the merge
would pause for its whole duration."""


def _measure_merges(
    win: SegmendWindow, qtbot: Any, groups: list[list[int]]
) -> tuple[float, float]:
    """Merge each group of bodies through the app, all queued at once, while a
    10 ms timer ticks: (rate Hz, longest gap s)."""
    ds = win.session.dataset
    assert ds is not None
    sizes = [sum(ds.label_size(b) for b in group) for group in groups]
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(TICK_MS)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    done: list[Any] = []
    win.session.mutation_completed.connect(done.append)
    start = time.perf_counter()
    for group in groups:
        win.widget.selection.set(group)
        win.widget.commands["merge"].trigger()
    qtbot.waitUntil(lambda: len(done) == len(groups), timeout=WAIT_MS)
    end = time.perf_counter()
    timer.stop()
    win.session.mutation_completed.disconnect(done.append)
    during = [t for t in ticks if start <= t <= end]
    duration = end - start
    rate = len(during) / duration
    gap = float(np.diff([start, *during, end]).max())
    print(
        f"{len(groups)} merges of {len(groups[0])} bodies: {duration:.2f} s, {rate:.0f} ticks/s, "
        f"longest gap {gap * 1000:.0f} ms, {win.widget.layers.refreshes} refreshes"
    )
    assert duration > 0.4, "the merges were too quick to tell anything"
    wait_idle(qtbot, win)
    for group, size in zip(groups, sizes, strict=True):
        assert ds.label_size(group[0]) == size
        assert all(ds.label_size(b) == 0 for b in group[1:])
    return rate, gap


def test_event_loop_keeps_ticking_during_large_merges(opened: SegmendWindow, qtbot: Any) -> None:
    """Best of three measurements (of different bodies): another process on the
    machine can slow one run; a GUI thread that waited on the model fails all."""
    win = opened
    ds = win.session.dataset
    assert ds is not None
    ids, counts = np.unique(ds.labels(0)[...], return_counts=True)
    ranked = [int(v) for v in ids[np.argsort(-counts)] if v]
    # warm up (kernels compile once per machine; this test is about the steady state)
    win.widget.selection.set(ranked[-2:])
    with qtbot.waitSignal(win.session.edit_finished, timeout=WAIT_MS):
        win.widget.commands["merge"].trigger()
    wait_idle(qtbot, win)
    runs = []
    for attempt in range(3):
        first = attempt * MERGES * BODIES
        groups = [ranked[first + i * BODIES : first + (i + 1) * BODIES] for i in range(MERGES)]
        rate, gap = _measure_merges(win, qtbot, groups)
        runs.append((rate, gap))
        if rate >= MIN_RATE_HZ and gap <= MAX_GAP_S:
            return
    raise AssertionError(f"event loop starved in every run (rate Hz, longest gap s): {runs}")
