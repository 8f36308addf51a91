"""The GUI thread never waits on the model: edits leave the event loop running.

Both facts are checked by behaviour, not by time, so that they hold on any
machine, however fast or busy:

- **A timer ticks between the block batches of one edit.**  The model announces
  an edit's blocks in batches (``blocks_changed``, on the thread running the
  edit).  :class:`BatchGate` holds the edit after each batch until the GUI
  thread has received that batch and then run a queued timer: the next batch
  of the edit can only come after a tick.  A GUI thread that waited on the edit
  would never tick; the gate then gives up after ``WAIT_MS`` and the test fails
  instead of hanging.
- **The GUI thread enters the model only to read memory.**  A profile function
  on the GUI thread records, while the edits run, every function of
  ``app.model`` entered from outside ``app.model`` (the entry points) and every
  function of h5py entered at all.  Each entry point must be a method named
  in :data:`GUI_READS` or a function of :data:`PURE_MODULES` (none reads the
  file or waits on an edit), and h5py is never entered.
"""

from __future__ import annotations

import sys
import threading
from itertools import pairwise
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import h5py
import numpy as np
import pytest
from qtpy.QtCore import QTimer

import app.model
from app.ui.main_window import SegmendWindow
from tests.ui.conftest import WAIT_MS, wait_idle

pytestmark = pytest.mark.gui

TICK_MS = 10
MERGES = 4
BODIES = 150
"""MERGES merges of BODIES bodies each, queued back to back: each merge touches
many of the demo's blocks, so it announces many batches (tens, at every level)."""
GUI_READS = frozenset(
    {
        # the open dataset's geometry, in memory since it opened
        "DatasetReads.shape",
        "DatasetReads.block_size",
        "DatasetReads.n_scales",
        "DatasetReads.has_image",
        "DatasetReads.n_image_scales",
        "DatasetReads.image_dtype",
        # the mode (labelmap or voxel), fixed at opening
        "DatasetReads.labelmap",
        # a level as an array-like (reads nothing until indexed), its shape and dtype
        "DatasetReads.labels",
        "DatasetReads.supervoxels",
        "DatasetReads.image",
        "LevelArray.shape",
        "LevelArray.dtype",
        "ArrayView.ndim",
        "ArrayView.size",
        # a block if memory holds it, else None: never reads the file nor decodes
        "DatasetReads.cached_block",
        # the block cache's size limit, a number
        "DatasetReads.cache_capacity",
        # the blocks in view: swaps the engine's visible set, under a lock no
        # edit holds while it works
        "Dataset.set_visible",
    }
)
"""Qualified names of the ``app.model`` methods the GUI thread may enter during
an edit (napari slices the layers on it, from cached blocks)."""
PURE_MODULES = frozenset({"app.model.geometry", "app.model.label_lookup", "app.model.error_text"})
"""``app.model`` modules of pure functions (index arithmetic, a box assembled
from blocks the caller hands over, a GIL-free lookup in the caller's array, an
error's one-line message): the GUI thread may enter any of their functions,
and import them."""
MODEL_DIR = str(Path(app.model.__file__).parent)
H5PY_DIR = str(Path(h5py.__file__).parent)


class BatchGate:
    """Holds an edit after each block batch until the GUI thread has received
    the batch and then ticked.

    :meth:`hold` runs on the thread announcing the batches: a slot of the
    dataset's ``blocks_changed`` connected with a low priority, after the
    session's bridge, so the batch is already queued to the GUI thread when
    the edit waits.  :meth:`on_batch`, :meth:`on_tick` and :meth:`on_completed`
    run on the GUI thread, which alone writes :attr:`log`.
    """

    def __init__(self) -> None:
        self.log: list[str] = []
        """``"batch"``, ``"tick"`` and ``"completed"`` (an edit ended), in the
        order the GUI thread saw them."""
        self.gave_up = False
        """An edit waited ``WAIT_MS`` for a tick (it is then no longer held)."""
        self._cond = threading.Condition()
        self._announced = 0
        self._received = 0
        self._released = 0

    def hold(self, _scale: int, _coords: list[Any]) -> None:
        """Edit thread: wait until the GUI thread ticked after receiving this batch."""
        with self._cond:
            self._announced += 1
            n = self._announced
            if not self.gave_up and not self._cond.wait_for(
                lambda: self._released >= n, WAIT_MS / 1000
            ):
                self.gave_up = True

    def on_batch(self, _scale: int, _coords: Any) -> None:
        """GUI thread: a batch arrived (``Session.blocks_changed``)."""
        self.log.append("batch")
        self._received += 1

    def on_tick(self) -> None:
        """GUI thread: the timer ticked; the batches received so far are released."""
        self.log.append("tick")
        with self._cond:
            self._released = self._received
            self._cond.notify_all()

    def on_completed(self, _record: Any) -> None:
        """GUI thread: an edit ended (``Session.mutation_completed``)."""
        self.log.append("completed")

    def edits(self) -> list[list[str]]:
        """The log cut after each ``"completed"``: what the GUI thread saw during each edit."""
        parts: list[list[str]] = [[]]
        for entry in self.log:
            if entry == "completed":
                parts.append([])
            else:
                parts[-1].append(entry)
        return parts[:-1]


