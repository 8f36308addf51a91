"""OME-Zarr pyramids in the app and the napari plugin: shown read-only.

The stores are the ones :mod:`tests.test_ome_zarr_read` writes with zarr-python
from the real crop (a sharded Zarr v3 NGFF 0.5 image with ``labels/cells``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from numpy.typing import NDArray
from qtpy.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from qtpy.QtGui import QDragEnterEvent, QDropEvent
from qtpy.QtWidgets import QApplication

from app.ui import registry
from app.ui.layer_data import ROLE
from app.ui.lazy import CachedLevel
from app.ui.main_window import SegmendWindow
from app.ui.plugin import get_reader
from app.ui.proofreading import ProofreadingWidget
from tests.test_ome_zarr_read import LEVELS, tree, write_v3_image
from tests.ui.conftest import WAIT_MS, wait_idle

pytestmark = pytest.mark.gui


@pytest.fixture
def image_zarr(tmp_path: Path, real_labels: NDArray[np.uint64],
               real_image: NDArray[np.uint8]) -> Path:
    return write_v3_image(tmp_path / "stores" / "image.zarr", real_labels, real_image)


@pytest.fixture(autouse=True)
def _close_reader_datasets() -> Iterator[None]:
    yield
    registry.close_all()


def drop(window: SegmendWindow, path: Path) -> None:
    """Drag ``path`` onto the viewer and drop it, as a file manager does."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    target = window.viewer.window._qt_viewer
    buttons, mods = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(QPoint(200, 200), Qt.DropAction.CopyAction, mime, buttons, mods)
    QApplication.sendEvent(target, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(target, QDropEvent(QPointF(QPoint(200, 200)),
                                              Qt.DropAction.CopyAction, mime, buttons, mods))


def test_the_app_shows_a_dropped_ome_zarr_read_only(
        window: SegmendWindow, image_zarr: Path, real_labels: NDArray[np.uint64],
        qtbot: Any) -> None:
    before = tree(image_zarr)
    with qtbot.waitSignal(window.session.notice, timeout=WAIT_MS) as notice:
        drop(window, image_zarr)
    assert notice.args[0].startswith("opened read-only: ") and "segmend build" in notice.args[0]
    assert not window.session.writable and window.viewer.title.endswith("image.zarr [read-only]")
    layers = list(window.viewer.layers)
    assert [layer.name for layer in layers] == ["grayscale", "segmentation"]
    assert all(layer.multiscale and len(layer.data) == LEVELS for layer in layers)
    wait_idle(qtbot, window)
    pos = (int(window.viewer.dims.point[0]), 30, 40)
    label = int(real_labels[pos])
    with qtbot.waitSignal(window.widget.selection.changed, timeout=WAIT_MS):
        window.widget.picker.click(pos)
    assert window.widget.selection.ids == [label]
    segmentation = window.widget.layers.segmentation
    assert segmentation is not None
    value = segmentation.get_value(pos, world=True)
    assert int(value[1] if isinstance(value, tuple) else value) == label
    for command in ("merge", "split_start", "split_coarse", "undo"):
        assert not window.widget.commands[command].isEnabled()
    assert tree(image_zarr) == before


def test_segmend_opens_a_zarr_from_the_command_line(image_zarr: Path, tmp_path: Path) -> None:
    out = tmp_path / "shot.png"
    proc = subprocess.run([sys.executable, "-m", "app", str(image_zarr), "--screenshot", str(out)],
                          env=dict(os.environ), capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    from qtpy.QtGui import QImage

    shot = QImage(str(out))
    assert (shot.width(), shot.height()) == (1400, 900)
    colours = {shot.pixel(x, y) for x in range(0, 1400, 7) for y in range(0, 900, 7)}
    assert len(colours) > 200  # the EM and the labels are drawn


def test_the_plugin_reads_an_ome_zarr(make_napari_viewer: Callable[..., Any], image_zarr: Path,
                                      tmp_path: Path, qtbot: Any) -> None:
    assert get_reader(str(image_zarr)) is not None and get_reader([str(image_zarr)]) is not None
    gray = tmp_path / "gray.zarr"  # an OME-Zarr image without labels: left to other readers
    zarr.open_group(gray, mode="w").attrs["ome"] = {"version": "0.5", "multiscales": []}
    assert get_reader(str(gray)) is None
    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget("segmend", "Proofreading")
    assert isinstance(widget, ProofreadingWidget)
    try:
        layers = viewer.open(str(image_zarr), plugin="segmend")  # (napari-ome-zarr claims it too)
        assert [layer.name for layer in layers] == ["grayscale", "segmentation"]
        assert [layer.metadata.get(ROLE) for layer in layers] == ["grayscale", "segmentation"]
        assert all(isinstance(level, CachedLevel) for level in layers[1].data)
        qtbot.waitUntil(lambda: widget.session.dataset is not None, timeout=WAIT_MS)
        assert widget.session.dataset is not None and not widget.session.dataset.native
        assert not widget.session.writable and widget.layers.segmentation is layers[1]
        qtbot.waitUntil(lambda: widget.session.runner.pending == 0
                        and widget.layers.is_settled(), timeout=WAIT_MS)
    finally:
        widget.shutdown()


def test_file_menu_opens_an_ome_zarr_folder(
        window: SegmendWindow, image_zarr: Path, qtbot: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder, which the file dialog of "Open segmend dataset" cannot pick."""
    from qtpy.QtWidgets import QFileDialog

    asked: list[str] = []

    def pick(_parent: Any, caption: str, _start: str) -> str:
        asked.append(caption)
        return str(image_zarr)

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", pick)
    action = window.file_actions["open_zarr"]
    assert action in window.viewer.window.file_menu.actions()
    with qtbot.waitSignal(window.session.opened, timeout=WAIT_MS):
        action.trigger()
    assert asked == ["Open OME-Zarr folder"]
    assert not window.session.writable
    assert window.viewer.title.endswith("image.zarr [read-only]")
