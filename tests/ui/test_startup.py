"""The app's start: what the GUI thread imports, the opening while napari builds the
window, the demo built in the background, pint's cached units registry, PySide6's
feature hook answered without reading sources."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.model.demo import demo_is_current, ensure_demo
from app.ui.main_window import SegmendWindow
from app.ui.settings import AppSettings
from tests.ui.conftest import WAIT_MS, wait_idle

pytestmark = pytest.mark.gui

REPO = Path(__file__).resolve().parents[2]
MODEL_STACK = ("h5py", "hdf5plugin", "blosc", "app.kernels", "app.model.storage.store",
               "app.model.dataset", "app.model.bulk.build")


def run_python(code: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``code`` (with ``sys.argv[1:]`` = ``args``) in a fresh interpreter (its own
    ``sys.modules``) from the repository root."""
    return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ, "PYTHONWARNINGS": "ignore", **env},
                          timeout=120)


@pytest.mark.parametrize("modules", [
    ("app.cli",),
    ("app.launcher", "app.cli", "app.ui.main", "app.ui.main_window", "app.ui.screenshot"),
])
def test_the_gui_thread_starts_without_the_model_stack(modules: tuple[str, ...]) -> None:
    """``segmend``, ``segmend demo`` and ``segmend --help`` import neither HDF5 nor the
    store and kernels on the GUI thread: the dataset's opening does, on a worker."""
    code = (f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
            f"print(sorted(m for m in {MODEL_STACK!r} if m in sys.modules))")
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]"]


@pytest.fixture
def bare_window(make_napari_viewer: Callable[..., Any]) -> Iterator[Callable[..., SegmendWindow]]:
    """Makes a segmend window that starts opening ``path`` first (a weak proxy, as the
    ``window`` fixture gives: napari's fixture checks that no viewer widget survives)."""
    made: list[SegmendWindow] = []

    def make(path: Path, *, demo: bool = False) -> SegmendWindow:
        win = SegmendWindow(make_napari_viewer(show=True), settings=AppSettings(),
                            save_settings=False, path=path, demo=demo)
        made.append(win)
        return weakref.proxy(win)

    yield make
    for win in made:
        win.shutdown()
    made.clear()


def test_the_window_opens_its_path_from_the_start(bare_window: Callable[..., SegmendWindow],
                                                  demo_path: Path, qtbot: Any) -> None:
    win = bare_window(demo_path)
    assert win.session.edits_pending == 1  # submitted while the window was being built
    with qtbot.waitSignal(win.session.opened, timeout=WAIT_MS):
        pass
    wait_idle(qtbot, win)
    assert win.session.path == demo_path
    assert [layer.name for layer in win.viewer.layers][:2] == ["grayscale", "segmentation"]
    assert win.widget.layers.segmentation is not None
    assert win.widget.layers.segmentation._slice.image.raw.any()


def test_the_demo_window_builds_a_missing_demo(bare_window: Callable[..., SegmendWindow],
                                               tmp_path: Path, qtbot: Any) -> None:
    out = tmp_path / "fresh" / "demo-labelmap.h5"
    out.parent.mkdir()
    win = bare_window(out, demo=True)
    with qtbot.waitSignal(win.session.opened, timeout=4 * WAIT_MS):
        pass
    wait_idle(qtbot, win)
    assert demo_is_current(out) and not demo_is_current(out, labelmap=False)  # labelmap mode
    assert win.session.path == out
    assert win.session.writable
    assert win.session.dataset is not None and win.session.dataset.labelmap


def test_the_demo_window_reuses_a_current_demo(bare_window: Callable[..., SegmendWindow],
                                               labelmap_demo_path: Path, qtbot: Any) -> None:
    demo = labelmap_demo_path
    before = demo.stat().st_mtime_ns
    win = bare_window(demo, demo=True)
    with qtbot.waitSignal(win.session.opened, timeout=WAIT_MS):
        pass
    wait_idle(qtbot, win)
    win.session.close_async()
    qtbot.waitUntil(lambda: win.runner.pending == 0, timeout=WAIT_MS)
    assert ensure_demo(demo) == demo
    assert demo.stat().st_mtime_ns == before  # neither the window nor ensure_demo rebuilt it


