"""The segmend window on the real demo cube: open, select, merge, split, undo/redo.

Selections are made with real mouse clicks on the OpenGL canvas (QTest events
through vispy and napari's mouse callbacks) where the test is about clicking,
and otherwise through :meth:`ClickPicker.click` -- the method the napari mouse
callback calls once it has decided that a press/release was a click.
Painting uses napari's own brush (:meth:`napari.layers.Labels.paint`, what a
click in paint mode calls).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from napari.utils.colormaps.standardize_color import transform_color
from qtpy.QtCore import QPoint, Qt
from qtpy.QtTest import QTest

from app.model.dataset import SplitResult, open_dataset
from app.model.storage.layout import IMAGE_GROUP, LABELS_GROUP
from app.ui import layers as layers_module
from app.ui.compat import camera as viewer_camera
from app.ui.layers import LEVEL_BUDGET, DatasetLayers
from app.ui.lazy import BlockLoader, CachedLevel, HighlightLevel
from app.ui.main_window import SegmendWindow
from app.ui.selection import SELECTION_COLORS
from app.ui.view_blocks import first_view_blocks
from tests.ui.conftest import WAIT_MS, wait_idle

pytestmark = pytest.mark.gui

Z = 124  # the plane the viewer opens on (middle of 250)
A_POS = (Z, 100, 100)
B_POS = (Z, 100, 120)


def label_at(win: SegmendWindow, zyx: tuple[int, int, int]) -> int:
    """The s0 label at a voxel, read from the model (test thread)."""
    assert win.session.dataset is not None
    return int(win.session.dataset.labels(0)[zyx])


def shown_at(win: SegmendWindow, zyx: tuple[int, int, int]) -> int:
    """The label the segmentation layer currently displays at a voxel (no file read)."""
    layer = win.widget.layers.segmentation
    assert layer is not None
    value = layer.get_value(zyx, world=True)
    return int(value[1] if isinstance(value, tuple) else value)


def canvas_pos(win: SegmendWindow, y: float, x: float) -> QPoint:
    """Canvas pixel of a world (y, x) in the 2D view."""
    camera = viewer_camera(win.viewer)
    native = win.viewer.window._qt_viewer.canvas.native
    cy, cx = camera.center[-2:]
    px = (x - cx) * camera.zoom + native.width() / 2
    py = (y - cy) * camera.zoom + native.height() / 2
    return QPoint(round(px), round(py))


def click_canvas(win: SegmendWindow, y: float, x: float,
                 modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    native = win.viewer.window._qt_viewer.canvas.native
    pos = canvas_pos(win, y, x)
    QTest.mouseMove(native, pos)
    QTest.mouseClick(native, Qt.MouseButton.LeftButton, modifier, pos)


def select(qtbot: Any, win: SegmendWindow, *positions: tuple[int, int, int]) -> list[int]:
    """Select the bodies at these voxels (click, then shift-clicks)."""
    for i, pos in enumerate(positions):
        with qtbot.waitSignal(win.widget.picker.picked, timeout=WAIT_MS):
            win.widget.picker.click(pos, shift=i > 0)
    return win.widget.selection.ids


# --------------------------------------------------------------------------- opening
def test_open_shows_lazy_multiscale_layers(opened: SegmendWindow) -> None:
    win = opened
    ds = win.session.dataset
    assert ds is not None and win.session.writable
    names = [layer.name for layer in win.viewer.layers]
    assert names[:2] == ["grayscale", "segmentation"]
    assert win.widget.layers.selected is None  # made on the first selection
    seg = win.widget.layers.segmentation
    gray = win.widget.layers.grayscale
    assert seg is not None and gray is not None
    assert seg.multiscale and gray.multiscale
    assert len(seg.data) == ds.n_scales == 3
    assert all(isinstance(level, CachedLevel) for level in seg.data)
    assert [level.shape for level in seg.data] == [ds.labels(s).shape for s in range(3)]
    assert win.viewer.dims.point[0] == Z
    # the engine is told which blocks are in view (plane z=124 is in block row 1)
    visible = win.widget.layers.visible_blocks()
    assert visible is not None and visible[0] == 0
    assert {c[0] for c in visible[1]} == {Z // 64} and len(visible[1]) == 16
    assert shown_at(win, A_POS) == label_at(win, A_POS) != 0
    assert "demo.h5" in win.viewer.title
    assert win.settings.recent[0] == str(ds.path.resolve())
    assert win.status.texts()[0] == "idle"
    assert win.status.texts()[3].endswith("off</span>")


def test_view_fills_in_block_by_block_off_the_gui_thread(opened: SegmendWindow,
                                                         qtbot: Any) -> None:
    win = opened
    seg = win.widget.layers.segmentation
    assert seg is not None and win.widget.layers.loader is not None
    level = seg.data[0]
    key = (0, slice(0, 64), slice(0, 64))
    win.session.dataset.store.cache.clear()  # type: ignore[union-attr]
    assert level.missing_blocks(key) == [(0, 0, 0)]
    assert not level[key].any()  # not cached yet: background, and a read is queued
    assert win.widget.layers.loader.busy
    qtbot.waitUntil(lambda: not level.missing_blocks(key), timeout=WAIT_MS)
    np.testing.assert_array_equal(level[key], win.session.dataset.labels(0)[key])  # type: ignore[union-attr]
    wait_idle(qtbot, win)


def record_requests(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bool, str, int, set[Any]]]:
    """Every block request of a loader: (asked by the first-view prefetch, kind, scale, coords)."""
    asked: list[tuple[bool, str, int, set[Any]]] = []
    inside: list[bool] = [False]
    request, prefetch = BlockLoader.request, DatasetLayers._prefetch_first_view

    def recording(loader: BlockLoader, kind: str, scale: int, coords: Any) -> None:
        coords = list(coords)
        asked.append((inside[0], kind, scale, set(coords)))
        request(loader, kind, scale, coords)

    def prefetching(layers: DatasetLayers, *args: Any) -> None:
        inside[0] = True
        try:
            prefetch(layers, *args)
        finally:
            inside[0] = False

    monkeypatch.setattr(BlockLoader, "request", recording)
    monkeypatch.setattr(DatasetLayers, "_prefetch_first_view", prefetching)
    return asked


def open_demo(win: SegmendWindow, path: Path, qtbot: Any) -> None:
    with qtbot.waitSignal(win.session.opened, timeout=WAIT_MS):
        win.open_path(path)
    wait_idle(qtbot, win)


def test_first_view_is_read_before_the_layers_are_made(
        window: SegmendWindow, demo_path: Path, qtbot: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The first blocks asked for are those napari's first view then shows (before
    napari's layers slice anything): the first frame of the layers has data."""
    asked = record_requests(monkeypatch)
    open_demo(window, demo_path, qtbot)
    visible = window.widget.layers.visible_blocks()
    assert visible is not None
    level, coords = visible
    assert asked[:2] == [(True, LABELS_GROUP, level, set(coords)),
                         (True, IMAGE_GROUP, level, set(coords))]
    assert not any(early for early, *_ in asked[2:])


