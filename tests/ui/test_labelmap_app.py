"""The segmend window on a labelmap dataset (the real cube's automated supervoxels and
their agglomeration mapping): bodies shown by default, the supervoxel view, alt-click
on supervoxels, merge and cleave redrawn from the new mapping, undo, splits, and the
seeded split by whole supervoxels.

Positions are found in the data (plane :data:`Z`, where the viewer opens), not
written down, so that they follow the shipped cube.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qtpy.QtCore import Qt

from app.model.bulk.build import build_pyramid
from app.model.dataset import open_dataset
from app.model.demo import demo_cube_path
from app.model.storage.layout import LABELS_GROUP, SUPERVOXELS
from app.ui import registry
from app.ui.lazy import CachedLevel
from app.ui.main_window import SegmendWindow
from tests.ui.conftest import WAIT_MS, dataset, wait_idle
from tests.ui.test_app import click_canvas, shown_at

pytestmark = pytest.mark.gui

Z = 124
"""The plane the viewer opens on (the middle of 250)."""
Voxel = tuple[int, int, int]


@pytest.fixture(scope="session")
def labelmap_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cube's supervoxels with their mapping, built once (do not edit it)."""
    cube = demo_cube_path()
    out = tmp_path_factory.mktemp("labelmap") / "labelmap.h5"
    path = build_pyramid(f"{cube}:/automated/supervoxels", out, image=f"{cube}:/raw",
                         mapping=f"{cube}:/automated/mapping", voxel_size_nm=(10, 10, 10))
    with open_dataset(path, "r+") as ds:  # (builds the label index)
        # the mapping's kernels compile here, not on a pool thread while napari makes
        # a layer: both guard warnings with catch_warnings, which threads share
        ds.labels(0)[0:1, 0:64, 0:64]
    return path


@pytest.fixture
def lm(window: SegmendWindow, labelmap_master: Path, tmp_path: Path, said: list[str],
       qtbot: Any) -> SegmendWindow:
    """The window with a private copy of the labelmap dataset open and drawn."""
    path = tmp_path / "labelmap.h5"
    shutil.copy(labelmap_master, path)
    with qtbot.waitSignal(window.session.opened, timeout=WAIT_MS):
        window.open_path(path)
    wait_idle(qtbot, window)
    return window


def plane(win: SegmendWindow, kind: str) -> np.ndarray[Any, Any]:
    """Plane :data:`Z` of the model's bodies (``"labels"``) or supervoxels."""
    ds = dataset(win)
    level = ds.supervoxels(0) if kind == SUPERVOXELS else ds.labels(0)
    return np.asarray(level[Z])


def voxels_of(win: SegmendWindow, label: int, kind: str = LABELS_GROUP,
              n: int = 12) -> list[Voxel]:
    """Up to ``n`` voxels of ``label`` (a body or a supervoxel) on plane :data:`Z`."""
    where = np.argwhere(plane(win, kind) == label)
    picks = where[np.linspace(0, len(where) - 1, min(n, len(where))).astype(int)]
    return [(Z, int(y), int(x)) for y, x in picks]


def two_bodies(win: SegmendWindow) -> tuple[int, int]:
    """The two largest bodies on plane :data:`Z`."""
    labels, sizes = np.unique(plane(win, LABELS_GROUP), return_counts=True)
    order = [int(labels[i]) for i in np.argsort(-sizes) if labels[i]]
    return order[0], order[1]


def cleavable(win: SegmendWindow) -> tuple[int, list[int]]:
    """A body with three supervoxels or more on plane :data:`Z`, and two of them
    (not its largest), largest first."""
    bodies, svs = plane(win, LABELS_GROUP), plane(win, SUPERVOXELS)
    best: tuple[int, list[int]] = (0, [])
    for body in np.unique(bodies[bodies > 0]):
        ids, sizes = np.unique(svs[bodies == body], return_counts=True)
        if len(ids) > max(2, len(best[1])):
            best = (int(body), [int(ids[i]) for i in np.argsort(-sizes)])
    assert best[0], "no body of three supervoxels on the plane"
    return best[0], best[1][1:3]


