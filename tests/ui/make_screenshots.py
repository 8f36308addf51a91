"""Make the README screenshots with the app on the real cube (run under Xvfb, 24-bit).

    Xvfb :99 -screen 0 1600x1200x24 &
    DISPLAY=:99 .venv/bin/python -m tests.ui.make_screenshots docs/screenshots [NAME ...]

(or ``xvfb-run -a -s "-screen 0 1600x1200x24" .venv/bin/python -m tests.ui.make_screenshots``);
NAMEs (e.g. ``labelmap-cleave``) make only those pictures.
Every picture is the window at its default size and layout (1400×900, the
canvas taking most of it):

- ``overview.png``, ``selected.png`` and ``seeded.png``: ``segmend FILE
  --screenshot OUT [--select ...] [--seeds ...]`` (``seeded.png``: a seeded
  split of a false merge in progress, a seed for each part on one plane and
  the preview in the two groups' colours);
- ``split.png``: the app driven in-process -- a body selected, a split canvas
  painted with napari's brush, the preview shown;
- ``bodies3d.png``: the app driven in-process -- a few bodies selected and
  shown in 3D (the Shift+B view), their s0 meshes drawn;
- ``labelmap-cleave.png``: the app driven in-process on the cube's supervoxels
  and their mapping (labelmap mode) -- three bodies merged, then a cleave of
  that body in progress in the supervoxel view: two supervoxels picked (red),
  the body's others (blue);
- ``synapses.png``: the app driven in-process on the same labelmap dataset with
  the shipped synthetic synapses posted -- *Next body* (N) has gone to the body
  with the most PostSyn elements, and the body presynaptic to most of them is
  added: their synapses and partner arrows on a thick slice of the planes
  around the view, their status (the first one's just set) and counts in the
  Bodies panel's *status* tab.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SELECTED_AT = ((124, 100, 100), (124, 100, 120), (124, 150, 60))
SPLIT_AT = (124, 100, 120)
SEEDED_BODY = 8591
"""A false merge of the automated segmentation (two ground-truth neurons)."""
SEEDS_XYZ = ("117,98,58", "46,61,58")
"""One seed in each of its neurons (x,y,z), both on plane z = 58, where both parts show."""
BODIES_3D = (461, 250, 519, 164)
"""Large neurons of the demo, shown in 3D."""
CAMERA_ANGLES_3D = (-15.0, 35.0, 120.0)
"""napari's camera angles (degrees) of the 3D picture."""
ZOOM_3D = 0.6
"""The 3D picture's zoom, relative to napari's fit of the whole volume."""
CLEAVE_PLANE = 124
CLEAVE_MERGED = (250, 164, 25466)
"""Neighbouring bodies on plane :data:`CLEAVE_PLANE` of the labelmap dataset, merged
into the first before the cleave."""
CLEAVE_VIEW = ((CLEAVE_PLANE, 100, 88), 4.2)
"""The view of the cleave: its centre (z, y, x) and zoom."""
SYNAPSES_JSON = Path(__file__).resolve().parents[2] / "resources" / "fib-medulla-250-synapses.json"
"""The shipped synthetic synapses (DVID POST JSON)."""
SYNAPSE_SLAB = 6
"""Planes on each side of the plane shown whose synapses the picture shows (a thick slice)."""
SYNAPSE_ZOOM = 7.0
"""The synapse picture's zoom."""
SYNAPSE_STATUS, SYNAPSE_NAME = "Roughly traced", "to review"
"""The status and name the synapse picture sets on its first body."""


def _segmend(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "app", *args], check=True)


def main(out_dir: Path, names: list[str]) -> None:
    """Make the pictures called ``names`` (every one if empty) in ``out_dir``."""
    from app.model.demo import build_demo

    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="segmend-shots-"))
    shots: dict[str, Callable[[Path], None]] = {
        "overview": lambda out: _segmend(str(demo()), "--screenshot", str(out)),
        "selected": lambda out: _segmend(str(demo()), "--screenshot", str(out), "--select",
                                         *selected()),
        "seeded": lambda out: _segmend(
            str(demo()), "--screenshot", str(out), "--select", str(SEEDED_BODY),
            *(word for seed in SEEDS_XYZ for word in ("--seeds", seed))),
        "split": lambda out: split_shot(demo(), out),
        "bodies3d": lambda out: bodies3d_shot(demo(), out),
        "labelmap-cleave": lambda out: cleave_shot(labelmap_dataset(work / "labelmap.h5"), out),
        "synapses": lambda out: synapses_shot(
            with_synapses(labelmap_dataset(work / "synapses.h5")), out),
    }

    def demo() -> Path:
        path = work / "demo.h5"
        return path if path.exists() else build_demo(path, labelmap=False)

    def selected() -> list[str]:
        from app.model.dataset import open_dataset

        with open_dataset(demo(), "r+") as ds:
            return [str(int(ds.labels(0)[p])) for p in SELECTED_AT]

    unknown = sorted(set(names) - set(shots))
    if unknown:
        raise SystemExit(f"no picture called {', '.join(unknown)}; there are {', '.join(shots)}")
    for name in names or list(shots):
        shots[name](out_dir / f"{name}.png")


