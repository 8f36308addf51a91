"""Seeded split in the app, on the real demo cube: seeds, preview, commit, undo, refusals.

Body 8591 of the demo is a false merge of the automated segmentation: it
holds two ground-truth neurons (60683 and 135602).  One seed in each, on two
different planes, splits it near their boundary.  The first seed is placed
with a real mouse click on the seed layer in napari's add mode; the others
with :meth:`SeedSplitTool.add_seed` (what such a click does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qtpy.QtCore import QPoint, Qt
from qtpy.QtTest import QTest

from app.model.dataset import SplitResult
from app.ui.compat import camera as viewer_camera
from app.ui.main_window import SegmendWindow
from app.ui.screenshot import ScreenshotDriver
from app.ui.seed_preview import SeedPreview, preview_text
from app.ui.seed_split import PREVIEW_NAME, SEED_COLORS
from tests.ui.conftest import WAIT_MS, wait_idle
from tests.ui.test_screenshot import image_array

pytestmark = pytest.mark.gui

BODY = 8591
SEED_1 = (51, 100, 116)  # in ground-truth neuron 60683: becomes the new body
SEED_2 = (68, 52, 41)  # in ground-truth neuron 135602: keeps the id
MOVED_1 = (51, 98, 116)
SHOT_SEEDS = [[(57, 99, 115)], [(57, 45, 7)]]  # both on plane 57


def label_at(win: SegmendWindow, zyx: tuple[int, int, int]) -> int:
    assert win.session.dataset is not None
    return int(win.session.dataset.labels(0)[zyx])


def start_seeds(qtbot: Any, win: SegmendWindow) -> Any:
    """Select the body and start a seeded split of it; returns the tool."""
    assert label_at(win, SEED_1) == label_at(win, SEED_2) == BODY
    win.widget.selection.set([BODY])
    tool = win.widget.seed_tool
    with qtbot.waitSignal(tool.started, timeout=WAIT_MS):
        win.widget.commands["seed_start"].trigger()
    return tool


def click_seed(qtbot: Any, win: SegmendWindow, zyx: tuple[int, int, int]) -> None:
    """A real left click at voxel ``zyx`` on its plane, zoomed in (4 pixels per voxel)."""
    win.viewer.dims.set_point(0, zyx[0])
    view = viewer_camera(win.viewer)
    view.center = tuple(float(v) for v in zyx)
    view.zoom = 4.0
    native = win.viewer.window._qt_viewer.canvas.native
    y, x = zyx[1:]
    cy, cx = view.center[-2:]
    pos = QPoint(round((x - cx) * view.zoom + native.width() / 2),
                 round((y - cy) * view.zoom + native.height() / 2))
    QTest.mouseMove(native, pos)
    QTest.mouseClick(native, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos)


def test_seeds_preview_commit_undo(opened: SegmendWindow, qtbot: Any) -> None:
    win = opened
    ds = win.session.dataset
    assert ds is not None
    size = ds.label_size(BODY)
    tool = start_seeds(qtbot, win)
    assert [layer.name for layer in tool.layers] == ["seeds 1: new body",
                                                     f"seeds 2: keeps {BODY}"]
    assert win.viewer.layers.selection.active is tool.layers[0]
    assert tool.layers[0].mode == "add" and tool.active_group == 1
    click_seed(qtbot, win, SEED_1)
    assert tool.seeds() == [[SEED_1], []]
    with qtbot.waitSignal(win.error_shown, timeout=WAIT_MS) as shown:  # group 2 is empty
        win.widget.commands["seed_preview"].trigger()
    assert "seed group 2 has no seed" in shown.args[0]
    win.widget.commands["seed_next_group"].trigger()
    assert tool.active_group == 2 and tool.layers[1].mode == "add"
    assert "group 2 of 2" in win.widget.seed_panel.group.text()
    tool.add_seed(SEED_2)
    assert tool.seeds() == [[SEED_1], [SEED_2]]

    with qtbot.waitSignal(tool.previewed, timeout=WAIT_MS) as previewed:
        win.widget.commands["seed_preview"].trigger()
    preview: SeedPreview = previewed.args[0]
    layer = tool.preview_layer
    assert layer is not None and layer.name == PREVIEW_NAME
    assert set(np.unique(layer.data)) == {0, 1, 2}  # two parts, two colours
    assert tuple(layer.translate) == preview.split.origin
    colors = layer.colormap.color_dict
    assert not np.allclose(colors[1], colors[2])
    # the seed layers stay above the preview, the active group stays active
    index = win.viewer.layers.index
    assert index(layer) < min(index(s) for s in tool.layers)
    assert win.viewer.layers.selection.active is tool.layers[1]
    new_part, stays = preview.sizes
    assert new_part > 1000 and stays > 1000 and new_part + stays == size
    assert preview.seeds == [[SEED_1], [SEED_2]]
    assert ds.mutations() == [] and ds.label_size(BODY) == size  # a preview changes nothing
    assert win.widget.seed_panel.status.text() == preview_text(BODY, preview.sizes)

    # moving a seed recomputes the preview by itself (the stale one is cancelled)
    with qtbot.waitSignal(tool.previewed, timeout=WAIT_MS) as again:
        tool.layers[0].data = np.array([MOVED_1], dtype=float)
    moved: SeedPreview = again.args[0]
    assert moved.seeds == tool.seeds() == [[MOVED_1], [SEED_2]]
    at = tuple(p - o for p, o in zip(MOVED_1, moved.split.origin, strict=True))
    assert moved.split.parts[at] == 1
    # seeds changed while a preview runs: its result is dropped, the next one is shown
    with qtbot.waitSignal(tool.previewed, timeout=WAIT_MS) as latest:
        tool.add_seed(SEED_1, group=1)
        tool.layers[0].data = np.array([MOVED_1], dtype=float)
    assert latest.args[0].seeds == [[MOVED_1], [SEED_2]]
    assert tool.preview_layer is not None and len(
        [la for la in win.viewer.layers if la.name == PREVIEW_NAME]) == 1

    with qtbot.waitSignal(tool.committed, timeout=WAIT_MS) as committed:
        win.widget.commands["seed_commit"].trigger()
    body, results = committed.args
    assert body == BODY and len(results) == 1 and isinstance(results[0], SplitResult)
    new = results[0].label
    wait_idle(qtbot, win)
    assert [r["Action"] for r in ds.mutations()] == ["split"]
    assert ds.label_size(new) == moved.sizes[0] and ds.label_size(BODY) == moved.sizes[1]
    assert label_at(win, MOVED_1) == new and label_at(win, SEED_2) == BODY
    assert not tool.active and tool.preview_layer is None
    assert not [la for la in win.viewer.layers if la.name.startswith(("seeds", PREVIEW_NAME))]
    assert win.widget.selection.ids == [BODY, new]
    assert win.widget.status_label.text().startswith(f"seeded split done: new body {new}")
    qtbot.waitUntil(lambda: len(win.widget.history_panel.lines()) == 1, timeout=WAIT_MS)
    assert "split" in win.widget.history_panel.lines()[0]

    with qtbot.waitSignal(win.session.edit_finished, timeout=WAIT_MS) as undone:
        win.widget.commands["undo"].trigger()
    assert undone.args[0] == "undo"
    wait_idle(qtbot, win)
    assert ds.label_size(BODY) == size and ds.label_size(new) == 0
    assert label_at(win, MOVED_1) == BODY
    qtbot.waitUntil(lambda: win.widget.status_label.text().startswith(
        f"seeded split undone: body {new} is merged back"), timeout=WAIT_MS)


def test_seed_off_the_body_is_refused_and_changes_nothing(opened: SegmendWindow,
                                                          qtbot: Any) -> None:
    win = opened
    ds = win.session.dataset
    assert ds is not None
    size = ds.label_size(BODY)
    tool = start_seeds(qtbot, win)
    z, y, x = SEED_2
    plane = ds.labels(0)[z, y - 10:y + 10, x - 10:x + 10]
    dy, dx = (int(v) for v in np.argwhere((plane != BODY) & (plane != 0))[0])
    off = (z, y - 10 + dy, x - 10 + dx)
    other = label_at(win, off)
    tool.add_seed(SEED_1, group=1)
    tool.add_seed(off, group=2)
    with qtbot.waitSignal(win.error_shown, timeout=WAIT_MS) as shown:
        win.widget.commands["seed_preview"].trigger()
    xyz = f"{off[2]},{off[1]},{off[0]}"
    assert f"seed {xyz} is on label {other}, not on body {BODY}" in shown.args[0]
    assert tool.preview_layer is None
    with qtbot.waitSignal(win.session.edit_failed, timeout=WAIT_MS) as failed:
        win.widget.commands["seed_commit"].trigger()
    assert failed.args[0] == "seeded-split" and "not on body" in failed.args[1]
    wait_idle(qtbot, win)
    assert ds.mutations() == [] and ds.label_size(BODY) == size
    assert tool.active and tool.seeds() == [[SEED_1], [off]]  # the seeds stay
    assert "not on body" in win.widget.seed_panel.status.text()
    win.widget.commands["seed_discard"].trigger()
    assert not tool.active and not win.widget.commands["seed_commit"].isEnabled()


def test_three_groups_make_two_new_bodies(opened: SegmendWindow, qtbot: Any) -> None:
    win = opened
    ds = win.session.dataset
    assert ds is not None
    size = ds.label_size(BODY)
    tool = start_seeds(qtbot, win)
    win.widget.commands["seed_add_group"].trigger()
    assert [layer.name for layer in tool.layers] == [
        "seeds 1: new body", "seeds 2: new body", f"seeds 3: keeps {BODY}"]
    assert tool.active_group == 3
    win.widget.commands["seed_next_group"].trigger()
    assert tool.active_group == 1
    assert len(set(tool.colors().values())) == 3
    third = next(tuple(int(v) + o for v, o in zip(p, (40, 60, 60), strict=True))
                 for p in np.argwhere(ds.labels(0)[40:80, 60:120, 60:120] == BODY))
    for group, seed in enumerate((SEED_1, third, SEED_2), start=1):
        tool.add_seed(seed, group=group)
    with qtbot.waitSignal(tool.previewed, timeout=WAIT_MS) as previewed:
        win.widget.commands["seed_preview"].trigger()
    assert set(np.unique(tool.preview_layer.data)) == {0, 1, 2, 3}
    sizes = previewed.args[0].sizes
    with qtbot.waitSignal(tool.committed, timeout=WAIT_MS) as committed:
        win.widget.commands["seed_commit"].trigger()
    results = committed.args[1]
    wait_idle(qtbot, win)
    assert [r["Action"] for r in ds.mutations()] == ["split", "split"]
    assert [ds.label_size(r.label) for r in results] == list(sizes[:2])
    assert ds.label_size(BODY) == sizes[2] == size - sizes[0] - sizes[1]
    assert win.widget.selection.ids == [BODY, *(r.label for r in results)]


def test_removing_seed_layers_renumbers_then_discards(opened: SegmendWindow,
                                                      qtbot: Any) -> None:
    win = opened
    tool = start_seeds(qtbot, win)
    tool.add_group()
    middle = tool.layers[1]
    win.viewer.layers.remove(middle)
    assert len(tool.layers) == 2 and tool.layers[1].name == f"seeds 2: keeps {BODY}"
    with qtbot.waitSignal(tool.discarded, timeout=WAIT_MS):
        win.viewer.layers.remove(tool.layers[0])
    assert not tool.active
    assert not [la for la in win.viewer.layers if la.name.startswith("seeds")]


def test_screenshot_of_a_seeded_split_in_progress(window: SegmendWindow, demo_path: Path,
                                                  tmp_path: Path, qtbot: Any) -> None:
    out = tmp_path / "seeded.png"
    win = window.session.parent()  # the window itself: the fixture hands out a weak proxy
    assert isinstance(win, SegmendWindow)
    driver = ScreenshotDriver(win, out, [BODY], seeds=SHOT_SEEDS)
    with qtbot.waitSignal(driver.finished, timeout=WAIT_MS) as finished:
        driver.start(demo_path)
    assert finished.args[0] == 0, driver.error
    tool = window.widget.seed_tool
    assert tool.seeds() == SHOT_SEEDS and tool.preview_layer is not None
    assert window.viewer.dims.point[0] == 57
    pixels = image_array(out)
    for color in SEED_COLORS[:2]:  # the seeds are drawn in their groups' colours
        rgb = tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))
        assert (np.abs(pixels.astype(int) - rgb).sum(axis=2) < 30).sum() > 20
