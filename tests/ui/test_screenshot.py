"""``segmend FILE --screenshot OUT.png [--select ID ...] [--seeds X,Y,Z ...]`` as a user
runs it (a subprocess), and the app's command line refusing what it cannot show."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from qtpy.QtGui import QImage

from app.cli import main
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


SEEDED_BODY = 8591  # a false merge of the demo (tests/ui/test_seed_split.py)
SEEDS_XYZ = (("115,99,57",), ("7,45,57",))  # one seed per part, both on plane z = 57


def seed_args(groups: tuple[tuple[str, ...], ...]) -> list[str]:
    return [word for group in groups for word in ("--seeds", *group)]


def colour_pixels(pixels: np.ndarray, colour: str, tolerance: int = 30) -> int:
    """How many pixels are ``colour`` (``#rrggbb``)."""
    rgb = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return int((np.abs(pixels.astype(int) - rgb).sum(axis=2) < tolerance).sum())


def test_screenshot_of_a_seeded_split(demo_path: Path, tmp_path: Path) -> None:
    from app.ui.seed_split import SEED_COLORS

    out = tmp_path / "seeded.png"
    proc = run_segmend(str(demo_path), "--screenshot", str(out), "--select", str(SEEDED_BODY),
                       *seed_args(SEEDS_XYZ))
    assert proc.returncode == 0, proc.stderr
    pixels = image_array(out)
    assert pixels.shape[:2] == (900, 1400)
    for colour in SEED_COLORS[:2]:  # both groups' seeds are drawn, in their colours
        assert colour_pixels(pixels, colour) > 20, colour
    with open_dataset(demo_path, "r") as ds:  # a preview changes nothing
        assert ds.mutations() == []


def test_a_seed_off_the_body_fails_in_one_line_and_saves_nothing(
        demo_path: Path, tmp_path: Path) -> None:
    with open_dataset(demo_path, "r") as ds:
        z, y, x = 68, 52, 41  # in the body; a voxel of another body near it
        plane = ds.labels(0)[z, y - 10:y + 10, x - 10:x + 10]
        dy, dx = (int(v) for v in np.argwhere((plane != SEEDED_BODY) & (plane != 0))[0])
        off = (x - 10 + dx, y - 10 + dy, z)
        other = int(ds.labels(0)[z, off[1], off[0]])
    out = tmp_path / "seeded.png"
    xyz = ",".join(map(str, off))
    proc = run_segmend(str(demo_path), "--screenshot", str(out), "--select", str(SEEDED_BODY),
                       *seed_args((SEEDS_XYZ[0], (xyz,))))
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("segmend: error:")]
    assert errors == [f"segmend: error: seeded split: seed {xyz} is on label {other}, "
                      f"not on body {SEEDED_BODY}"], proc.stderr
    assert not out.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--select", "5", *seed_args(SEEDS_XYZ)], "give --screenshot OUT.png"),
    (["--screenshot", "o.png", *seed_args(SEEDS_XYZ)], "give it as --select LABEL (got 0"),
    (["--screenshot", "o.png", "--select", "5", "6", *seed_args(SEEDS_XYZ)], "(got 2 labels)"),
    (["--screenshot", "o.png", "--select", "5", "--seeds", "1,2,3"], "at least twice"),
    (["--screenshot", "o.png", "--select", "5", "--seeds", "1,2", "--seeds", "1,2,4"],
     "a seed is three integers X,Y,Z, got '1,2'"),
])
def test_seeds_the_app_cannot_show_are_refused_before_it_starts(
        args: list[str], message: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[object] = []
    with pytest.raises(SystemExit) as exited:
        main([str(tmp_path / "f.h5"), *args], run_app=lambda *a, **k: calls.append(k) or 0)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and calls == []
    assert len(err.splitlines()) == 1 and err.startswith("segmend: error: "), err
    assert message in err


def test_seeds_reach_the_app_as_zyx_groups(tmp_path: Path) -> None:
    calls: list[dict[str, object]] = []

    def fake_app(file: str | None = None, **kwargs: object) -> int:
        calls.append(kwargs)
        return 0

    main([str(tmp_path / "f.h5"), "--screenshot", "o.png", "--select", "8591",
          "--seeds", "115,99,57", "1,2,3", "--seeds", "7,45,57"], run_app=fake_app)
    assert calls == [{"screenshot": "o.png", "select": [8591],
                      "seeds": [[(57, 99, 115), (3, 2, 1)], [(57, 45, 7)]]}]