def labelmap_dataset(out: Path) -> Path:
    """The cube's automated supervoxels and their agglomeration mapping (labelmap
    mode), with grayscale, built at ``out`` with its label index."""
    from app.model.bulk.build import build_pyramid
    from app.model.dataset import open_dataset
    from app.model.demo import demo_cube_path

    cube = demo_cube_path()
    path = build_pyramid(f"{cube}:/automated/supervoxels", out, image=f"{cube}:/raw",
                         mapping=f"{cube}:/automated/mapping", voxel_size_nm=(10, 10, 10))
    open_dataset(path, "r+").close()
    return path


class _Driven:
    """A segmend window at the default size and layout, driven in this process."""

    def __init__(self) -> None:
        from napari.qt import get_qapp

        from app.ui.main_window import SegmendWindow
        from app.ui.settings import AppSettings
        from app.ui.window_layout import DEFAULT_SIZE

        self.app = get_qapp()
        self.win = SegmendWindow(settings=AppSettings(), save_settings=False)
        self.win.qt_window.resize(*DEFAULT_SIZE)
        self.win.apply_layout()

    def wait(self, condition: Callable[[], bool], timeout: float = 120.0) -> None:
        """Run the event loop until ``condition()``."""
        from qtpy.QtCore import QEventLoop

        start = time.monotonic()
        while not condition():
            self.app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            if time.monotonic() - start > timeout:
                raise TimeoutError("the app did not get there in time")

    def idle(self) -> bool:
        """No background job pending, every visible block drawn."""
        return self.win.runner.pending == 0 and self.win.widget.layers.is_settled()

    def open(self, path: Path) -> Any:
        """Open ``path`` and wait until it is drawn; returns the dataset."""
        self.win.open_path(path)
        self.wait(lambda: self.win.session.dataset is not None and self.idle())
        return self.win.session.dataset

    def shoot(self, out: Path) -> None:
        """Let the status texts (batched) and the last paints through, then save the window."""
        from app.ui.screenshot import grab_window

        self.wait(lambda: not self.win.status.updates.pending)
        for _ in range(10):
            self.app.processEvents()
        grab_window(self.win.qt_window, out)


@contextmanager
def _driven() -> Iterator[_Driven]:
    driven = _Driven()
    try:
        yield driven
    finally:
        driven.win.shutdown()
        driven.win.viewer.close()


def split_shot(demo: Path, out: Path) -> None:
    """Open the demo, paint a split region on one body, preview it, save the window."""
    from app.ui.compat import camera

    with _driven() as d:
        win = d.win
        ds = d.open(demo)
        target = int(ds.labels(0)[SPLIT_AT])
        win.widget.goto_body(target)
        d.wait(lambda: win.widget.selection.ids == [target] and d.idle())
        z = int(win.viewer.dims.point[0])
        tool = win.widget.split_tool
        tool.start(target)
        d.wait(lambda: tool.active)
        win.widget.split_panel.brush_size.setValue(12)
        view = camera(win.viewer)
        view.zoom = view.zoom * 2.5
        centre = view.center  # goto centred the view on the body
        for dy in range(-10, 12, 3):
            tool.paint_at((z, float(centre[1]) + dy, float(centre[2]) - 6))
        tool.preview()
        d.wait(lambda: tool.preview_layer is not None and d.idle())
        d.shoot(out)


def bodies3d_shot(demo: Path, out: Path) -> None:
    """Open the demo, select :data:`BODIES_3D`, switch on the 3D view of the selected
    bodies, wait for their s0 meshes, save the window."""
    from app.ui.compat import camera

    with _driven() as d:
        win = d.win
        d.open(demo)
        bodies = list(BODIES_3D)
        win.widget.selection.set(bodies)
        meshes = win.widget.body_meshes
        win.widget.commands["body_meshes"].trigger()
        d.wait(lambda: all(meshes.shown_scale(v) == 0 for v in bodies)
               and not meshes.busy and d.idle())
        win.viewer.reset_view()
        view = camera(win.viewer)
        view.angles = CAMERA_ANGLES_3D
        view.zoom = view.zoom * ZOOM_3D
        d.shoot(out)


