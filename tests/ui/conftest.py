"""Fixtures of the GUI tests: the demo pyramids (voxel mode, which most tests
proofread, and the default labelmap one), a segmend window over napari's test viewer.

The tests run under Xvfb (pytest-xvfb starts it) with Mesa OpenGL.  napari's
``make_napari_viewer`` fixture (napari's pytest plugin, registered by napari's
``pytest11`` entry point) makes and cleans up the viewers.

Warnings: the suite runs with ``filterwarnings = error``.  Importing npe2 (through
napari) triggers pydantic's V2 deprecation warnings at class-definition time,
once per process; napari is imported here with exactly those filtered, so that
the import happens outside any test.
"""

from __future__ import annotations

import shutil
import warnings
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    from pydantic.warnings import PydanticDeprecatedSince20

    warnings.filterwarnings("ignore", message=r"Using extra keyword arguments on `Field`",
                            category=PydanticDeprecatedSince20)
    warnings.filterwarnings("ignore", message=r"`allow_mutation` is deprecated",
                            category=PydanticDeprecatedSince20)
    warnings.filterwarnings("ignore", message=r"`json_encoders` is deprecated",
                            category=PydanticDeprecatedSince20)
    import napari  # noqa: F401
    import npe2  # noqa: F401

from qtpy.QtCore import QSettings

from app.model.dataset import Dataset
from app.model.demo import build_demo
from app.model.events import settings as event_settings
from app.ui.main_window import SegmendWindow
from app.ui.settings import AppSettings

WAIT_MS = 60_000


@pytest.fixture(autouse=True)
def _private_qsettings(tmp_path: Path) -> Iterator[Path]:
    """Every ``QSettings`` (ini format, user scope) goes to this test's tmp_path."""
    folder = tmp_path / "qsettings"
    folder.mkdir()
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    yield folder


@pytest.fixture(autouse=True)
def private_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """segmend's config file (the CLI's and the settings dialog's) is this test's own:
    ``$SEGMEND_CONFIG`` unset, the default path under tmp_path (the file absent)."""
    path = tmp_path / "config" / "segmend" / "config.toml"
    monkeypatch.delenv("SEGMEND_CONFIG", raising=False)
    monkeypatch.setattr(event_settings, "DEFAULT_CONFIG_PATH", path)
    return path


@pytest.fixture(scope="session")
def demo_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The voxel-mode demo pyramid (``segmend demo --voxel``: the cube's automated
    bodies) built once from the shipped real cube (do not edit it)."""
    return build_demo(tmp_path_factory.mktemp("demo") / "demo.h5", labelmap=False)


@pytest.fixture
def demo_path(tmp_path: Path, demo_master: Path) -> Path:
    """A private copy of the voxel-mode demo pyramid for one test."""
    path = tmp_path / "demo.h5"
    shutil.copy(demo_master, path)
    return path


@pytest.fixture(scope="session")
def labelmap_demo_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo pyramid as ``segmend demo`` builds it (labelmap mode: the cube's
    automated supervoxels and their mapping), built once (do not edit it)."""
    return build_demo(tmp_path_factory.mktemp("demo-labelmap") / "demo-labelmap.h5")


@pytest.fixture
def labelmap_demo_path(tmp_path: Path, labelmap_demo_master: Path) -> Path:
    """A private copy of the labelmap-mode (default) demo pyramid for one test."""
    path = tmp_path / "demo-labelmap.h5"
    shutil.copy(labelmap_demo_master, path)
    return path


@pytest.fixture
def window(make_napari_viewer: Callable[..., Any], qtbot: Any) -> Iterator[SegmendWindow]:
    """A segmend window over a shown napari test viewer (settings not saved).

    The test gets a weak proxy: napari's fixture checks, after this fixture's
    teardown, that no viewer widget survives, and pytest keeps fixture values
    until the very end of the test.
    """
    viewer = make_napari_viewer(show=True)
    win = SegmendWindow(viewer, settings=AppSettings(), save_settings=False)
    win.qt_window.resize(1400, 900)
    yield weakref.proxy(win)
    win.shutdown()


def dataset(win: SegmendWindow) -> Dataset:
    """The window's open dataset (one must be)."""
    ds = win.session.dataset
    assert ds is not None
    return ds


def wait_idle(qtbot: Any, win: SegmendWindow, timeout: int = WAIT_MS) -> None:
    """Until no background job is pending and every visible block is drawn."""
    qtbot.waitUntil(
        lambda: win.runner.pending == 0 and win.widget.layers.is_settled(), timeout=timeout
    )


@pytest.fixture
def opened(window: SegmendWindow, demo_path: Path, qtbot: Any) -> SegmendWindow:
    """The window with a private copy of the demo open and drawn."""
    with qtbot.waitSignal(window.session.opened, timeout=WAIT_MS):
        window.open_path(demo_path)
    wait_idle(qtbot, window)
    return window


@pytest.fixture
def said(window: SegmendWindow) -> list[str]:
    """The dock's status lines, in order."""
    lines: list[str] = []
    window.widget.status_message.connect(lines.append)
    return lines
