"""The 3D view of the selected bodies (app.ui.body_meshes) on the real demo cube:
the key makes a surface per selected body, coarse then s0, off the GUI thread;
a merge refreshes them."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
from napari.layers import Surface
from qtpy.QtCore import Qt
from qtpy.QtTest import QTest

from app.model.meshes import BodyMesher, mesh_plan
from app.ui.main_window import SegmendWindow
from app.ui.shortcuts import shortcut
from tests.ui.conftest import WAIT_MS, wait_idle

pytestmark = pytest.mark.gui

Z = 124
A_POS = (Z, 100, 100)
B_POS = (Z, 100, 120)
C_POS = (Z, 60, 180)


def select(qtbot: Any, win: SegmendWindow, *positions: tuple[int, int, int]) -> list[int]:
    for i, pos in enumerate(positions):
        with qtbot.waitSignal(win.widget.picker.picked, timeout=WAIT_MS):
            win.widget.picker.click(pos, shift=i > 0)
    return win.widget.selection.ids


def press_toggle_key(qtbot: Any, win: SegmendWindow) -> None:
    """Press the 3D bodies key (Shift+B) on the canvas."""
    assert shortcut("body_meshes").key == "Shift+B"
    native = win.viewer.window._qt_viewer.canvas.native
    win.qt_window.activateWindow()
    native.setFocus()
    qtbot.waitUntil(lambda: win.qt_window.isActiveWindow(), timeout=WAIT_MS)
    QTest.keyClick(native, Qt.Key.Key_B, Qt.KeyboardModifier.ShiftModifier)


def model_mesh(win: SegmendWindow, label: int) -> tuple[np.ndarray, np.ndarray]:
    """``label``'s s0 mesh made afresh from the model (test thread, own cache)."""
    assert win.session.dataset is not None
    mesh = BodyMesher(win.session.dataset).mesh(label, 0)
    assert mesh is not None
    return mesh.vertices, mesh.faces


def shows(win: SegmendWindow, label: int, want: tuple[np.ndarray, np.ndarray]) -> bool:
    layer = win.widget.body_meshes.surfaces.get(label)
    if layer is None or win.widget.body_meshes.shown_scale(label) != 0:
        return False
    vertices, faces, _values = layer.data
    return bool(np.array_equal(vertices, want[0]) and np.array_equal(faces, want[1]))