def select(qtbot: Any, win: SegmendWindow, *voxels: Voxel) -> list[int]:
    """Click (then shift-click) these voxels."""
    for i, voxel in enumerate(voxels):
        with qtbot.waitSignal(win.widget.picker.picked, timeout=WAIT_MS):
            win.widget.picker.click(voxel, shift=i > 0)
    return win.widget.selection.ids


def alt_click(qtbot: Any, win: SegmendWindow, voxel: Voxel) -> tuple[int, int]:
    """Alt-click a voxel; the (supervoxel, body) the picker reported."""
    with qtbot.waitSignal(win.widget.picker.supervoxel_picked, timeout=WAIT_MS) as blocker:
        win.widget.picker.click(voxel, alt=True)
    sv, body = blocker.args
    return int(sv), int(body)


def shown_at_layer(layer: Any, voxel: Voxel) -> int:
    """The value a layer displays at a voxel (no file read)."""
    value = layer.get_value(voxel, world=True)
    return int(value[1] if isinstance(value, tuple) else value)


def focus_canvas(qtbot: Any, win: SegmendWindow) -> Any:
    """Activate the window and focus its canvas (so that the window's shortcuts work)."""
    native = win.viewer.window._qt_viewer.canvas.native
    win.qt_window.activateWindow()
    native.setFocus()
    qtbot.waitUntil(lambda: win.qt_window.isActiveWindow(), timeout=WAIT_MS)
    return native


def redrawn(qtbot: Any, win: SegmendWindow, edit: Callable[[], None]) -> None:
    """Run ``edit`` and wait until the blocks it changed are announced and drawn."""
    layers = win.widget.layers
    with qtbot.waitSignals([win.session.edit_finished, win.session.blocks_changed],
                           timeout=WAIT_MS):
        edit()
    if not layers.is_settled():
        with qtbot.waitSignal(layers.settled, timeout=WAIT_MS):
            pass
    wait_idle(qtbot, win)


# ------------------------------------------------------------------------- bodies
def test_labelmap_dataset_shows_bodies(lm: SegmendWindow, qtbot: Any, said: list[str]) -> None:
    win = lm
    ds = dataset(win)
    assert ds.labelmap
    seg = win.widget.layers.segmentation
    assert seg is not None and seg.name == "segmentation: bodies"
    assert all(isinstance(level, CachedLevel) and level.kind == LABELS_GROUP
               for level in seg.data)
    # a block as the layer reads it (from the cache) is the mapping of the supervoxels
    block = np.asarray(seg.data[0][Z, 0:64, 0:64])
    svs = np.asarray(ds.supervoxels(0)[Z, 0:64, 0:64])
    assert block.any()
    np.testing.assert_array_equal(block, ds.mapping(svs.ravel()).reshape(svs.shape))
    assert not np.array_equal(plane(win, LABELS_GROUP), plane(win, SUPERVOXELS))
    a, _b = two_bodies(win)
    for voxel in voxels_of(win, a):
        assert shown_at(win, voxel) == a
    assert "labelmap" in win.widget.file_label.text()
    assert "showing bodies (V: supervoxels)" in said[-1]
    # the body panel counts supervoxels
    assert select(qtbot, win, voxels_of(win, a)[0]) == [a]
    panel = win.widget.body_panel
    assert not panel.table.isColumnHidden(3)
    qtbot.waitUntil(lambda: panel.rows() == [(a, ds.label_size(a))], timeout=WAIT_MS)
    assert panel.supervoxel_counts[a] == len(ds.supervoxels_of(a)) >= 1
    assert panel.table.item(0, 3).text() == f"{len(ds.supervoxels_of(a)):,}"