def _where(frame: FrameType) -> tuple[str, str]:
    """The module and qualified name of the function ``frame`` runs (``<module>``
    for a module's body)."""
    return str(frame.f_globals.get("__name__")), frame.f_code.co_qualname


def allowed(module: str, name: str) -> bool:
    """May the GUI thread enter ``app.model`` at this function during an edit?"""
    return module in PURE_MODULES or name in GUI_READS


class GuiEntries:
    """Records, in a ``with`` block on the GUI thread, the functions it enters in
    ``app.model`` from outside it, and in h5py (a profile function: calls on
    other threads are not seen)."""

    def __init__(self) -> None:
        self.model: dict[tuple[str, str], tuple[str, str]] = {}
        """Each ``app.model`` entry point (module, qualified name) → one of its callers."""
        self.h5py: set[tuple[str, str]] = set()
        """The h5py functions entered (module, qualified name)."""
        self._previous: Any = None

    def __enter__(self) -> GuiEntries:
        self._previous = sys.getprofile()
        sys.setprofile(self._profile)
        return self

    def __exit__(self, _type: type[BaseException] | None, _exc: BaseException | None,
                 _tb: TracebackType | None) -> None:
        sys.setprofile(self._previous)

    def _profile(self, frame: FrameType, event: str, _arg: Any) -> None:
        if event != "call":
            return
        where = frame.f_code.co_filename
        if where.startswith(H5PY_DIR):
            self.h5py.add(_where(frame))
        elif where.startswith(MODEL_DIR):
            caller = frame.f_back
            if caller is None or not caller.f_code.co_filename.startswith(MODEL_DIR):
                self.model.setdefault(_where(frame), ("?", "?") if caller is None
                                      else _where(caller))


def test_edits_never_hold_up_the_gui_thread(opened: SegmendWindow, qtbot: Any) -> None:
    """Queued merges of many bodies: the event loop ticks between the block
    batches of every merge, and the GUI thread only reads memory meanwhile."""
    win, session = opened, opened.session
    ds = session.dataset
    assert ds is not None
    ids, counts = np.unique(ds.labels(0)[...], return_counts=True)
    ranked = [int(v) for v in ids[np.argsort(-counts)] if v]
    groups = [ranked[i * BODIES : (i + 1) * BODIES] for i in range(MERGES)]
    sizes = [sum(ds.label_size(b) for b in group) for group in groups]
    gate = BatchGate()
    failed: list[str] = []

    def on_failed(action: str, message: str) -> None:
        failed.append(f"{action}: {message}")

    session.edit_failed.connect(on_failed)
    ds.signals.blocks_changed.connect(gate.hold, priority=-1)
    session.blocks_changed.connect(gate.on_batch)
    session.mutation_completed.connect(gate.on_completed)
    timer = QTimer()
    timer.setInterval(TICK_MS)
    timer.timeout.connect(gate.on_tick)
    timer.start()
    try:
        with GuiEntries() as entries:
            for group in groups:
                win.widget.selection.set(group)
                win.widget.commands["merge"].trigger()
            qtbot.waitUntil(lambda: gate.log.count("completed") == MERGES or bool(failed),
                            timeout=WAIT_MS)
    finally:
        timer.stop()
        session.edit_failed.disconnect(on_failed)
        ds.signals.blocks_changed.disconnect(gate.hold)
        session.blocks_changed.disconnect(gate.on_batch)
        session.mutation_completed.disconnect(gate.on_completed)

    assert not failed, f"an edit failed: {failed}"
    assert not gate.gave_up, "an edit waited in vain for the GUI thread to run a timer"
    for i, seen in enumerate(gate.edits()):
        assert seen.count("batch") >= 2, f"merge {i} announced too few batches to tell anything"
        assert ("batch", "batch") not in pairwise(seen), f"merge {i}: batches without a tick"
    unexpected = {k: v for k, v in entries.model.items() if not allowed(*k)}
    assert not unexpected, f"the GUI thread entered the model (entry point: caller): {unexpected}"
    assert not entries.h5py, f"the GUI thread entered h5py: {sorted(entries.h5py)}"
    wait_idle(qtbot, win)
    for group, size in zip(groups, sizes, strict=True):
        assert ds.label_size(group[0]) == size
        assert all(ds.label_size(b) == 0 for b in group[1:])
