"""``segmend FILE --screenshot OUT.png [--select ID ...]`` as a user runs it (a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from qtpy.QtGui import QImage

from app.model.dataset import open_dataset

pytestmark = pytest.mark.gui


def run_segmend(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args], env=dict(os.environ),
                          capture_output=True, text=True, timeout=600, check=False)


def image_array(path: Path) -> np.ndarray:
    """The image as (height, width, 3) RGB."""
    image = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB888)
    rows = [np.frombuffer(bytes(image.constScanLine(y))[: 3 * image.width()],  # type: ignore[call-overload]
                          np.uint8)
            for y in range(image.height())]
    return np.stack(rows).reshape(image.height(), image.width(), 3)


def test_screenshot_with_selection(demo_path: Path, tmp_path: Path) -> None:
    with open_dataset(demo_path, "r+") as ds:  # also builds the label index
        a, b = int(ds.labels(0)[124, 100, 100]), int(ds.labels(0)[124, 100, 120])
    out = tmp_path / "shot.png"
    proc = run_segmend(str(demo_path), "--screenshot", str(out), "--select", str(a), str(b))
    assert proc.returncode == 0, proc.stderr
    pixels = image_array(out)
    assert pixels.shape[:2] == (900, 1400)
    # the first selected body is drawn in its highlight colour (gold) over the grayscale
    gold = np.abs(pixels.astype(int) - (0xFF, 0xD7, 0x00)).sum(axis=2) < 60
    assert gold.sum() > 500
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200  # the EM is there


def test_screenshot_of_a_bad_file_fails_cleanly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not an hdf5 file")
    out = tmp_path / "shot.png"
    proc = run_segmend(str(bad), "--screenshot", str(out))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("segmend: error: cannot open bad.h5")
    assert not out.exists()


def test_no_display_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from app.ui.main import run_app

    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert run_app("whatever.h5", screenshot="out.png") == 1
    assert capsys.readouterr().err.startswith("segmend: error: no display found")