def test_view_toggles_between_bodies_and_supervoxels(
        lm: SegmendWindow, qtbot: Any, said: list[str]) -> None:
    win = lm
    seg = win.widget.layers.segmentation
    assert seg is not None
    body, (sv, _other) = cleavable(win)
    voxel = voxels_of(win, sv, SUPERVOXELS)[0]
    assert shown_at(win, voxel) == body
    level = seg.data_level
    native = focus_canvas(qtbot, win)
    with qtbot.waitSignal(win.widget.layers.settled, timeout=WAIT_MS):
        qtbot.keyClick(native, Qt.Key.Key_V)  # the window's shortcut: not napari's V
    wait_idle(qtbot, win)
    assert seg.name == "segmentation: supervoxels" and seg.visible
    assert seg.data_level == level  # the same levels, read as supervoxels now
    assert all(level.kind == SUPERVOXELS for level in seg.data)
    assert shown_at(win, voxel) == sv
    np.testing.assert_array_equal(np.asarray(seg.data[0][Z, 64:128, 64:128]),
                                  plane(win, SUPERVOXELS)[64:128, 64:128])
    assert "showing supervoxels" in said[-1]
    win.widget.commands["supervoxel_view"].trigger()
    wait_idle(qtbot, win)
    assert seg.name == "segmentation: bodies" and shown_at(win, voxel) == body
    assert "showing bodies" in said[-1]


def test_alt_click_names_the_supervoxel_and_its_body(
        lm: SegmendWindow, qtbot: Any, said: list[str]) -> None:
    win = lm
    ds = dataset(win)
    body, (sv, _other) = cleavable(win)
    a, _b = two_bodies(win)
    select(qtbot, win, voxels_of(win, a)[0])
    assert alt_click(qtbot, win, voxels_of(win, sv, SUPERVOXELS)[0]) == (sv, body)
    assert said[-1] == f"supervoxel {sv} of body {body}"
    assert win.widget.selection.ids == [a]  # an alt-click leaves the selection alone
    # a real alt-click on the canvas takes the same path
    y, x = 128, 128
    want = int(ds.supervoxels(0)[Z, y, x])
    with qtbot.waitSignal(win.widget.picker.supervoxel_picked, timeout=WAIT_MS) as blocker:
        click_canvas(win, y, x, Qt.KeyboardModifier.AltModifier)
    assert blocker.args == [want, int(ds.mapping([want])[0])]
    assert win.widget.selection.ids == [a]


# ------------------------------------------------------------------------- edits
def test_merge_redraws_the_new_mapping(lm: SegmendWindow, qtbot: Any) -> None:
    win = lm
    ds = dataset(win)
    a, b = two_bodies(win)
    b_voxels = voxels_of(win, b)
    assert select(qtbot, win, voxels_of(win, a)[0], b_voxels[0]) == [a, b]
    b_svs = ds.supervoxels_of(b)
    threads: list[bool] = []
    ds.signals.blocks_changed.connect(
        lambda *_args: threads.append(threading.current_thread() is threading.main_thread()))
    delivered: list[bool] = []
    win.session.blocks_changed.connect(
        lambda *_args: delivered.append(threading.current_thread() is threading.main_thread()))
    redrawn(qtbot, win, win.widget.commands["merge"].trigger)
    assert threads and not any(threads)  # the model announces from a pool thread...
    assert delivered and all(delivered)  # ...the session re-emits on the GUI thread
    assert (ds.mapping(b_svs) == a).all() and ds.supervoxels_of(b).size == 0
    assert win.widget.selection.ids == [a]
    for voxel in b_voxels:
        assert shown_at(win, voxel) == a
    seg = win.widget.layers.segmentation
    assert seg is not None
    svs = plane(win, SUPERVOXELS)
    np.testing.assert_array_equal(np.asarray(seg.data[0][Z]),
                                  ds.mapping(svs.ravel()).reshape(svs.shape))
    qtbot.waitUntil(lambda: win.widget.history_panel.lines()[:1] == [
        f"#{ds.mutation_count()}  merge {b} into {a}"], timeout=WAIT_MS)


