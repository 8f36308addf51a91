"""Seeded split: seeds for the parts of a body on any plane, a watershed preview, commit.

The proofreader places seeds in napari ``Points`` layers, one per *seed group*
(``seeds 1: new body`` ... ``seeds n: keeps ID``): a click on the active
group's layer in add mode (napari's ``P``) puts a seed on the current plane,
whichever plane or axis order the view shows; select mode (napari's ``3``)
drags seeds and ``Delete`` removes the selected ones.  Every group but the last
becomes a new body; the last group's part keeps the body's id.

- *preview* runs :func:`app.ui.seed_preview.compute_preview` (the watershed)
  on the worker pool (:meth:`Session.read`) and shows the parts, each in its
  group's colour, as the ``seeded split preview`` Labels layer placed at the
  result's origin.
  Once a preview was asked for, it follows the seeds: a change cancels the
  running computation (its ``cancelled`` callback turns true, a late result is
  dropped) and starts another; the errors of these follow-up previews go to
  the status line only, not to a message box.
- *commit* runs :meth:`Session.split_by_seeds` on the edit lane: one ordinary
  split per group but the last (events, undo and log as for any split).  On
  success the seed and preview layers go; on failure they stay, with the
  model's message.

In labelmap mode a supervoxel is never cut: the preview shows whole
supervoxels given to the groups (each to the part holding most of its
voxels), and the commit is one cleave per group but the last.

Every signal here is emitted on the GUI thread; the watershed runs on a pool
thread of the session's :class:`~app.ui.workers.TaskRunner`.  Its buttons are
:class:`app.ui.panels.SeedSplitPanel`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers.base import ActionType
from qtpy.QtCore import QObject, Signal, Slot

from app.model.error_text import one_line
from app.model.errors import CancelledError
from app.model.geometry import Coord
from app.ui.controller import Session
from app.ui.layer_data import ROLE
from app.ui.seed_preview import SeedPreview, compute_preview, preview_text
from app.ui.shortcuts import shortcut
from app.ui.split_canvas import SplitToolBase, add_parts_layer, can_edit, remove_role
from app.ui.texts import count

if TYPE_CHECKING:
    from app.model.dataset import Dataset, SplitResult

CONTEXT = "seeded split"
"""How errors of this tool begin."""
SEED_COLORS = ("#ff3030", "#2f9bff", "#ffd000", "#3ddc4a", "#ff47e3", "#00e5d0",
               "#ff8c1a", "#a070ff")
"""Colour of each seed group (its seeds and its part in the preview); one group per colour."""
MAX_GROUPS = len(SEED_COLORS)
SEED_SIZE = 7.0
"""Seed marker diameter (voxels); a seed shows on its own plane."""
SEED_ROLE = "seed-group"
PREVIEW_ROLE = "seed-preview"
PREVIEW_NAME = "seeded split preview"
COLOR_KEY = "segmend_seed_color"
_FINAL = (ActionType.ADDED, ActionType.REMOVED, ActionType.CHANGED)


class SeedSplitTool(SplitToolBase):
    """The seed layers of one body, and its preview / commit / discard actions
    (parameters: see :class:`~app.ui.split_canvas.SplitToolBase`: the session
    runs the watershed as a read, the splits as edits)."""

    groups_changed = Signal(int, int)
    """``(groups, active group)`` (1-based; 0 when no seed layer is active); GUI thread."""
    previewed = Signal(object)
    """A :class:`SeedPreview`; GUI thread."""
    committed = Signal(int, object)
    """``(body, [SplitResult, ...])`` of a committed seeded split, first group first; GUI thread."""

    preview_role = PREVIEW_ROLE

    def __init__(self, viewer: Any, session: Session, parent: QObject | None = None) -> None:
        super().__init__(viewer, session, parent)
        self.body: int | None = None
        self.layers: list[Any] = []
        self._follow = False
        self._cancel: threading.Event | None = None
        self._request = 0
        self._dropping = False
        session.labels_changed.connect(self._on_labels_changed)
        viewer.layers.events.removed.connect(self._on_layer_removed)
        viewer.layers.selection.events.active.connect(self._on_active_layer)

    def detach(self) -> None:
        """Disconnect from the viewer's layer events."""
        self.viewer.layers.events.removed.disconnect(self._on_layer_removed)
        self.viewer.layers.selection.events.active.disconnect(self._on_active_layer)

    # ----------------------------------------------------------------- seeds
    @property
    def active(self) -> bool:
        """True while seed layers are open."""
        return bool(self.layers)

    @property
    def active_group(self) -> int:
        """The group (1-based) whose layer is active, or 0."""
        active = self.viewer.layers.selection.active
        for k, layer in enumerate(self.layers, start=1):
            if layer is active:
                return k
        return 0

    def start(self, body: int) -> None:
        """Open two seed groups for ``body``; group 1's layer is active, in add mode."""
        body = int(body)
        if not can_edit(self.session, CONTEXT):
            return
        self._drop_layers()
        self.body = body
        self._add_layer()
        self._add_layer()
        self.set_group(1)
        self.started.emit(body)
        self._say(f"seeded split of body {body}: click seeds of group 1 (new body), "
                  f"{shortcut('seed_next_group').key} for group 2 (keeps {body}), "
                  f"then {shortcut('seed_preview').key} to preview")

    def set_group(self, group: int) -> None:
        """Make group ``group``'s (1-based) layer active and put it in add mode."""
        if not 1 <= group <= len(self.layers):
            return
        layer = self.layers[group - 1]
        self.viewer.layers.selection.active = layer
        layer.mode = "add"
        self.groups_changed.emit(len(self.layers), group)

    def next_group(self) -> None:
        """Add seeds to the next group (after the last: the first)."""
        if self.layers:
            self.set_group(self.active_group % len(self.layers) + 1)

    def add_group(self) -> None:
        """One more seed group (the new last group keeps the id); its layer becomes active."""
        if not self.layers:
            self.session.reporter.error("no seeds: select a body and start a seeded split",
                                        context=CONTEXT)
            return
        if len(self.layers) >= MAX_GROUPS:
            self.session.reporter.error(f"at most {MAX_GROUPS} seed groups", context=CONTEXT)
            return
        self._add_layer()
        self.set_group(len(self.layers))
        self._say(f"seed group {len(self.layers)} added: it keeps body {self.body}, "
                  "the groups before it become new bodies")

    def add_seed(self, zyx: tuple[float, float, float], group: int | None = None) -> None:
        """Add a seed at a world (s0) position to ``group`` (default: the active one) --
        what a click in add mode does."""
        k = group if group is not None else (self.active_group or 1)
        self.layers[k - 1].add(np.asarray(zyx, dtype=float))

    def seeds(self) -> list[list[Coord]]:
        """Each group's seeds as s0 voxels (z, y, x), in order, without repeats."""
        groups = []
        for layer in self.layers:
            voxels = (tuple(int(np.floor(v + 0.5)) for v in p[-3:]) for p in layer.data)
            groups.append(list(dict.fromkeys(voxels)))
        return groups  # type: ignore[return-value]

    def colors(self) -> Mapping[int, str]:
        """Each group's (1-based) colour."""
        return {k: layer.metadata[COLOR_KEY] for k, layer in enumerate(self.layers, start=1)}

    def discard(self) -> None:
        """Remove the seeds and the preview without splitting."""
        had = self.active
        self._drop_layers()
        if had:
            self.discarded.emit()
            self._say("seeds discarded")

    # --------------------------------------------------------------- actions
    def _seeds_or_report(self, *, quiet: bool = False) -> list[list[Coord]] | None:
        """:meth:`seeds` if every group has one, else None after saying what is missing
        (on the status line only if ``quiet``)."""
        if not self.layers or self.body is None:
            line = "no seeds: select a body and start a seeded split"
        else:
            seeds = self.seeds()
            empty = [k for k, group in enumerate(seeds, start=1) if not group]
            if not empty:
                return seeds
            line = f"seed group {empty[0]} has no seed: click one on the body first"
        if quiet:
            self._say(f"{CONTEXT}: {line}")
        else:
            self.message.emit(self.session.reporter.error(line, context=CONTEXT))
        return None

    def preview(self, *, quiet: bool = False) -> None:
        """Compute the split on the pool and show its parts; from now on, follow the seeds.

        ``quiet``: errors go to the status line only (a follow-up preview).
        """
        seeds = self._seeds_or_report(quiet=quiet)
        if seeds is None or self.body is None:
            return
        self._cancel_preview()
        self._follow = True
        request, body, cancel = self._request, self.body, threading.Event()
        self._cancel = cancel

        def compute(ds: Dataset) -> SeedPreview:  # pool thread
            return compute_preview(ds, body, seeds, cancel.is_set)

        self.session.read(compute, lambda result: self._show_preview(request, result),
                          name="seeded split preview",
                          on_error=lambda exc: self._preview_failed(request, exc, quiet))
        self._say(f"computing the seeded split of body {body}...")

    def _show_preview(self, request: int, preview: SeedPreview) -> None:
        if request != self._request or not self.active:
            return  # stale: the seeds changed meanwhile
        self._cancel = None
        active = self.viewer.layers.selection.active
        self._drop_preview()
        split = preview.split
        self.preview_layer = add_parts_layer(self.viewer, split.parts, split.origin,
                                             self.colors(), name=PREVIEW_NAME, role=PREVIEW_ROLE)
        below_seeds = min(self.viewer.layers.index(layer) for layer in self.layers)
        self.viewer.layers.move(self.viewer.layers.index(self.preview_layer), below_seeds)
        if active is not None and active in self.viewer.layers:
            self.viewer.layers.selection.active = active
        self.previewed.emit(preview)
        self._say(preview_text(split.body, preview.sizes))

    def _preview_failed(self, request: int, exc: BaseException, quiet: bool) -> None:
        if request != self._request or isinstance(exc, CancelledError):
            return
        self._cancel = None
        self._drop_preview()  # it no longer matches the seeds
        if quiet:
            self._say(f"{CONTEXT}: {one_line(exc)}")
        else:
            self.message.emit(self.session.reporter.error(exc, context=CONTEXT))

    def commit(self) -> None:
        """Split the body by the seeds (on the edit lane): every group but the last
        becomes a new body."""
        seeds = self._seeds_or_report()
        if seeds is None or self.body is None:
            return
        if self.session.split_by_seeds(self.body, seeds) is not None:
            self._cancel_preview()
            self._pending_commit = True
            self._say(f"splitting body {self.body} by {count(len(seeds), 'seed group')}...")

    # ---------------------------------------------------------------- events
    def _on_seeds_changed(self, event: Any) -> None:
        if self._dropping:
            return
        self._cancel_preview()  # a stale computation stops, its result is dropped
        if event.action in _FINAL and self._follow:
            self.preview(quiet=True)

    @Slot(str, object)
    def _on_edit_finished(self, action: str, result: Any) -> None:
        if action != "seeded-split" or not self._pending_commit:
            return
        self._pending_commit = False
        body = self.body
        self._drop_layers()
        results: list[SplitResult] = list(result)
        self.committed.emit(body, results)
        labels = ", ".join(str(r.label) for r in results)
        if len(results) == 1:
            self.note.note(results[0].mutation_id,
                           f"seeded split done: new body {labels} (mutation {{id}})",
                           f"seeded split undone: body {labels} is merged back (mutation {{id}})")
        else:
            last = results[-1].label
            self.note.note(results[-1].mutation_id,
                           f"seeded split done: new bodies {labels} (last mutation {{id}})",
                           f"split undone: body {last} is merged back (mutation {{id}})")

    @Slot(str, str)
    def _on_edit_failed(self, action: str, line: str) -> None:
        if action == "seeded-split" and self._pending_commit:
            self._pending_commit = False  # the seeds stay as placed
            self._say(line)

    @Slot(object)
    def _on_labels_changed(self, labels: list[int]) -> None:
        """Another edit changed the body: the shown preview is recomputed."""
        if self.body in labels and self._follow and not self._pending_commit:
            self._cancel_preview()
            self.preview(quiet=True)

    def _on_layer_removed(self, event: Any) -> None:
        layer = event.value
        if layer is self.preview_layer:
            self.preview_layer = None
        if self._dropping or layer not in self.layers:
            return
        self.layers.remove(layer)
        layer.events.data.disconnect(self._on_seeds_changed)
        if len(self.layers) < 2:
            self.discard()
            return
        self._rename()
        self.groups_changed.emit(len(self.layers), self.active_group)
        self._cancel_preview()
        if self._follow:
            self.preview(quiet=True)

    def _on_active_layer(self, _event: Any = None) -> None:
        if self.layers and not self._dropping:
            self.groups_changed.emit(len(self.layers), self.active_group)

    # ----------------------------------------------------------------- layers
    def _add_layer(self) -> None:
        used = {layer.metadata[COLOR_KEY] for layer in self.layers}
        color = next(c for c in SEED_COLORS if c not in used)
        layer = self.viewer.add_points(
            np.empty((0, 3)), ndim=3, name=f"seeds {len(self.layers) + 1}", size=SEED_SIZE,
            face_color=color, border_color="white",
            metadata={ROLE: SEED_ROLE, COLOR_KEY: color, "segmend_target": self.body},
        )
        layer.events.data.connect(self._on_seeds_changed)
        self.layers.append(layer)
        self._rename()

    def _rename(self) -> None:
        """``seeds k: new body`` ... ``seeds n: keeps ID``."""
        n = len(self.layers)
        for k, layer in enumerate(self.layers, start=1):
            layer.name = f"seeds {k}: keeps {self.body}" if k == n else f"seeds {k}: new body"

    def _cancel_preview(self) -> None:
        """Stop a running preview computation and make its result stale."""
        self._request += 1
        if self._cancel is not None:
            self._cancel.set()
            self._cancel = None

    def _drop_layers(self) -> None:
        """Remove the seed layers and the preview, and stop following."""
        self._dropping = True
        try:
            self._cancel_preview()
            self._drop_preview()
            for layer in self.layers:
                layer.events.data.disconnect(self._on_seeds_changed)
                layer.mode = "pan_zoom"
            remove_role(self.viewer, SEED_ROLE)
        finally:
            self._dropping = False
        had = bool(self.layers)
        self.layers = []
        self.body = None
        self._follow = False
        if had:
            self.groups_changed.emit(0, 0)

