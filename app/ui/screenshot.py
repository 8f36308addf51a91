"""``segmend FILE --screenshot OUT.png``: open, wait until drawn, save the window, exit.

:class:`ScreenshotDriver` is a small state machine on the GUI thread (no
sleeping, no waiting): open the file, optionally go to and select bodies, then
poll until no background job is pending and every visible block is loaded and
drawn (two polls in a row), grab the whole window and save it.  With
``seeds``, a seeded split of the first selected body is shown in progress:
its seeds placed, the view on the first seed's plane, framed on the preview
drawn there.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from qtpy.QtCore import QObject, QTimer, Signal
from qtpy.QtWidgets import QWidget

from app.model.error_text import one_line
from app.model.geometry import Coord
from app.ui.compat import camera, canvas_size
from app.ui.main_window import SegmendWindow
from app.ui.seed_preview import SeedPreview

POLL_MS = 100
STABLE_POLLS = 3
TIMEOUT_S = 300.0
FRAME_SHARE = 0.8
"""Share of the canvas the parts and seeds of a seeded split's plane take."""


def grab_window(widget: QWidget, out: str | Path) -> Path:
    """Render ``widget`` (OpenGL canvas included) and save it as an image file."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not widget.grab().save(str(out)):
        raise OSError(f"cannot write {out}")
    return out


class ScreenshotDriver(QObject):
    """Drives a :class:`SegmendWindow` to a screenshot.

    Parameters
    ----------
    window : SegmendWindow
        The window (shown).
    out : str or Path
        Where to save the PNG.
    select : list of int
        Bodies to select (the view goes to the first; only they are shown).
    seeds : list of lists of (z, y, x), optional
        Seed groups of a seeded split of ``select[0]`` to show with its preview.
    timeout_s : float
        Give up (exit status 1) after this long.
    """

    finished = Signal(int)
    """The exit status (0 = saved); GUI thread."""

    def __init__(self, window: SegmendWindow, out: str | Path, select: list[int] | None = None,
                 *, seeds: list[list[Coord]] | None = None, timeout_s: float = TIMEOUT_S) -> None:
        super().__init__(window)
        self.window = window
        self.out = Path(out)
        self.select = [int(v) for v in (select or [])]
        self.seeds = seeds or []
        self.error: str | None = None
        self._stable = 0
        self._ready = False
        self._done = False
        self._poll = QTimer(self)
        self._poll.setInterval(POLL_MS)
        self._poll.timeout.connect(self._check)
        self._deadline = QTimer(self)
        self._deadline.setSingleShot(True)
        self._deadline.setInterval(int(timeout_s * 1000))
        self.timeout_s = timeout_s
        self._deadline.timeout.connect(self._timed_out)
        window.session.opened.connect(self._on_opened)
        window.session.open_failed.connect(self._fail)

    def _timed_out(self) -> None:
        self._fail(f"timed out after {self.timeout_s:.0f} s")

    def start(self, path: str | Path | None, *, demo: bool = False) -> None:
        """Open ``path`` (or nothing; ``demo``: build the demo there first if needed)
        and shoot when everything is drawn."""
        self._deadline.start()
        if path is None:
            self._ready = True
            self._poll.start()
        else:
            self.window.open_path(path, demo=demo)

    def _on_opened(self, _dataset: object) -> None:
        if not self.select:
            self._ready = True
            self._poll.start()
            return
        widget = self.window.widget
        widget.reporter.error_shown.connect(self._fail)
        widget.selection.changed.connect(self._on_selected)
        widget.commands["show_selected_only"].setChecked(True)
        widget.goto_body(self.select[0])

    def _on_selected(self, ids: list[int]) -> None:
        widget = self.window.widget
        if ids and ids[0] == self.select[0] and ids != self.select:
            widget.selection.set(self.select)
            return
        if ids == self.select:
            widget.selection.changed.disconnect(self._on_selected)
            if self.seeds:
                self._show_seeds()
                return
            self._ready = True
            self._poll.start()

    def _show_seeds(self) -> None:
        """Place the seeds on the first selected body, go to the first seed's plane,
        preview (the view is framed on the preview once it is drawn: :meth:`_frame`)."""
        tool = self.window.widget.seed_tool
        tool.start(self.select[0])
        while tool.active and len(tool.layers) < len(self.seeds) and not self._done:
            tool.add_group()
        if self._done or len(tool.layers) != len(self.seeds):
            return  # refused (a read-only file, too many groups): the error was reported
        tool.previewed.connect(self._on_previewed)
        for group, voxels in enumerate(self.seeds, start=1):
            for voxel in voxels:
                tool.add_seed(voxel, group=group)
        self.window.viewer.dims.set_point(0, self.seeds[0][0][0])
        tool.set_group(1)
        tool.preview()

    def _on_previewed(self, preview: SeedPreview) -> None:
        self.window.widget.seed_tool.previewed.disconnect(self._on_previewed)
        self._frame(preview)
        self._ready = True
        self._poll.start()

    def _frame(self, preview: SeedPreview) -> None:
        """Centre and zoom the view on the parts and the seeds in the plane shown."""
        split, viewer = preview.split, self.window.viewer
        z = int(self.seeds[0][0][0])
        points = np.array([v[1:] for group in self.seeds for v in group if v[0] == z], float)
        if 0 <= z - split.origin[0] < split.parts.shape[0]:
            where = np.argwhere(split.parts[z - split.origin[0]] > 0)
            points = np.concatenate([points, where + np.asarray(split.origin[1:])])
        lo, hi = points.min(axis=0), points.max(axis=0) + 1
        view = camera(viewer)
        view.center = (float(z), *map(float, (lo + hi) / 2))
        size = canvas_size(viewer)
        if size is not None:
            view.zoom = FRAME_SHARE * float(min(np.asarray(size) / np.maximum(hi - lo, 1)))

    def _check(self) -> None:
        window = self.window
        idle = self._ready and window.runner.pending == 0 and window.widget.layers.is_settled()
        if not idle:
            self._stable = 0
            return
        self._stable += 1
        if self._stable >= STABLE_POLLS:
            self._shoot()

    def _shoot(self) -> None:
        self._poll.stop()
        self._deadline.stop()
        try:
            grab_window(self.window.qt_window, self.out)
        except OSError as exc:
            self._fail(one_line(exc))
            return
        self._finish(0)

    def _fail(self, message: str) -> None:
        if self._done:
            return
        self.error = message
        print(f"segmend: error: {message}", file=sys.stderr)
        self._finish(1)

    def _finish(self, code: int) -> None:
        if self._done:
            return
        self._done = True
        self._poll.stop()
        self._deadline.stop()
        self.finished.emit(code)