def test_cleave_through_the_tool_then_undo(lm: SegmendWindow, qtbot: Any, said: list[str]) -> None:
    win = lm
    ds = dataset(win)
    widget, commands = win.widget, win.widget.commands
    body, picks = cleavable(win)
    assert not commands["cleave_start"].isEnabled()  # nothing selected
    select(qtbot, win, voxels_of(win, body)[0])
    assert commands["cleave_start"].isEnabled() and not commands["cleave_commit"].isEnabled()
    tool = widget.labelmap.cleave
    native = focus_canvas(qtbot, win)
    with qtbot.waitSignal(tool.started, timeout=WAIT_MS):
        qtbot.keyClick(native, Qt.Key.Key_C)
    assert widget.layers.labels_kind == SUPERVOXELS
    assert tool.supervoxels == {int(v) for v in ds.supervoxels_of(body)}
    preview = tool.preview_layer
    assert preview is not None and preview.name == "cleave preview"
    assert widget.layers.selected is not None and not widget.layers.selected.visible
    assert commands["cleave_commit"].isEnabled() and commands["cleave_cancel"].isEnabled()
    for sv in picks:
        with qtbot.waitSignal(tool.picks_changed, timeout=WAIT_MS):
            alt_click(qtbot, win, voxels_of(win, sv, SUPERVOXELS)[0])
    assert tool.picked == picks
    assert f"2 of {len(tool.supervoxels)} supervoxels picked" in said[-1]
    wait_idle(qtbot, win)
    rest = next(v for v in voxels_of(win, body) if int(ds.supervoxels(0)[v]) not in picks)
    assert shown_at_layer(preview, voxels_of(win, picks[0], SUPERVOXELS)[0]) == 1
    assert shown_at_layer(preview, rest) == 2
    # a supervoxel of another body is not picked
    other = next(b for b in two_bodies(win) if b != body)
    alt_click(qtbot, win, voxels_of(win, other)[0])
    assert tool.picked == picks and "not of body" in said[-1]

    with qtbot.waitSignal(tool.committed, timeout=WAIT_MS) as blocker:
        qtbot.keyClick(native, Qt.Key.Key_Return)
    cleaved = blocker.args[1]
    assert blocker.args[0] == body and cleaved not in (0, body)
    assert widget.selection.ids == [body, cleaved]
    assert [int(v) for v in ds.mapping(picks)] == [cleaved, cleaved]
    assert widget.layers.labels_kind == LABELS_GROUP and widget.layers.overlays == []
    assert preview not in win.viewer.layers and not tool.active
    qtbot.waitUntil(lambda: all(shown_at(win, v) == cleaved
                                for sv in picks for v in voxels_of(win, sv, SUPERVOXELS)),
                    timeout=WAIT_MS)
    assert shown_at(win, rest) == body
    qtbot.waitUntil(lambda: widget.history_panel.lines()[:1] == [
        f"#{ds.mutation_count()}  cleave {', '.join(map(str, sorted(picks)))} off {body} "
        f"into {cleaved}"], timeout=WAIT_MS)
    assert said[-1].startswith("cleave done: 2 supervoxels of body")

    with qtbot.waitSignal(win.session.edit_finished, timeout=WAIT_MS):
        commands["undo"].trigger()
    assert [int(v) for v in ds.mapping(picks)] == [body, body]
    qtbot.waitUntil(lambda: widget.selection.ids == [body], timeout=WAIT_MS)
    qtbot.waitUntil(lambda: said[-1].startswith(f"cleave undone: body {cleaved}"),
                    timeout=WAIT_MS)
    qtbot.waitUntil(lambda: all(shown_at(win, v) == body
                                for sv in picks for v in voxels_of(win, sv, SUPERVOXELS)),
                    timeout=WAIT_MS)
    assert widget.history_panel.lines()[0].endswith("(cleave)")