@pytest.mark.parametrize("case", ["beside another layer", "beyond the cache"])
def test_no_first_view_guess_beside_other_layers_or_beyond_the_cache(
        window: SegmendWindow, demo_path: Path, qtbot: Any,
        monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    """With a layer already shown the view does not move to fit the dataset, and a
    plane too large for the cache is shown at a coarser level: nothing is guessed."""
    asked = record_requests(monkeypatch)
    if case == "beside another layer":
        window.viewer.add_points([[0, 0, 0]], name="mine")
    else:
        monkeypatch.setattr(layers_module, "LEVEL_BUDGET", 1e-6)
    open_demo(window, demo_path, qtbot)
    assert asked and not any(early for early, *_ in asked)


@pytest.mark.parametrize(("shapes", "canvas", "level", "zs", "plane"), [
    ([(250, 250, 250), (125, 125, 125), (63, 63, 63)], (900, 1400), 0, {1}, (4, 4)),
    ([(300, 1024, 1024), (150, 512, 512), (75, 256, 256)], (300, 400), 1, {1}, (8, 8)),
    ([(128, 100, 300)], (200, 200), 0, {0, 1}, (2, 5)),  # middle between planes 63 and 64
    ([(129, 64, 64), (65, 32, 32)], (10, 10), 1, {0}, (1, 1)),  # every level exceeds the canvas
])
def test_first_view_blocks(shapes: list[tuple[int, int, int]], canvas: tuple[int, int],
                           level: int, zs: set[int], plane: tuple[int, int]) -> None:
    got_level, coords = first_view_blocks(shapes, (64, 64, 64), canvas)
    assert got_level == level
    assert set(coords) == {(z, y, x) for z in zs for y in range(plane[0])
                           for x in range(plane[1])}
    assert len(coords) == len(set(coords))


# ------------------------------------------------------------------------- selecting
def test_click_selects_and_shift_click_adds(opened: SegmendWindow, qtbot: Any) -> None:
    win = opened
    a, b = label_at(win, A_POS), label_at(win, B_POS)
    assert a != b and a and b
    with qtbot.waitSignal(win.widget.selection.changed, timeout=WAIT_MS):
        click_canvas(win, A_POS[1], A_POS[2])
    assert win.widget.selection.ids == [a]
    with qtbot.waitSignal(win.widget.selection.changed, timeout=WAIT_MS):
        click_canvas(win, B_POS[1], B_POS[2], Qt.KeyboardModifier.ShiftModifier)
    assert win.widget.selection.ids == [a, b]
    assert win.widget.picker.last_voxel == B_POS
    ds = win.session.dataset
    qtbot.waitUntil(lambda: win.widget.body_panel.rows() == [
        (a, ds.label_size(a)), (b, ds.label_size(b))], timeout=WAIT_MS)  # type: ignore[union-attr]
    assert win.widget.layers.selected is not None and win.widget.layers.selected.visible
    # shift-click again removes; a plain click replaces
    with qtbot.waitSignal(win.widget.selection.changed, timeout=WAIT_MS):
        click_canvas(win, B_POS[1], B_POS[2], Qt.KeyboardModifier.ShiftModifier)
    assert win.widget.selection.ids == [a]


def test_selection_layer_is_made_on_the_first_selection(opened: SegmendWindow,
                                                        qtbot: Any) -> None:
    win = opened
    layers = win.widget.layers
    seg = layers.segmentation
    assert layers.selected is None and seg is not None
    a, b = select(qtbot, win, A_POS, B_POS)
    selected = layers.selected
    assert selected is not None and selected.visible
    names = [layer.name for layer in win.viewer.layers]
    assert names[names.index("segmentation") + 1] == "selected bodies"
    assert win.viewer.layers.selection.active is seg  # still the segmentation
    assert all(isinstance(level, HighlightLevel) for level in selected.data)
    assert selected.data[0].dtype == np.uint8
    wait_idle(qtbot, win)

    def code_at(zyx: tuple[int, int, int]) -> int:
        value = selected.get_value(zyx, world=True)
        return int(value[1] if isinstance(value, tuple) else value)

    assert (code_at(A_POS), code_at(B_POS)) == (1, 2)  # colour by selection position
    colours = selected.colormap.map(np.arange(len(SELECTION_COLORS) + 1))
    np.testing.assert_allclose(colours[1:], [transform_color(c)[0] for c in SELECTION_COLORS])
    assert colours[0][3] == 0  # not selected: transparent
    other = next(p for p in ((Z, 30, 30), (Z, 200, 200), (Z, 30, 200))
                 if label_at(win, p) not in (a, b))
    assert code_at(other) == 0
    colormap = selected.colormap
    # a large selection: the colormap stays, the codes cycle through the colours
    ds = win.session.dataset
    assert ds is not None
    ids = [int(v) for v in np.unique(ds.labels(0)[Z]) if v and v not in (a, b)]
    big = [b, *ids[:600], a]
    assert len(big) > 16  # beyond the kernel's few-label path
    with qtbot.waitSignal(layers.settled, timeout=WAIT_MS):
        win.widget.selection.set(big)
    assert selected.colormap is colormap
    assert code_at(B_POS) == 1
    assert code_at(A_POS) == 1 + (len(big) - 1) % len(SELECTION_COLORS)
    with qtbot.waitSignal(win.widget.selection.changed, timeout=WAIT_MS):
        win.widget.selection.clear()
    assert not selected.visible and layers.selected is selected


def test_visible_blocks_are_those_under_the_canvas_centre_first(
        opened: SegmendWindow, qtbot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    win = opened
    layers = win.widget.layers
    ds = win.session.dataset
    assert ds is not None
    told: list[tuple[int, list[tuple[int, int, int]]]] = []
    monkeypatch.setattr(ds, "set_visible", lambda scale, coords: told.append((scale, [*coords])))
    cam = viewer_camera(win.viewer)
    cam.zoom = float(cam.zoom) * 6
    cam.center = (Z, 200.0, 40.0)
    visible = layers.visible_blocks()
    assert visible is not None and visible[0] == 0
    level, coords = visible
    # a few blocks around (y=200, x=40) -> block (1, 3, 0) first; none far away
    assert coords[0] == (Z // 64, 3, 0)
    assert 1 <= len(coords) < 16 and all(c[1] >= 2 and c[2] <= 1 for c in coords)
    centre = np.array([Z, 200.0, 40.0])
    distances = [np.linalg.norm((np.array(c) + 0.5) * 64 - centre) for c in coords]
    assert distances == sorted(distances)
    assert told[-1] == (level, list(coords))  # the model is told, in that order
    wait_idle(qtbot, win)


def test_only_changes_in_view_repaint(opened: SegmendWindow, qtbot: Any) -> None:
    win = opened
    layers = win.widget.layers
    cam = viewer_camera(win.viewer)
    cam.zoom = float(cam.zoom) * 6
    cam.center = (Z, 200.0, 40.0)
    wait_idle(qtbot, win)
    visible = layers.visible_blocks()
    assert visible is not None
    level, coords = visible
    before = layers.refreshes
    layers._on_blocks_changed(level, [(Z // 64, 0, 3)])  # far from the view
    layers._on_blocks_changed(level + 1, [coords[0]])  # another level
    assert not layers._timer.isActive() and layers.refreshes == before
    layers._on_blocks_changed(level, [list(coords[-1])])
    assert layers._timer.isActive()
    qtbot.waitUntil(lambda: layers.refreshes > before, timeout=WAIT_MS)
    wait_idle(qtbot, win)


def test_fit_view_of_a_large_volume_shows_a_level_that_fits_the_cache(
        opened: SegmendWindow, qtbot: Any) -> None:
    win = opened
    layers = win.widget.layers
    ds = win.session.dataset
    assert ds is not None and layers.segmentation is not None
    win.viewer.reset_view()
    wait_idle(qtbot, win)
    assert layers.locked_level is None and layers.segmentation.data_level == 0
    # a block cache too small for the 16 s0 blocks in view: a coarser level, whole
    cache = ds.store.cache
    capacity = cache.capacity_bytes
    block = 64**3 * (8 + 1)
    cache.capacity_bytes = int(10 * block / LEVEL_BUDGET)
    try:
        cam = viewer_camera(win.viewer)
        cam.zoom = float(cam.zoom) * 1.01  # any view change re-checks
        assert layers.locked_level == 1
        assert all(layer.data_level == 1 for layer in layers.layers)
        wait_idle(qtbot, win)
        visible = layers.visible_blocks()
        assert visible is not None and visible[0] == 1 and len(visible[1]) == 4
        assert shown_at(win, A_POS) == label_at(win, A_POS)
        assert 0 < cache.nbytes <= cache.capacity_bytes
        # zoomed in, the s0 blocks in view fit again: napari chooses
        cam.zoom = float(cam.zoom) * 4
        assert layers.locked_level is None
        assert all(layer.locked_data_level is None for layer in layers.layers)
        qtbot.waitUntil(lambda: layers.segmentation.data_level == 0, timeout=WAIT_MS)
        wait_idle(qtbot, win)
        assert shown_at(win, A_POS) == label_at(win, A_POS)
    finally:
        cache.capacity_bytes = capacity


def test_drag_pans_without_selecting(opened: SegmendWindow, qtbot: Any) -> None:
    win = opened
    native = win.viewer.window._qt_viewer.canvas.native
    start = canvas_pos(win, A_POS[1], A_POS[2])
    QTest.mousePress(native, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for dx in range(0, 60, 10):
        QTest.qWait(15)  # vispy drops mouse moves less than 10 ms apart (input pacing)
        QTest.mouseMove(native, start + QPoint(dx, 0))
    QTest.mouseRelease(native, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                       start + QPoint(60, 0))
    wait_idle(qtbot, win)
    assert win.widget.selection.ids == []


def test_show_selected_only_and_go_to_body(opened: SegmendWindow, qtbot: Any) -> None:
    win = opened
    ds = win.session.dataset
    assert ds is not None
    target = int(ds.labels(0)[30, 200, 40])
    with qtbot.waitSignal(win.widget.selection.changed, timeout=WAIT_MS):
        win.widget.body_panel.goto_edit.setText(str(target))
        win.widget.body_panel.goto_edit.returnPressed.emit()
    assert win.widget.selection.ids == [target]
    z = int(win.viewer.dims.point[0])
    centre = viewer_camera(win.viewer).center
    assert int(ds.labels(0)[z, round(centre[1]), round(centre[2])]) == target
    win.widget.commands["show_selected_only"].trigger()
    assert win.widget.body_panel.show_only.isChecked()
    assert not win.widget.layers.segmentation.visible  # type: ignore[union-attr]
    assert win.widget.layers.selected.visible  # type: ignore[union-attr]
    selected = win.widget.layers.selected
    assert selected is not None
    code = selected.get_value((z, round(centre[1]), round(centre[2])), world=True)
    assert int(code[1] if isinstance(code, tuple) else code) == 1  # the first colour
    assert selected.colormap.map(1)[3] > 0 and selected.colormap.map(0)[3] == 0
    # an unknown id: a clear message, nothing changes
    with qtbot.waitSignal(win.error_shown, timeout=WAIT_MS) as blocker:
        win.widget.goto_body(ds.max_label + 1000)
    assert "has no voxels" in blocker.args[0]
    assert win.widget.selection.ids == [target]


# --------------------------------------------------------------------------- merging
def test_merge_selected_into_first(opened: SegmendWindow, qtbot: Any) -> None:
    win = opened
    ds = win.session.dataset
    assert ds is not None
    a, b = select(qtbot, win, A_POS, B_POS)
    size_a, size_b = ds.label_size(a), ds.label_size(b)
    assert shown_at(win, B_POS) == b
    with qtbot.waitSignal(win.session.edit_finished, timeout=WAIT_MS) as done:
        win.qt_window.activateWindow()
        win.widget.commands["merge"].trigger()  # the M shortcut's action
    assert done.args[0] == "merge"
    wait_idle(qtbot, win)
    # the model changed exactly as expected
    assert ds.label_size(b) == 0 and ds.label_size(a) == size_a + size_b
    assert label_at(win, B_POS) == a and label_at(win, A_POS) == a
    record = ds.mutations()[-1]
    assert record["Action"] == "merge" and record["Target"] == a and record["Labels"] == [b]
    # the display refreshed, the panels followed
    assert shown_at(win, B_POS) == a
    assert win.widget.selection.ids == [a]
    qtbot.waitUntil(lambda: win.widget.history_panel.lines()[:1] == [f"#1  merge {b} into {a}"],
                    timeout=WAIT_MS)
    qtbot.waitUntil(lambda: win.widget.body_panel.rows() == [(a, size_a + size_b)],
                    timeout=WAIT_MS)
    assert win.status.texts()[1] == "1 mutation"
    assert win.widget.commands["undo"].isEnabled()


def test_merge_shortcut_key_m(opened: SegmendWindow, qtbot: Any) -> None:
    win = opened
    a, _b = select(qtbot, win, A_POS, B_POS)
    native = win.viewer.window._qt_viewer.canvas.native
    win.qt_window.activateWindow()
    native.setFocus()
    qtbot.waitUntil(lambda: win.qt_window.isActiveWindow(), timeout=WAIT_MS)
    with qtbot.waitSignal(win.session.edit_finished, timeout=WAIT_MS):
        QTest.keyClick(native, Qt.Key.Key_M)
    wait_idle(qtbot, win)
    assert label_at(win, B_POS) == a and shown_at(win, B_POS) == a


# ------------------------------------------------------------------------- splitting
def start_split(qtbot: Any, win: SegmendWindow, pos: tuple[int, int, int]) -> int:
    (target,) = select(qtbot, win, pos)
    with qtbot.waitSignal(win.widget.split_tool.started, timeout=WAIT_MS):
        win.widget.commands["split_start"].trigger()
    canvas = win.widget.split_tool.canvas
    assert canvas is not None and canvas.mode == "paint" and canvas.data.dtype == np.uint8
    assert win.viewer.layers.selection.active is canvas
    return target


def test_split_painted_region(opened: SegmendWindow, qtbot: Any) -> None:
    win = opened
    ds = win.session.dataset
    assert ds is not None
    target = start_split(qtbot, win, A_POS)
    tool = win.widget.split_tool
    roi = tool.roi
    assert roi is not None
    assert all(o <= p < o + n for o, p, n in zip(roi.origin, A_POS, roi.shape, strict=True))
    assert max(roi.shape) <= 256
    tool.set_brush_size(9)
    for dy in (0, 3):
        tool.paint_at((A_POS[0], A_POS[1] + dy, A_POS[2]))  # napari's own brush
    painted = np.argwhere(tool.canvas.data > 0) + np.array(roi.origin)
    assert set(painted[:, 0]) == {Z}  # the 2D brush paints the current plane only
    before = ds.labels(0)[Z, 80:120, 80:120].copy()
    expected = int(sum(ds.labels(0)[tuple(p)] == target for p in painted))
    size = ds.label_size(target)
    with qtbot.waitSignal(tool.previewed, timeout=WAIT_MS) as preview:
        win.widget.commands["split_preview"].trigger()
    assert preview.args[0].split_off == expected > 0
    assert preview.args[0].remaining == size - expected
    assert tool.preview_layer is not None
    assert ds.label_size(target) == size  # a preview changes nothing
    with qtbot.waitSignal(tool.committed, timeout=WAIT_MS) as committed:
        win.widget.commands["split_commit"].trigger()
    result = committed.args[0]
    assert isinstance(result, SplitResult)
    wait_idle(qtbot, win)
    new = result.label
    assert ds.label_size(new) == expected and ds.label_size(target) == size - expected
    after = ds.labels(0)[Z, 80:120, 80:120]
    changed = after != before
    assert changed.sum() == expected
    assert set(np.unique(before[changed])) == {target} and set(np.unique(after[changed])) == {new}
    assert label_at(win, A_POS) == new and shown_at(win, A_POS) == new
    assert not tool.active and "split canvas" not in [layer.name for layer in win.viewer.layers]
    assert win.widget.selection.ids == [target, new]
    assert ds.mutations()[-1]["Action"] == "split"


def test_split_with_3d_brush(opened: SegmendWindow, qtbot: Any) -> None:
    win = opened
    ds = win.session.dataset
    assert ds is not None
    target = start_split(qtbot, win, A_POS)
    tool = win.widget.split_tool
    win.widget.commands["brush_3d"].trigger()
    assert tool.canvas.n_edit_dimensions == 3 and win.widget.split_panel.brush_3d.isChecked()
    tool.set_brush_size(5)
    tool.paint_at(A_POS)
    painted = np.argwhere(tool.canvas.data > 0) + np.array(tool.roi.origin)  # type: ignore[union-attr]
    assert len(set(painted[:, 0])) == 5  # a ball, across planes
    hits = [tuple(p) for p in painted if ds.labels(0)[tuple(p)] == target]
    with qtbot.waitSignal(tool.committed, timeout=WAIT_MS) as committed:
        win.widget.commands["split_commit"].trigger()
    new = committed.args[0].label
    wait_idle(qtbot, win)
    assert ds.label_size(new) == len(hits)
    assert all(int(ds.labels(0)[p]) == new for p in hits)


def test_split_coarse_block_under_cursor(opened: SegmendWindow, qtbot: Any) -> None:
    win = opened
    ds = win.session.dataset
    assert ds is not None
    (target,) = select(qtbot, win, A_POS)
    blocks = ds.label_blocks(target)
    assert len(blocks) > 1
    block = (A_POS[0] // 64, A_POS[1] // 64, A_POS[2] // 64)
    size = ds.label_size(target)
    win.viewer.cursor.position = A_POS
    with qtbot.waitSignal(win.session.edit_finished, timeout=WAIT_MS) as done:
        win.widget.commands["split_coarse"].trigger()
    result = done.args[1]
    wait_idle(qtbot, win)
    assert ds.label_size(result.label) == blocks[block]
    assert ds.label_size(target) == size - blocks[block]
    assert ds.mutations()[-1]["Action"] == "splitcoarse"
    assert shown_at(win, A_POS) == result.label


# ------------------------------------------------------------------------ undo / redo
def test_undo_redo_survive_reopening(opened: SegmendWindow, qtbot: Any) -> None:
    win = opened
    path = win.session.path
    assert path is not None
    a, b = select(qtbot, win, A_POS, B_POS)
    with qtbot.waitSignal(win.session.edit_finished, timeout=WAIT_MS):
        win.widget.commands["merge"].trigger()
    wait_idle(qtbot, win)
    assert label_at(win, B_POS) == a
    # close and reopen the file: the undo stack is in the dataset's journal
    with qtbot.waitSignal(win.session.opened, timeout=WAIT_MS):
        win.open_path(path)
    qtbot.waitUntil(lambda: win.widget.commands["undo"].isEnabled(), timeout=WAIT_MS)
    wait_idle(qtbot, win)
    win.qt_window.activateWindow()
    native = win.viewer.window._qt_viewer.canvas.native
    native.setFocus()
    qtbot.waitUntil(lambda: win.qt_window.isActiveWindow(), timeout=WAIT_MS)
    with qtbot.waitSignal(win.session.edit_finished, timeout=WAIT_MS) as undone:
        QTest.keyClick(native, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert undone.args[0] == "undo"
    wait_idle(qtbot, win)
    assert label_at(win, B_POS) == b and shown_at(win, B_POS) == b
    ds = win.session.dataset
    assert ds is not None and ds.label_size(b) > 0
    qtbot.waitUntil(lambda: win.widget.commands["redo"].isEnabled(), timeout=WAIT_MS)
    with qtbot.waitSignal(win.session.edit_finished, timeout=WAIT_MS) as redone:
        QTest.keyClick(native, Qt.Key.Key_Z,
                       Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert redone.args[0] == "redo"
    wait_idle(qtbot, win)
    assert label_at(win, B_POS) == a and shown_at(win, B_POS) == a
    assert [r["Action"] for r in ds.mutations()] == ["merge", "undo", "merge"]
    qtbot.waitUntil(lambda: len(win.widget.history_panel.lines()) == 3, timeout=WAIT_MS)
    assert win.widget.history_panel.lines()[0].startswith("#3  merge")


# ----------------------------------------------------------------------- bad input
def test_non_pyramid_and_corrupt_files_lose_nothing(opened: SegmendWindow, qtbot: Any,
                                                    tmp_path: Path) -> None:
    import h5py

    win = opened
    current = win.session.dataset
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f.create_dataset("volume", data=np.zeros((4, 4, 4), np.uint64))
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 8)
    for bad, words in ((plain, "Import"), (corrupt, "corrupt.h5")):
        with qtbot.waitSignal(win.error_shown, timeout=WAIT_MS) as shown:
            win.open_path(bad)
        assert words in shown.args[0]
        assert win.session.dataset is current  # the open dataset stays
        assert any(box.isVisible() and not box.isModal() for box in win.reporter.boxes)
    assert win.widget.layers.segmentation in win.viewer.layers
    wait_idle(qtbot, win)


def test_split_with_empty_canvas_is_refused(opened: SegmendWindow, qtbot: Any) -> None:
    win = opened
    ds = win.session.dataset
    assert ds is not None
    target = start_split(qtbot, win, A_POS)
    size = ds.label_size(target)
    with qtbot.waitSignal(win.error_shown, timeout=WAIT_MS) as shown:
        win.widget.commands["split_commit"].trigger()
    assert "canvas is empty" in shown.args[0]
    assert win.widget.split_tool.active  # the canvas stays
    # a region holding none of the body: the model refuses, the canvas stays painted
    roi = win.widget.split_tool.roi
    assert roi is not None
    plane = ds.labels(0)[Z, roi.slices[1], roi.slices[2]]
    y, x = (int(v) for v in np.argwhere(plane != target)[0])
    win.widget.split_tool.set_brush_size(1)
    win.widget.split_tool.paint_at((Z, roi.origin[1] + y, roi.origin[2] + x))
    assert win.widget.split_tool.canvas.data.sum() == 1
    with qtbot.waitSignal(win.error_shown, timeout=WAIT_MS) as refused:
        win.widget.commands["split_commit"].trigger()
    assert "no voxel of target" in refused.args[0]
    assert win.widget.split_tool.active and win.widget.split_tool.canvas.data.any()
    assert ds.label_size(target) == size and ds.mutations() == []
    win.widget.commands["split_discard"].trigger()
    assert not win.widget.split_tool.active


def test_merge_needs_two_bodies(opened: SegmendWindow, qtbot: Any) -> None:
    win = opened
    select(qtbot, win, A_POS)
    assert not win.widget.commands["merge"].isEnabled()
    with qtbot.waitSignal(win.error_shown, timeout=WAIT_MS) as shown:
        win.widget.merge_selected()
    assert "at least two" in shown.args[0]


def test_read_only_when_locked_by_another_writer(window: SegmendWindow, demo_path: Path,
                                                 qtbot: Any) -> None:
    other = open_dataset(demo_path, "r+")
    try:
        with qtbot.waitSignal(window.session.opened, timeout=WAIT_MS):
            window.open_path(demo_path)
        assert not window.session.writable
        assert "read-only" in window.viewer.title
        wait_idle(qtbot, window)
        window.widget.selection.set([int(other.labels(0)[A_POS]), int(other.labels(0)[B_POS])])
        assert not window.widget.commands["merge"].isEnabled()
        with qtbot.waitSignal(window.error_shown, timeout=WAIT_MS) as shown:
            window.widget.merge_selected()
        assert "read-only" in shown.args[0]
        window.session.close_async()
        wait_idle(qtbot, window)
    finally:
        other.close()


def test_lower_levels_redraw_when_the_cascade_reaches_them(opened: SegmendWindow,
                                                           qtbot: Any) -> None:
    win = opened
    ds = win.session.dataset
    seg = win.widget.layers.segmentation
    assert ds is not None and seg is not None
    view = viewer_camera(win.viewer)
    view.zoom = view.zoom / 8  # far out: napari shows a coarse level
    qtbot.waitUntil(lambda: seg.data_level > 0, timeout=WAIT_MS)
    wait_idle(qtbot, win)
    level = seg.data_level
    factor = 2 ** level
    a, b = select(qtbot, win, A_POS, B_POS)
    coarse = ds.labels(level)
    spots = np.argwhere(coarse[Z // factor] == b)
    assert len(spots), "body b shows at the coarse level"
    spot = (Z // factor * factor, int(spots[0][0]) * factor, int(spots[0][1]) * factor)
    assert shown_at(win, spot) == b
    with qtbot.waitSignal(win.session.mutation_completed, timeout=WAIT_MS):
        win.widget.commands["merge"].trigger()
    wait_idle(qtbot, win)
    assert int(ds.labels(level)[tuple(v // factor for v in spot)]) == a
    assert seg.data_level == level and shown_at(win, spot) == a


def test_damaged_block_is_a_clear_error(window: SegmendWindow, demo_path: Path,
                                        qtbot: Any) -> None:
    import h5py

    with h5py.File(demo_path, "r") as f:
        info = f["labels/s0"].id.get_chunk_info_by_coord((64, 64, 64))
    with demo_path.open("r+b") as raw:
        raw.seek(info.byte_offset + 16)
        raw.write(b"\xff" * 64)
    with qtbot.waitSignal(window.error_shown, timeout=WAIT_MS) as shown:
        window.open_path(demo_path)
    assert "cannot open demo.h5" in shown.args[0] and "corrupt" in shown.args[0]
    assert window.session.dataset is None
    wait_idle(qtbot, window)


def test_foreign_pyramid_opens_read_only(window: SegmendWindow, tmp_path: Path,
                                         qtbot: Any) -> None:
    import h5py

    from app.model.demo import demo_cube_path

    path = tmp_path / "foreign.h5"
    with h5py.File(demo_cube_path(), "r") as cube, h5py.File(path, "w") as f:
        s0 = cube["automated/bodies"][:64, :64, :64].astype(np.uint32)
        f.create_dataset("seg/s0", data=s0, chunks=(32, 32, 32))
        f.create_dataset("seg/s1", data=s0[::2, ::2, ::2], chunks=(32, 32, 32))
    with qtbot.waitSignal(window.session.opened, timeout=WAIT_MS):
        window.open_path(path)
    assert not window.session.writable and "read-only" in window.viewer.title
    wait_idle(qtbot, window)
    pos = (int(window.viewer.dims.point[0]), 10, 10)
    label = int(s0[pos])
    with qtbot.waitSignal(window.widget.selection.changed, timeout=WAIT_MS):
        window.widget.picker.click(pos)
    assert window.widget.selection.ids == [label]
    qtbot.waitUntil(lambda: "sizes unknown" in window.widget.body_panel.summary.text(),
                    timeout=WAIT_MS)
    assert shown_at(window, pos) == label
    assert not window.widget.commands["split_start"].isEnabled()
