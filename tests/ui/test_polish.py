"""The window's rough edges: layout, napari's paint tools, help menu, texts that count and
follow undo/redo, the first run's demo build, the split canvas cleaned up."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from qtpy.QtCore import QPoint
from qtpy.QtWidgets import QScrollArea

from app.ui.controller import BUILDING_DEMO
from app.ui.layer_controls import PAINT_BUTTONS, layer_controls
from app.ui.main_window import SegmendWindow
from app.ui.settings import AppSettings
from app.ui.split_canvas import CANVAS_NAME, PREVIEW_NAME
from app.ui.texts import count
from app.ui.window_layout import CANVAS_SHARE, DEFAULT_SIZE, default_size
from tests.ui.conftest import WAIT_MS, wait_idle
from tests.ui.test_app import A_POS, B_POS, select, start_split

pytestmark = pytest.mark.gui


def test_count_is_plural_correct_and_thousands_separated() -> None:
    assert count(1, "mutation") == "1 mutation"
    assert count(2, "mutation") == "2 mutations"
    assert count(0, "job") == "0 jobs"
    assert count(1, "body") == "1 body" and count(3, "body") == "3 bodies"
    assert count(12345, "voxel") == "12,345 voxels"


def test_default_layout_gives_the_canvas_most_of_the_window(window: SegmendWindow,
                                                           qtbot: Any) -> None:
    win = window
    size = default_size(win.qt_window)
    screen = win.qt_window.screen().availableGeometry()
    assert size == (min(DEFAULT_SIZE[0], screen.width()), min(DEFAULT_SIZE[1], screen.height()))
    win.qt_window.resize(*DEFAULT_SIZE)  # the test screen may be smaller than a desktop's
    qtbot.waitUntil(lambda: win.qt_window.width() == DEFAULT_SIZE[0], timeout=WAIT_MS)
    win.apply_layout()
    canvas = win.viewer.window._qt_viewer.canvas.native
    qtbot.waitUntil(lambda: canvas.width() >= CANVAS_SHARE * win.qt_window.width(),
                    timeout=WAIT_MS)
    # the history is on screen, not scrolled away below the dock
    scroll = win.widget.findChild(QScrollArea)
    history = win.widget.history_panel.list
    top = history.mapTo(scroll.viewport(), QPoint(0, 0)).y()
    assert top >= 0 and top + 60 <= scroll.viewport().height()
    # and the dock's contents fit its width (nothing cut off on the right)
    assert scroll.widget().minimumSizeHint().width() <= scroll.viewport().width()


def test_napari_paint_tools_are_hidden_on_segmend_layers(opened: SegmendWindow,
                                                         qtbot: Any) -> None:
    win = opened
    select(qtbot, win, A_POS)  # makes the "selected bodies" layer
    layers = [win.widget.layers.segmentation, win.widget.layers.selected]
    for layer in layers:
        controls = layer_controls(win.widget, layer)
        assert controls is not None
        assert all(getattr(controls, name).isHidden() for name in PAINT_BUTTONS
                   if hasattr(controls, name))
        layer.mode = "paint"  # napari's P key: refused on the multiscale layer
        assert layer.mode == "pan_zoom"
    win.widget.selection.clear()
    start_split(qtbot, win, A_POS)  # segmend's canvas keeps napari's brush
    canvas = layer_controls(win.widget, win.widget.split_tool.canvas)
    assert canvas is not None and not canvas.paint_button.isHidden()
    win.widget.split_tool.discard()


def test_segmend_help_is_under_napari_help_menu(window: SegmendWindow) -> None:
    action = window.widget.commands["help"]
    help_menu = window.viewer.window.help_menu
    help_menu.aboutToShow.emit()  # napari may rebuild it when shown
    assert action in help_menu.actions()
    assert action not in window.proofread_menu.actions()


def test_status_texts_count_and_follow_undo_and_redo(opened: SegmendWindow, qtbot: Any) -> None:
    win = opened
    said: list[str] = []
    win.widget.status_message.connect(said.append)
    a, _b = select(qtbot, win, A_POS, B_POS)
    with qtbot.waitSignal(win.session.edit_finished, timeout=WAIT_MS):
        win.widget.commands["merge"].trigger()
    wait_idle(qtbot, win)
    assert f"merging 1 body into {a}..." in said
    assert said[-1] == f"merged 1 body into {a} (mutation 1)"
    with qtbot.waitSignal(win.session.edit_finished, timeout=WAIT_MS):
        win.widget.commands["undo"].trigger()
    wait_idle(qtbot, win)
    assert said[-1] == f"merge undone: 1 body split off {a} again (mutation 2)"
    assert not any("merged" in text for text in said[-2:])
    # a split: the split box's text follows its undo and redo
    win.widget.selection.clear()
    target = start_split(qtbot, win, A_POS)
    tool = win.widget.split_tool
    tool.set_brush_size(5)
    tool.paint_at(A_POS)
    with qtbot.waitSignal(tool.committed, timeout=WAIT_MS) as committed:
        win.widget.commands["split_commit"].trigger()
    wait_idle(qtbot, win)
    new = committed.args[0].label
    box = win.widget.split_panel.status
    assert box.text() == f"split done: new body {new} (mutation 3)"
    with qtbot.waitSignal(win.session.edit_finished, timeout=WAIT_MS):
        win.widget.commands["undo"].trigger()
    qtbot.waitUntil(lambda: "undone" in box.text(), timeout=WAIT_MS)
    assert box.text() == f"split undone: body {new} is merged back (mutation 4)"
    assert "split done" not in said[-1]
    wait_idle(qtbot, win)
    qtbot.waitUntil(win.widget.commands["redo"].isEnabled, timeout=WAIT_MS)
    with qtbot.waitSignal(win.session.edit_finished, timeout=WAIT_MS):
        win.widget.commands["redo"].trigger()
    qtbot.waitUntil(lambda: "done" in box.text(), timeout=WAIT_MS)
    assert box.text() == f"split done: new body {new} (mutation 5)"
    wait_idle(qtbot, win)
    assert win.status.texts()[1] == "5 mutations"
    assert target in win.widget.selection.ids or not win.widget.selection.ids


def test_split_leaves_no_canvas_or_preview_layer(opened: SegmendWindow, qtbot: Any) -> None:
    win = opened
    tool = win.widget.split_tool

    def leftovers() -> list[str]:
        return [la.name for la in win.viewer.layers if la.name in (CANVAS_NAME, PREVIEW_NAME)]

    for finish in ("split_commit", "split_discard"):
        start_split(qtbot, win, A_POS)
        tool.set_brush_size(5)
        tool.paint_at(A_POS)
        with qtbot.waitSignal(tool.previewed, timeout=WAIT_MS):
            win.widget.commands["split_preview"].trigger()
        assert leftovers() == [CANVAS_NAME, PREVIEW_NAME]
        if finish == "split_commit":
            with qtbot.waitSignal(tool.committed, timeout=WAIT_MS):
                win.widget.commands[finish].trigger()
        else:
            win.widget.commands[finish].trigger()
        wait_idle(qtbot, win)
        assert leftovers() == [] and tool.preview_layer is None and tool.canvas is None
        # napari's brush overlay (the round cursor of the paint mode) went with the canvas
        assert not win.viewer.canvas.overlays._brush_circle.visible
        win.widget.selection.clear()


def test_first_run_shows_the_demo_build(make_napari_viewer: Callable[..., Any], qtbot: Any,
                                        tmp_path: Path) -> None:
    demo = tmp_path / "data" / "segmend" / "demo-labelmap.h5"
    demo.parent.mkdir(parents=True)
    win = SegmendWindow(make_napari_viewer(show=True), settings=AppSettings(),
                        save_settings=False, path=demo, demo=True)
    proxy = weakref.proxy(win)
    try:
        # at once: the window says what it is doing, not "no dataset open" beside "idle"
        assert proxy.opening.isVisible() and "demo-labelmap.h5" in proxy.opening.title.text()
        assert proxy.widget.file_label.text() == "opening demo-labelmap.h5..."
        assert proxy.status.texts()[0] != "idle"
        stages: list[tuple[str, int, int]] = []
        proxy.session.open_progress.connect(lambda *args: stages.append(args))
        qtbot.waitUntil(lambda: any(s == BUILDING_DEMO and t > 0 for s, _d, t in stages),
                        timeout=WAIT_MS)
        assert proxy.opening.isVisible()
        assert proxy.opening.title.text() == "Building the demo dataset (first run only)..."
        assert not proxy.qt_viewer._welcome_widget.isVisible()  # napari's "drag files here"
        assert proxy.status.bar.isVisible() and proxy.status.stage.text() == BUILDING_DEMO
        assert proxy.widget.file_label.text().startswith(BUILDING_DEMO)
        with qtbot.waitSignal(proxy.session.opened, timeout=WAIT_MS):
            pass
        assert not proxy.opening.isVisible() and not proxy.status.bar.isVisible()
        assert proxy.widget.file_label.text().startswith("demo-labelmap.h5")
        assert proxy.session.dataset is not None and proxy.session.dataset.labelmap
        wait_idle(qtbot, proxy)
    finally:
        win.shutdown()