def test_cleave_refusals_and_cancel(lm: SegmendWindow, qtbot: Any, said: list[str]) -> None:
    win = lm
    ds = dataset(win)
    widget, commands = win.widget, win.widget.commands
    body, _picks = cleavable(win)
    tool = widget.labelmap.cleave
    select(qtbot, win, voxels_of(win, body)[0])
    with qtbot.waitSignal(tool.started, timeout=WAIT_MS):
        commands["cleave_start"].trigger()
    tool.commit()  # nothing picked
    assert "no supervoxel picked" in said[-1]
    for sv in tool.supervoxels:  # every one: the model refuses, the picks stay
        tool.toggle(sv, body)
    assert "a cleave must leave it one" in said[-1]
    with qtbot.waitSignal(win.session.edit_failed, timeout=WAIT_MS) as blocker:
        tool.commit()
    line = blocker.args[1]
    assert line.startswith("cleave failed: ") and "\n" not in line
    assert said[-1] == line and tool.active and len(tool.picked) == len(tool.supervoxels)
    mutations = ds.mutation_count()
    qtbot.keyClick(focus_canvas(qtbot, win), Qt.Key.Key_Escape)
    assert not tool.active and widget.layers.overlays == []
    assert widget.layers.labels_kind == LABELS_GROUP and said[-1] == "cleave cancelled"
    assert widget.layers.selected is not None and widget.layers.selected.visible
    assert ds.mutation_count() == mutations
    # a body of one supervoxel has nothing to cleave
    single = next(b.label for b in ds.bodies() if len(ds.supervoxels_of(b.label)) == 1)
    widget.selection.set([single])
    with qtbot.waitSignal(widget.reporter.error_shown, timeout=WAIT_MS) as shown:
        commands["cleave_start"].trigger()
    assert shown.args[0] == f"cleave: body {single} has one supervoxel: nothing to cleave"
    assert not tool.active


def test_splits_in_labelmap_mode(lm: SegmendWindow, qtbot: Any, said: list[str]) -> None:
    win = lm
    widget, commands = win.widget, win.widget.commands
    a, _b = two_bodies(win)
    select(qtbot, win, voxels_of(win, a)[0])
    assert commands["seed_start"].isEnabled()
    assert "labelmap" not in commands["seed_start"].toolTip()
    assert commands["split_start"].isEnabled() and commands["split_coarse"].isEnabled()
    assert commands["cleave_start"].isEnabled()
    assert widget.cleave_panel.isVisibleTo(widget)
    assert widget.split_panel.isVisibleTo(widget)
    assert widget.seed_panel.isVisibleTo(widget)
    # a split by blocks is a labelmap split: the body's voxels in the block change body
    ds = dataset(win)
    coord = min(ds.label_blocks(a))
    with qtbot.waitSignal(win.session.edit_finished, timeout=WAIT_MS) as done:
        win.session.split_coarse(a, [coord])
    new = done.args[1].label
    assert ds.mutations()[-1]["Action"] == "split" and ds.supervoxels_of(new).size
    # a split the model refuses is one line on the status line (nothing crashes)
    with qtbot.waitSignal(win.session.edit_failed, timeout=WAIT_MS) as blocker:
        win.session.split_coarse(a, [(9, 9, 9)])
    line = blocker.args[1]
    assert line.startswith("split-coarse failed: ") and "\n" not in line
    assert said[-1] == line