def test_the_demo_window_replaces_a_voxel_mode_demo(bare_window: Callable[..., SegmendWindow],
                                                    demo_path: Path, qtbot: Any) -> None:
    """A voxel-mode demo (an older segmend's default) is not taken for the demo: the
    window builds the labelmap one in its place (it has no edits)."""
    win = bare_window(demo_path, demo=True)
    with qtbot.waitSignal(win.session.opened, timeout=4 * WAIT_MS):
        pass
    wait_idle(qtbot, win)
    assert win.session.dataset is not None and win.session.dataset.labelmap
    assert demo_is_current(demo_path)


def test_a_window_opening_a_volume_offers_its_import(bare_window: Callable[..., SegmendWindow],
                                                     tmp_path: Path) -> None:
    import numpy as np

    volume = tmp_path / "labels.npy"
    np.save(volume, np.ones((8, 8, 8), np.uint32))
    win = bare_window(volume)
    assert win.session.edits_pending == 0
    assert win._import is not None and win._import.isVisible()
    win._import.close()


def test_demo_is_current_only_for_a_readable_demo(demo_master: Path, tmp_path: Path) -> None:
    assert demo_is_current(demo_master, labelmap=False)
    assert demo_is_current(demo_master, labelmap=None)
    assert not demo_is_current(demo_master)  # the voxel-mode demo is not the (labelmap) default
    for labelmap in (True, False, None):
        assert not demo_is_current(tmp_path / "missing.h5", labelmap=labelmap)
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not an HDF5 file")
    assert not demo_is_current(garbage, labelmap=None)
    no_image = tmp_path / "no-image.h5"
    shutil.copy(demo_master, no_image)
    import h5py

    with h5py.File(no_image, "r+") as f:
        del f["image"]
    assert not demo_is_current(no_image, labelmap=False)
    assert not demo_is_current(no_image, labelmap=None)


CACHED_UNITS = """
import pint
from app.ui.main import use_cached_units
ok = use_cached_units()
import numpy as np
from napari.layers import Labels
layer = Labels(np.zeros((4, 4, 4), np.uint32), units="nm")
registry = pint.get_application_registry()
print(ok, registry.cache_folder, layer.units[0] == registry.nm)
"""


def test_units_come_from_pint_s_disk_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = run_python(CACHED_UNITS, XDG_CACHE_HOME=str(cache))
    assert first.returncode == 0, first.stderr
    assert first.stdout.split() == ["True", str(cache / "pint"), "True"]
    stored = sorted(p.name for p in (cache / "pint").iterdir())
    assert any(name.endswith(".pickle") for name in stored)
    second = run_python(CACHED_UNITS, XDG_CACHE_HOME=str(cache))  # loads what the first stored
    assert second.stdout.split() == first.stdout.split()
    assert sorted(p.name for p in (cache / "pint").iterdir()) == stored


def test_an_unusable_units_cache_leaves_pint_s_registry(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "pint").write_text("a file where pint's cache directory would be")
    result = run_python(CACHED_UNITS, XDG_CACHE_HOME=str(cache))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "None", "True"]


PYSIDE_SCAN = """
import inspect, sys
from app.ui.main import skip_pyside_source_scan
print(skip_pyside_source_scan())
def no_source_read(obj):
    raise AssertionError(f"source of {obj!r} read")
inspect.getsource = no_source_read
sys.path.insert(0, sys.argv[1])
import plain_names, snake_names
from qtpy.QtCore import QObject
obj = QObject()
obj.setObjectName("body")
feature = sys.modules["shibokensupport.feature"].pyside_feature_dict
print(plain_names.name_of(obj), snake_names.name_of(obj), feature["plain_names"],
      feature["snake_names"])
"""


def test_imports_after_qt_are_not_read_for_pyside_features(tmp_path: Path) -> None:
    """No module imported after the hook is read, and PySide's ``__feature__`` still
    applies exactly to the module that asks for it."""
    (tmp_path / "plain_names.py").write_text("def name_of(obj):\n    return obj.objectName()\n")
    (tmp_path / "snake_names.py").write_text(
        "from __feature__ import snake_case\n\n\ndef name_of(obj):\n"
        "    return obj.object_name()\n")
    result = run_python(PYSIDE_SCAN, str(tmp_path), QT_API="pyside6")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "body", "body", "0", "1"]