def _inside_largest_supervoxel(ds: Any, body: int) -> tuple[int, int, int]:
    """The voxel nearest the centre of ``body``'s largest supervoxel on plane
    :data:`CLEAVE_PLANE` (``body``: its id before the merge)."""
    import numpy as np

    svs = np.asarray(ds.supervoxels(0)[CLEAVE_PLANE])
    ids, sizes = np.unique(svs[np.isin(svs, ds.supervoxels_of(body))], return_counts=True)
    where = np.argwhere(svs == ids[np.argmax(sizes)])
    y, x = where[np.argmin(((where - where.mean(axis=0)) ** 2).sum(axis=1))]
    return CLEAVE_PLANE, int(y), int(x)


def cleave_shot(path: Path, out: Path) -> None:
    """Open a labelmap dataset, merge :data:`CLEAVE_MERGED`, start a cleave of the
    body, pick the largest supervoxel of each body merged in, save the window."""
    from app.ui.compat import camera

    with _driven() as d:
        win = d.win
        ds = d.open(path)
        widget = win.widget
        picks = [_inside_largest_supervoxel(ds, body) for body in CLEAVE_MERGED[1:]]
        widget.selection.set(CLEAVE_MERGED)
        widget.commands["merge"].trigger()
        d.wait(lambda: ds.label_size(CLEAVE_MERGED[1]) == 0 and d.idle())
        tool = widget.labelmap.cleave
        widget.commands["cleave_start"].trigger()
        d.wait(lambda: tool.active and d.idle())
        for voxel in picks:
            widget.picker.click(voxel, alt=True)
        d.wait(lambda: len(tool.picked) == len(picks))
        centre, zoom = CLEAVE_VIEW
        win.viewer.dims.set_point(0, centre[0])
        view = camera(win.viewer)
        view.center = centre
        view.zoom = zoom
        d.wait(d.idle)
        d.shoot(out)



def with_synapses(path: Path) -> Path:
    """Post the shipped synthetic synapses into the dataset at ``path`` as ``synapses``."""
    from app.model.dataset import open_dataset

    with open_dataset(path, "r+") as ds:
        ds.annotations.post("synapses", SYNAPSES_JSON.read_text())
    return path


def synapses_shot(path: Path, out: Path) -> None:
    """Open a dataset with synapses, go to the body with the most PostSyn elements
    (*Next body*), add the body presynaptic to most of them to the selection, show a
    thick slice around the plane holding most of their synapses, centred on them,
    save the window."""
    from collections import Counter

    import numpy as np

    from app.ui.compat import camera

    with _driven() as d:
        win = d.win
        ds = d.open(path)
        widget = win.widget
        body = int(ds.annotations.top("synapses", 1)[0]["Label"])
        widget.commands["next_body"].trigger()
        d.wait(lambda: widget.selection.ids == [body] and d.idle())
        pres = Counter(int(ds.labels(0)[x_y_z[2], x_y_z[1], x_y_z[0]])
                       for e in ds.annotations.body("synapses", body, relationships=True)
                       for x_y_z in (r["To"] for r in e["Rels"] or ()
                                     if r["Rel"] == "PostSynTo"))
        partner = next(label for label, _n in pres.most_common() if label not in (0, body))
        bodies = [body, partner]
        widget.selection.set(bodies)
        page = widget.status_page
        widget.body_panel.tabs.setCurrentWidget(page)
        d.wait(lambda: widget.synapses.shown == tuple(bodies)
               and set(bodies) <= set(page.infos) and d.idle())
        page.status_combo.setCurrentIndex(page.status_combo.findData(SYNAPSE_STATUS))
        page.name_edit.setText(SYNAPSE_NAME)
        page.apply()
        d.wait(lambda: page.infos[body].status == SYNAPSE_STATUS and d.idle())
        zyx = np.array([e["Pos"][::-1] for b in bodies
                        for e in ds.annotations.body("synapses", b)])
        near = [np.abs(zyx[:, 0] - z) <= SYNAPSE_SLAB for z in range(ds.shape[0])]
        z = int(np.argmax([n.sum() for n in near]))
        win.viewer.dims.margin_left = win.viewer.dims.margin_right = (
            float(SYNAPSE_SLAB), 0.0, 0.0)
        win.viewer.dims.set_point(0, z)
        view = camera(win.viewer)
        view.center = (float(z), *map(float, zyx[near[z], 1:].mean(axis=0)))
        view.zoom = SYNAPSE_ZOOM
        d.wait(d.idle)
        d.shoot(out)

if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/screenshots"), sys.argv[2:])