def test_seeded_split_moves_whole_supervoxels(lm: SegmendWindow, qtbot: Any,
                                              said: list[str]) -> None:
    """Seeds in two supervoxels of a body: the preview shows whole supervoxels, the
    commit is a cleave of group 1's, one undo puts the mapping back."""
    from app.model.labelmap.seeded_split import seeded_cleave

    win = lm
    ds = dataset(win)
    widget, commands = win.widget, win.widget.commands
    body, picks = cleavable(win)
    svs = plane(win, SUPERVOXELS)
    ids, sizes = np.unique(svs[plane(win, LABELS_GROUP) == body], return_counts=True)
    keep = int(ids[np.argmax(sizes)])
    seeds = [[voxels_of(win, picks[0], SUPERVOXELS, n=3)[1]], [voxels_of(win, keep,
                                                                          SUPERVOXELS, n=3)[1]]]
    before = ds.mapping_pairs()
    select(qtbot, win, voxels_of(win, body)[0])
    tool = widget.seed_tool
    with qtbot.waitSignal(tool.started, timeout=WAIT_MS):
        commands["seed_start"].trigger()
    for k, group in enumerate(seeds, start=1):
        tool.add_seed(group[0], group=k)
    assert tool.seeds() == seeds
    with qtbot.waitSignal(tool.previewed, timeout=WAIT_MS) as previewed:
        commands["seed_preview"].trigger()
    shown = previewed.args[0].split
    plan = seeded_cleave(ds, body, seeds)
    assert shown.origin == plan.split.origin
    np.testing.assert_array_equal(shown.parts, plan.split.parts)
    box = tuple(slice(o, o + n) for o, n in zip(shown.origin, shown.parts.shape, strict=True))
    raw = np.asarray(ds.supervoxels(0)[box])
    for sv in plan.assignment.supervoxels.tolist():  # never a supervoxel cut
        assert len(np.unique(shown.parts[raw == sv])) == 1
    moved = plan.moved(1).tolist()
    assert picks[0] in moved and keep not in moved
    assert ds.mutations() == []

    with qtbot.waitSignal(tool.committed, timeout=WAIT_MS) as committed:
        commands["seed_commit"].trigger()
    new = committed.args[1][0].label
    wait_idle(qtbot, win)
    assert [m["Action"] for m in ds.mutations()] == ["cleave"]
    assert ds.supervoxels_of(new).tolist() == moved
    assert [int(v) for v in ds.mapping([picks[0], keep])] == [new, body]
    assert widget.selection.ids == [body, new]
    assert said[-1].startswith(f"seeded split done: new body {new}")

    with qtbot.waitSignal(win.session.edit_finished, timeout=WAIT_MS):
        commands["undo"].trigger()
    np.testing.assert_array_equal(ds.mapping_pairs(), before)
    qtbot.waitUntil(lambda: said[-1].startswith(f"seeded split undone: body {new}"),
                    timeout=WAIT_MS)


def test_voxel_mode_has_no_supervoxels(opened: SegmendWindow, qtbot: Any, said: list[str]) -> None:
    win = opened
    widget, commands = win.widget, win.widget.commands
    seg = widget.layers.segmentation
    assert seg is not None and seg.name == "segmentation"
    commands["supervoxel_view"].trigger()
    assert widget.layers.labels_kind == LABELS_GROUP and seg.name == "segmentation"
    assert "is in voxel mode" in said[-1]
    assert "needs a labelmap dataset" in commands["supervoxel_view"].toolTip()
    with qtbot.waitSignal(widget.picker.picked, timeout=WAIT_MS):
        widget.picker.click((Z, 100, 100))
    assert not commands["cleave_start"].isEnabled()
    assert commands["split_start"].isEnabled() and commands["seed_start"].isEnabled()
    assert "labelmap" not in commands["split_start"].toolTip()
    with qtbot.waitSignal(widget.picker.supervoxel_refused, timeout=WAIT_MS):
        widget.picker.click((Z, 100, 100), alt=True)
    assert "alt-click picks supervoxels" in said[-1]
    assert widget.body_panel.table.isColumnHidden(3)
    assert not widget.cleave_panel.isVisibleTo(widget) and widget.split_panel.isVisibleTo(widget)


def test_napari_plugin_shows_bodies_and_supervoxels(
        make_napari_viewer: Callable[..., Any], labelmap_master: Path, tmp_path: Path,
        qtbot: Any) -> None:
    """The napari reader names the view; the dock adopts its layers and toggles them."""
    path = tmp_path / "labelmap.h5"
    shutil.copy(labelmap_master, path)
    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget("segmend", "Proofreading")
    try:
        layers = viewer.open(str(path), plugin="segmend")
        assert [layer.name for layer in layers] == ["grayscale", "segmentation: bodies"]
        qtbot.waitUntil(lambda: widget.session.dataset is not None, timeout=WAIT_MS)
        seg = layers[1]
        assert widget.layers.segmentation is seg
        widget.commands["supervoxel_view"].trigger()
        assert seg.name == "segmentation: supervoxels"
        qtbot.waitUntil(lambda: widget.session.runner.pending == 0
                        and widget.layers.is_settled(), timeout=WAIT_MS)
        ds = widget.session.dataset
        assert ds is not None
        y, x = 128, 128
        assert shown_at_layer(seg, (Z, y, x)) == int(ds.supervoxels(0)[Z, y, x])
    finally:
        widget.shutdown()
        registry.close_all()
