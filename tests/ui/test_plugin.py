"""The napari plugin: manifest, reader, the proofreading dock widget, sample data.

Uses napari's own ``make_napari_viewer`` fixture and napari's plugin machinery
(npe2 discovers ``app/napari.yaml`` through the ``napari.manifest`` entry point).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from app.ui import registry
from app.ui.compat import camera
from app.ui.layer_data import ROLE
from app.ui.lazy import CachedLevel
from app.ui.plugin import get_reader
from app.ui.proofreading import ProofreadingWidget
from tests.ui.conftest import WAIT_MS

pytestmark = pytest.mark.gui


@pytest.fixture(autouse=True)
def _close_reader_datasets() -> Iterator[None]:
    yield
    registry.close_all()


@pytest.fixture
def dock(make_napari_viewer: Callable[..., Any]) -> Iterator[tuple[Any, ProofreadingWidget]]:
    """A viewer with the segmend dock opened from the Plugins machinery."""
    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget("segmend", "Proofreading")
    assert isinstance(widget, ProofreadingWidget)
    yield viewer, widget
    widget.shutdown()


def test_manifest_declares_reader_widget_and_sample() -> None:
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("segmend")
    assert manifest.name == "segmend"
    contributions = manifest.contributions
    assert [w.display_name for w in contributions.widgets or []] == ["Proofreading"]
    assert [s.key for s in contributions.sample_data or []] == ["demo", "demo_fresh"]
    assert "*.h5" in (contributions.readers or [])[0].filename_patterns


def test_reader_accepts_only_hdf5(tmp_path: Path, demo_path: Path) -> None:
    assert get_reader(str(demo_path)) is not None
    assert get_reader([str(demo_path)]) is not None
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    fake = tmp_path / "fake.h5"
    fake.write_text("not hdf5")
    assert get_reader(str(text)) is None
    assert get_reader(str(fake)) is None
    assert get_reader([str(demo_path), str(demo_path)]) is None


def test_reader_then_widget_proofreads_the_same_dataset(
        dock: tuple[Any, ProofreadingWidget], demo_path: Path, qtbot: Any) -> None:
    viewer, widget = dock
    layers: list[Any] = viewer.open(str(demo_path), plugin="segmend")
    assert [layer.name for layer in layers] == ["grayscale", "segmentation"]
    assert all(layer.multiscale for layer in layers)
    # the widget took the dataset over and adopted the reader's layers
    qtbot.waitUntil(lambda: widget.session.dataset is not None, timeout=WAIT_MS)
    ds = widget.session.dataset
    assert ds is not None and widget.session.writable
    seg = layers[1]
    assert widget.layers.segmentation is seg and seg is not None
    assert all(isinstance(level, CachedLevel) and level.loader is not None for level in seg.data)
    assert [layer.metadata.get(ROLE) for layer in viewer.layers] == [
        "grayscale", "segmentation"]
    a, b = int(ds.labels(0)[124, 100, 100]), int(ds.labels(0)[124, 100, 120])
    size_a, size_b = ds.label_size(a), ds.label_size(b)
    widget.selection.set([a, b])
    assert [layer.metadata.get(ROLE) for layer in viewer.layers] == [
        "grayscale", "segmentation", "selection"]
    with qtbot.waitSignal(widget.session.edit_finished, timeout=WAIT_MS):
        widget.commands["merge"].trigger()
    qtbot.waitUntil(lambda: widget.session.runner.pending == 0 and widget.layers.is_settled(),
                    timeout=WAIT_MS)
    assert ds.label_size(a) == size_a + size_b and ds.label_size(b) == 0
    value = seg.get_value((124, 100, 120), world=True)
    assert int(value[1] if isinstance(value, tuple) else value) == a


def test_widget_opens_a_dataset_itself(dock: tuple[Any, ProofreadingWidget], demo_path: Path,
                                       qtbot: Any) -> None:
    viewer, widget = dock
    with qtbot.waitSignal(widget.session.opened, timeout=WAIT_MS):
        widget.open(str(demo_path))
    assert [layer.name for layer in viewer.layers] == ["grayscale", "segmentation"]
    qtbot.waitUntil(lambda: widget.session.runner.pending == 0 and widget.layers.is_settled(),
                    timeout=WAIT_MS)


def test_reader_opens_plain_label_volumes(make_napari_viewer: Callable[..., Any],
                                          tmp_path: Path, qtbot: Any) -> None:
    path = tmp_path / "plain.h5"
    labels = np.arange(4 * 5 * 6, dtype=np.uint32).reshape(4, 5, 6)
    with h5py.File(path, "w") as f:
        f.create_dataset("seg/labels", data=labels)
        f.create_dataset("raw", data=np.zeros((4, 5, 6), np.uint8))
    viewer = make_napari_viewer()
    layers = viewer.open(str(path), plugin="segmend")
    assert [type(layer).__name__ for layer in layers] == ["Image", "Labels"]
    data = layers[1].data
    assert isinstance(data, CachedLevel) and data.loader is not None  # read on the pool
    qtbot.waitUntil(lambda: np.array_equal(np.asarray(data), labels), timeout=WAIT_MS)
    np.testing.assert_array_equal(np.asarray(layers[1].data), labels)


@pytest.mark.parametrize("kind", ["plain", "pyramid"])
def test_reader_layers_never_read_hdf5_on_the_gui_thread(
        make_napari_viewer: Callable[..., Any], tmp_path: Path, demo_path: Path, qtbot: Any,
        kind: str) -> None:
    """napari slices on the GUI thread: the reader's layers answer from memory and
    fill in as a worker reads the blocks (no proofreading widget involved)."""
    if kind == "plain":
        path = tmp_path / "plain.h5"
        labels = (np.arange(64 ** 3, dtype=np.uint64) // 4096 + 1).reshape(64, 64, 64)
        with h5py.File(path, "w") as f:
            f.create_dataset("labels", data=labels, chunks=(16, 16, 16))
    else:
        path = demo_path
        with h5py.File(path, "r") as f:
            labels = f["labels/s0"][...]
    viewer = make_napari_viewer()
    layer = viewer.open(str(path), plugin="segmend")[-1]
    h5py_dir = str(Path(h5py.__file__).parent)
    gui_h5py_calls: list[str] = []

    def profile(frame: Any, event: str, _arg: Any) -> None:
        if event == "call" and frame.f_code.co_filename.startswith(h5py_dir):
            gui_h5py_calls.append(frame.f_code.co_name)

    z = labels.shape[0] // 5  # a block row napari's first (middle) view did not read
    point = (z, labels.shape[1] // 2, labels.shape[2] // 2)
    sys.setprofile(profile)  # this (the GUI) thread only
    try:
        camera(viewer).zoom = 8.0  # the finest level, under the view's centre
        viewer.dims.set_point(0, z)

        def shown() -> bool:
            value = layer.get_value(point, world=True)
            value = value[1] if isinstance(value, tuple) else value
            return value is not None and int(value) == int(labels[point])

        qtbot.waitUntil(shown, timeout=WAIT_MS)
    finally:
        sys.setprofile(None)
    assert gui_h5py_calls == []


def test_sample_data_is_the_real_cube(make_napari_viewer: Callable[..., Any], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))  # (the user's own demo stays untouched)
    viewer = make_napari_viewer()
    viewer.open_sample("segmend", "demo")
    names = [layer.name for layer in viewer.layers]
    assert names == ["grayscale", "segmentation: bodies"]  # the demo is in labelmap mode
    assert viewer.layers["segmentation: bodies"].data[0].shape == (250, 250, 250)
