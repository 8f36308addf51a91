"""Make the README screenshots with the app on the real cube (run under Xvfb, 24-bit).

    Xvfb :99 -screen 0 1600x1200x24 &
    DISPLAY=:99 .venv/bin/python -m tests.ui.make_screenshots docs/screenshots

- ``overview.png`` and ``selected.png``: ``segmend FILE --screenshot OUT [--select ...]``;
- ``split.png``: the app driven in-process -- a body selected, a split canvas
  painted with napari's brush, the preview shown.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

SELECTED_AT = ((124, 100, 100), (124, 100, 120), (124, 150, 60))
SPLIT_AT = (124, 100, 120)


def _segmend(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "app", *args], check=True)


def main(out_dir: Path) -> None:
    from app.model.dataset import open_dataset
    from app.model.demo import build_demo

    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="segmend-shots-"))
    demo = build_demo(work / "demo.h5")
    with open_dataset(demo, "r+") as ds:
        selected = [str(int(ds.labels(0)[p])) for p in SELECTED_AT]
    _segmend(str(demo), "--screenshot", str(out_dir / "overview.png"))
    _segmend(str(demo), "--screenshot", str(out_dir / "selected.png"), "--select", *selected)
    split_shot(demo, out_dir / "split.png")


def split_shot(demo: Path, out: Path) -> None:
    """Open the demo, paint a split region on one body, preview it, save the window."""
    from napari.qt import get_qapp
    from qtpy.QtCore import QEventLoop

    from app.ui.compat import camera
    from app.ui.main_window import SegmendWindow
    from app.ui.screenshot import grab_window
    from app.ui.settings import AppSettings

    app = get_qapp()
    win = SegmendWindow(settings=AppSettings(), save_settings=False)
    win.qt_window.resize(1400, 900)

    def wait(condition: object, timeout: float = 120.0) -> None:
        start = time.monotonic()
        while not condition():  # type: ignore[operator]
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            if time.monotonic() - start > timeout:
                raise TimeoutError("the app did not get there in time")

    def idle() -> bool:
        return win.runner.pending == 0 and win.widget.layers.is_settled()

    win.open_path(demo)
    wait(lambda: win.session.dataset is not None and idle())
    ds = win.session.dataset
    assert ds is not None
    target = int(ds.labels(0)[SPLIT_AT])
    win.widget.goto_body(target)
    wait(lambda: win.widget.selection.ids == [target] and idle())
    z = int(win.viewer.dims.point[0])
    win.widget.split_tool.start(target)
    wait(lambda: win.widget.split_tool.active)
    tool = win.widget.split_tool
    win.widget.split_panel.brush_size.setValue(12)
    view = camera(win.viewer)
    view.zoom = view.zoom * 2.5
    centre = view.center  # goto centred the view on the body
    for dy in range(-10, 12, 3):
        tool.paint_at((z, float(centre[1]) + dy, float(centre[2]) - 6))
    tool.preview()
    wait(lambda: tool.preview_layer is not None and idle())
    for _ in range(10):
        app.processEvents()
    grab_window(win.qt_window, out)
    win.shutdown()
    win.viewer.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/screenshots"))