@pytest.fixture
def mesh_threads(opened: SegmendWindow, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For every mesh the widget made: True if it was made on the GUI (main) thread."""
    seen: list[bool] = []
    real = BodyMesher.mesh

    def mesh(self: BodyMesher, *args: Any, **kwargs: Any) -> Any:
        if self is opened.widget.body_meshes.mesher:
            seen.append(threading.current_thread() is threading.main_thread())
        return real(self, *args, **kwargs)

    monkeypatch.setattr(BodyMesher, "mesh", mesh)
    return seen


def test_key_shows_the_selected_bodies_as_surfaces_coarse_then_fine(
        opened: SegmendWindow, qtbot: Any, mesh_threads: list[bool]) -> None:
    win = opened
    meshes = win.widget.body_meshes
    ds = win.session.dataset
    assert ds is not None
    a, b = select(qtbot, win, A_POS, B_POS)
    steps: list[tuple[int, int]] = []
    meshes.updated.connect(lambda label, scale: steps.append((label, scale)))
    press_toggle_key(qtbot, win)
    qtbot.waitUntil(lambda: meshes.enabled, timeout=WAIT_MS)
    assert win.viewer.dims.ndisplay == 3
    assert win.widget.commands["body_meshes"].isChecked()
    volumes = win.widget.layers.layers  # grayscale, segmentation, selected bodies
    active = win.viewer.layers.selection.active
    assert len(volumes) == 3 and not any(layer.visible for layer in volumes)
    want = {v: model_mesh(win, v) for v in (a, b)}
    qtbot.waitUntil(lambda: all(shows(win, v, want[v]) for v in (a, b)), timeout=WAIT_MS)
    for label in (a, b):
        assert [s for v, s in steps if v == label] == mesh_plan(ds.label_size(label), ds.n_scales)
        layer = meshes.surfaces[label]
        assert isinstance(layer, Surface) and layer in win.viewer.layers
        seg = win.widget.layers.segmentation
        assert seg is not None
        colour = np.asarray(seg.get_color(label), dtype=np.float32)
        assert np.allclose(layer.colormap.colors[-1][:3], colour[:3])
    assert mesh_threads and not any(mesh_threads)
    assert active is win.widget.layers.segmentation and win.viewer.layers.selection.active is active
    # the selection decides which bodies are shown
    c = select(qtbot, win, C_POS)[0]
    want_c = model_mesh(win, c)
    qtbot.waitUntil(lambda: shows(win, c, want_c), timeout=WAIT_MS)
    assert set(meshes.surfaces) == {c}
    assert not any(layer.visible for layer in volumes)  # a new selection keeps them hidden
    assert sum(isinstance(layer, Surface) for layer in win.viewer.layers) == 1
    # the key again: surfaces gone, back to 2D
    press_toggle_key(qtbot, win)
    qtbot.waitUntil(lambda: not meshes.enabled, timeout=WAIT_MS)
    assert win.viewer.dims.ndisplay == 2 and meshes.surfaces == {}
    assert not any(isinstance(layer, Surface) for layer in win.viewer.layers)
    assert not win.widget.commands["body_meshes"].isChecked()
    assert all(layer.visible for layer in volumes)
    wait_idle(qtbot, win)


def test_merge_refreshes_the_surfaces(opened: SegmendWindow, qtbot: Any,
                                      mesh_threads: list[bool]) -> None:
    win = opened
    meshes = win.widget.body_meshes
    a, b = select(qtbot, win, A_POS, B_POS)
    win.widget.commands["body_meshes"].trigger()
    want = {v: model_mesh(win, v) for v in (a, b)}
    qtbot.waitUntil(lambda: all(shows(win, v, want[v]) for v in (a, b)), timeout=WAIT_MS)
    ds = win.session.dataset
    assert ds is not None
    union = np.isin(ds.labels(0)[...], [a, b])
    with qtbot.waitSignal(win.session.edit_finished, timeout=WAIT_MS):
        win.widget.commands["merge"].trigger()
    wait_idle(qtbot, win)
    assert np.array_equal(ds.labels(0)[...] == np.uint64(a), union)
    merged = model_mesh(win, a)
    assert len(merged[0]) != len(want[a][0])
    qtbot.waitUntil(lambda: shows(win, a, merged) and set(meshes.surfaces) == {a},
                    timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not meshes.busy, timeout=WAIT_MS)
    assert shows(win, a, merged)
    assert mesh_threads and not any(mesh_threads)
    # undo: both bodies come back in the model; the one still selected is re-meshed
    with qtbot.waitSignal(win.session.edit_finished, timeout=WAIT_MS):
        win.widget.commands["undo"].trigger()
    wait_idle(qtbot, win)
    qtbot.waitUntil(lambda: shows(win, a, want[a]), timeout=WAIT_MS)
    win.widget.commands["body_meshes"].trigger()
    assert win.viewer.dims.ndisplay == 2 and meshes.surfaces == {}


def test_show_selected_only_keeps_the_volumes_hidden_in_3d(opened: SegmendWindow,
                                                           qtbot: Any) -> None:
    """The 3D body view hides the volume layers, whatever else changes their visibility:
    "show selected only" (H) toggled in 3D, a new selection, a selection cleared."""
    win = opened
    layers = win.widget.layers
    select(qtbot, win, A_POS, B_POS)
    win.widget.commands["body_meshes"].trigger()
    volumes = layers.layers
    assert len(volumes) == 3 and not any(layer.visible for layer in volumes)
    for on in (True, False, True):
        win.widget.commands["show_selected_only"].setChecked(on)
        assert not any(layer.visible for layer in volumes), on
    select(qtbot, win, C_POS)
    assert not any(layer.visible for layer in volumes)
    win.widget.commands["clear_selection"].trigger()
    assert not any(layer.visible for layer in volumes)
    select(qtbot, win, A_POS)
    # back to 2D: "show selected only" is still on, so the segmentation stays hidden
    win.widget.commands["body_meshes"].trigger()
    assert layers.grayscale is not None and layers.grayscale.visible
    assert layers.selected is not None and layers.selected.visible
    assert layers.segmentation is not None and not layers.segmentation.visible
    win.widget.commands["show_selected_only"].setChecked(False)
    assert all(layer.visible for layer in volumes)
    wait_idle(qtbot, win)
