"""Desktop-app benchmarks: merge latency in the view, cold start, memory while browsing.

Usage (from the repository root, with a display; napari needs OpenGL, so not
``QT_QPA_PLATFORM=offscreen``)::

    python -m benchmarks.bench_app                 # everything (~20 min on 2 cores)
    python -m benchmarks.bench_app --xvfb          # start a private Xvfb for the run
    python -m benchmarks.bench_app --only merge,start --quick

The 1024³ build needs ~9 GiB of free disk in the work directory (``/tmp`` by
default, removed at the end) and ~10 GiB of RAM for a few minutes; with less,
768³ is used and the table says so.

Every measurement runs in its own subprocess (``python -m benchmarks.bench_app
_child KIND ...``) that prints one ``BENCH_JSON`` line; the parent prints a
markdown table at the end.  Times are ``time.perf_counter()`` (CLOCK_MONOTONIC
on Linux, so the parent and its children share the clock).

1. **Merge visible <= 100 ms after the click, any body size.**  The app's own
   merge action (``commands["merge"]``, what the M key and the button trigger)
   is fired with a selection of bodies; a 2 ms ``QTimer`` and the segmentation
   layer's ``set_data`` event read the layer's displayed slice
   (``layer.get_value(p)``) at a voxel ``p`` of a merged body until it shows the
   target label ("data"); "drawn" is the next vispy ``draw`` event after that.
   Series: the demo cube (fit-to-window view) and a synthetic 512³ Voronoi
   pyramid (400 bodies of ~70³ voxels; fit-to-window, and zoomed 4x on ``p``).
   Body size = s0 blocks the merge rewrites.  The synthetic labels are kept
   below 2**63 (PySide6 turns larger ints into -1 in ``Signal(list)`` and
   ``Signal(dict)`` payloads, which the app uses for label ids).
2. **Cold start of ``segmend demo`` <= napari's own start + 1 s.**  (a)
   ``import napari; v = napari.Viewer()`` until the canvas' first ``draw``
   event; (b) ``segmend demo --out FILE`` (the real CLI, demo already built and
   indexed) until the first ``draw`` event at which the segmentation layer's
   displayed slice holds non-zero labels ("first frame with data"), and until
   the first ``draw`` with every visible block loaded ("complete frame"); (c)
   for reference, (a) with a small multiscale image and labels layer added
   before the first draw: what napari's first layers cost it (pandas, pint,
   SciPy imports and registries), so that (b) − (c) is segmend's own share.
   All from just before ``Popen`` in the parent, median of several fresh processes
   after one unmeasured warm-up of each (Numba cache, bytecode, page cache).  With
   ``SEGMEND_BENCH_PROFILE=OUT.prof`` the segmend child writes a cProfile of its
   GUI thread up to that frame.
3. **Memory while browsing a 1024³ pyramid <= 1.5 GiB RSS.**  A uint64 Voronoi
   label pyramid plus a uint8 grayscale one are built with ``build_pyramid``
   (``.npy`` sources in the work directory, deleted afterwards), opened in the
   app, then browsed by a script (z scrolling and jumps, zoom in and out, pans
   across the volume) for ~60 s while a thread samples the process RSS (psutil)
   every 100 ms.  The opening view is left alone for up to 30 s first: whether it
   settles (every visible block loaded and drawn) is reported too.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MARK = "BENCH_JSON "
WINDOW_SIZE = (1400, 900)
MERGE_TARGET_MS = 100.0
START_SLACK_S = 1.0
RSS_TARGET = 1.5 * 2**30
GIB = 2**30
PRE_MERGE_QUIET_MS = 500
"""Idle time before each merge (the user selects, then presses M): longer than the
layers' repaint throttle, so a merge is not timed against a repaint just done."""


# =============================================================================
# helpers shared by the children (Qt imported lazily: the start children must
# not import anything before the code they time)
# =============================================================================
def emit(result: dict[str, Any]) -> None:
    """Hand a child's result to the parent."""
    sys.stdout.write(MARK + json.dumps(result) + "\n")
    sys.stdout.flush()


def rss_breakdown() -> dict[str, int]:
    """VmRSS, RssAnon, RssFile, RssShmem and VmHWM of this process, in bytes."""
    out: dict[str, int] = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out


def wait_until(pred: Any, timeout_s: float, what: str, poll_ms: int = 5) -> float:
    """Run the Qt event loop until ``pred()``; returns the time it became true."""
    from qtpy.QtCore import QEventLoop, QTimer

    if pred():
        return time.perf_counter()
    loop = QEventLoop()
    state: dict[str, float] = {}
    deadline = time.perf_counter() + timeout_s

    def check() -> None:
        if "t" in state:
            return
        if pred():
            state["t"] = time.perf_counter()
            loop.quit()
        elif time.perf_counter() > deadline:
            loop.quit()

    timer = QTimer()
    timer.setInterval(poll_ms)
    timer.timeout.connect(check)
    timer.start()
    loop.exec()
    timer.stop()
    if "t" not in state:
        raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
    return state["t"]


def pump(ms: int) -> None:
    """Run the event loop for ``ms`` milliseconds."""
    end = time.perf_counter() + ms / 1000
    wait_until(lambda: time.perf_counter() >= end, ms / 1000 + 5, "a pause")


def make_window() -> Any:
    """A shown segmend window as ``run_app`` makes it (default settings, not saved)."""
    from napari.qt import get_qapp

    from app.ui.main_window import SegmendWindow
    from app.ui.settings import AppSettings

    get_qapp()
    window = SegmendWindow(settings=AppSettings(), save_settings=False, show=True)
    window.qt_window.resize(*WINDOW_SIZE)
    return window


def is_idle(window: Any) -> bool:
    """No background job pending and every visible block loaded and drawn."""
    return bool(window.runner.pending == 0 and window.widget.layers.is_settled())


def settle(window: Any, quiet_ms: int = 150, timeout_s: float = 120.0) -> None:
    """Until the window has been idle for ``quiet_ms`` in a row."""
    since: dict[str, float] = {}

    def quiet() -> bool:
        if not is_idle(window):
            since.clear()
            return False
        t0 = since.setdefault("t", time.perf_counter())
        return time.perf_counter() - t0 >= quiet_ms / 1000

    wait_until(quiet, timeout_s, "the view to settle")


def try_settle(window: Any, timeout_s: float) -> float | None:
    """Like :func:`settle`; returns the seconds it took, or None if it never settled."""
    t = time.perf_counter()
    try:
        settle(window, timeout_s=timeout_s)
    except TimeoutError:
        return None
    return time.perf_counter() - t


def open_in(window: Any, path: str | Path, timeout_s: float = 600.0,
            settle_s: float | None = None) -> float | None:
    """Open a dataset in the window (as File > Open does) and wait until it is drawn.

    With ``settle_s``, give up waiting for the view to settle after that long
    and return None (else the seconds the settling took).
    """
    opened: list[Any] = []
    window.session.opened.connect(opened.append)
    window.session.open_failed.connect(lambda msg: opened.append(RuntimeError(msg)))
    window.open_path(path)
    wait_until(lambda: bool(opened), timeout_s, f"{path} to open")
    if isinstance(opened[0], Exception):
        raise opened[0]
    if settle_s is not None:
        return try_settle(window, settle_s)
    settle(window, timeout_s=timeout_s)
    return 0.0


def scene_canvas(viewer: Any) -> Any:
    """The vispy SceneCanvas of a napari viewer."""
    return viewer.window._qt_viewer.canvas._scene_canvas


# =============================================================================
# 1. merge latency
# =============================================================================
def plan_merges(ds: Any, n: int, seed: int, used: set[int]) -> list[dict[str, Any]]:
    """``n`` merges of disjoint bodies whose rewritten s0 blocks grow geometrically.

    Each merge: a target, sources (bodies merged into it), and ``p``, a voxel of
    the first source near its centre in its densest block (where the view goes).
    """
    import numpy as np

    from app.kernels import label_counts

    level_grid = [-(-s // b) for s, b in zip(ds.shape, ds.block_size, strict=True)]
    blocks: dict[int, dict[tuple[int, int, int], int]] = {}
    by_block: dict[tuple[int, int, int], list[int]] = {}
    for z in range(level_grid[0]):
        for y in range(level_grid[1]):
            for x in range(level_grid[2]):
                labels, counts = label_counts(ds.read_block("labels", 0, (z, y, x)))
                for lab, cnt in zip(labels.tolist(), counts.tolist(), strict=True):
                    if lab and lab not in used:
                        blocks.setdefault(lab, {})[(z, y, x)] = cnt
                        by_block.setdefault((z, y, x), []).append(lab)
    total = level_grid[0] * level_grid[1] * level_grid[2]
    rng = np.random.default_rng(seed)
    sizes = np.unique(np.round(np.geomspace(1, max(2, 0.85 * total), n)).astype(int))
    while len(sizes) < n:  # small grids: repeat sizes
        sizes = np.sort(np.concatenate([sizes, sizes[: n - len(sizes)]]))
    sizes = rng.permutation(sizes[:n])
    plans = []
    for want in sizes.tolist():
        free = [lab for lab in blocks if lab not in used]
        order = [free[i] for i in rng.permutation(len(free))]
        order.sort(key=lambda lab: abs(len(blocks[lab]) - want) if want < 4 else 0)
        union: set[tuple[int, int, int]] = set()
        sources: list[int] = []
        for lab in order:
            new = union | blocks[lab].keys()
            if len(new) <= max(want * 1.3, want + 1):
                sources.append(lab)
                union = new
            if len(union) >= max(1, 0.8 * want):
                break
        if not sources:
            continue
        first = sources[0]
        densest = max(blocks[first], key=lambda c: blocks[first][c])
        neighbours: dict[int, int] = {}
        for c in blocks[first]:
            for lab in by_block[c]:
                if lab not in used and lab not in sources:
                    neighbours[lab] = neighbours.get(lab, 0) + blocks[first][c]
        if not neighbours:
            continue
        target = max(neighbours, key=lambda lab: neighbours[lab])
        block = ds.read_block("labels", 0, densest)
        where = np.argwhere(block == np.uint64(first))
        centre = where.mean(axis=0)
        near = where[np.argmin(((where - centre) ** 2).sum(axis=1))]
        origin = [c * b for c, b in zip(densest, ds.block_size, strict=True)]
        p = [int(o + v) for o, v in zip(origin, near, strict=True)]
        body = union | blocks[target].keys()
        plans.append({
            "target": int(target),
            "sources": [int(s) for s in sources],
            "p": p,
            "p_label": int(first),
            "source_blocks": len(union),
            "body_blocks": len(body),
            "body_voxels": int(sum(sum(blocks[lab].values()) for lab in [target, *sources])),
        })
        used.update([target, *sources])
    return plans


class MergeProbe:
    """Times one merge from the action's trigger to the view showing it.

    Besides "data" and "drawn", it stamps the stages in between (ms from the
    trigger): ``job`` the pool thread enters ``Dataset.merge``; ``engine_first``
    the engine stages its first s0 block (engine thread, psygnal); ``engine_block``
    the engine stages the block holding ``p`` (engine thread, psygnal);
    ``gui_block`` the Session re-emits that on the GUI thread; ``refresh`` the
    start of the segmentation layer's refresh that showed the change;
    ``refreshed`` the end of that refresh round (every dirty layer);
    ``s0_durable`` / ``complete`` the mutation_started / mutation_completed
    signals on the GUI thread;
    ``returned`` the edit's result was delivered.
    """

    def __init__(self, window: Any, plan: dict[str, Any],
                 checkpoints: list[tuple[float, float, int]]) -> None:
        from qtpy.QtCore import QTimer

        self.window = window
        self.plan = plan
        self.checkpoints = checkpoints
        self.ds = window.session.dataset
        self.layers = window.widget.layers
        self.seg = self.layers.segmentation
        self.p = tuple(float(v) for v in plan["p"])
        bs = self.ds.block_size
        self.p_block = tuple(int(v) // b for v, b in zip(plan["p"], bs, strict=True))
        self.t: dict[str, float] = {}
        self.ticks: list[float] = []
        self.failed = ""
        self.refresh_start: float | None = None
        self.refreshes0 = self.layers.refreshes
        self.poll = QTimer()
        self.poll.setInterval(2)
        self.poll.timeout.connect(self.on_tick)
        self.canvas = scene_canvas(window.viewer)

    def stamp(self, key: str) -> None:
        self.t.setdefault(key, time.perf_counter())

    def on_tick(self) -> None:
        self.ticks.append(time.perf_counter())
        self.check()

    def check(self, event: Any = None) -> None:
        if "data" in self.t:
            return
        value = self.seg.get_value(self.p)
        if value is not None and value[1] is not None and int(value[1]) == self.plan["target"]:
            self.t["data"] = time.perf_counter()
            self.data_level = int(value[0])
            if event is not None and self.refresh_start is not None:  # from set_data
                self.t["refresh"] = self.refresh_start

    def on_draw(self, _event: Any) -> None:
        if "data" not in self.t:
            self.check()
        if "data" in self.t:
            self.stamp("drawn")

    def has_p(self, scale: int, coords: list[Any]) -> bool:
        return scale == 0 and self.p_block in [tuple(int(v) for v in c) for c in coords]

    def on_engine_blocks(self, scale: int, coords: list[Any]) -> None:  # engine thread
        if scale == 0 and coords:
            self.stamp("engine_first")
        if self.has_p(scale, coords):
            self.stamp("engine_block")

    def on_gui_blocks(self, scale: int, coords: list[Any]) -> None:
        if self.has_p(scale, coords):
            self.stamp("gui_block")

    def on_refresh(self) -> None:  # after the layers' (throttled) refresh of every layer
        if "data" in self.t:
            self.stamp("refreshed")

    def on_failed(self, _action: str, message: str) -> None:
        self.failed = message

    def run(self, timeout_s: float = 300.0) -> dict[str, Any]:
        s, ds = self.window.session, self.ds
        merge = self.window.widget.commands["merge"]
        if not merge.isEnabled():
            raise RuntimeError("the merge action is disabled")
        model_merge = ds.merge

        def timed_merge(target: int, labels: Any) -> int:  # runs on the pool thread
            self.stamp("job")
            return model_merge(target, labels)

        ds.merge = timed_merge
        seg_refresh = self.seg.refresh

        def timed_refresh(*args: Any, **kwargs: Any) -> Any:  # the segmentation layer's
            self.refresh_start = time.perf_counter()
            return seg_refresh(*args, **kwargs)

        self.seg.refresh = timed_refresh
        connections = [
            (self.seg.events.set_data, self.check), (self.canvas.events.draw, self.on_draw),
            (ds.signals.blocks_changed, self.on_engine_blocks),
            (s.blocks_changed, self.on_gui_blocks), (self.layers._timer.timeout, self.on_refresh),
            (s.mutation_started, lambda *_: self.stamp("s0_durable")),
            (s.mutation_completed, lambda *_: self.stamp("complete")),
            (s.edit_finished, lambda *_: self.stamp("returned")),
            (s.edit_failed, self.on_failed),
        ]
        for signal, slot in connections:
            signal.connect(slot)
        self.poll.start()
        t0 = time.perf_counter()
        merge.trigger()  # what the M key and the Merge button do
        t_return = time.perf_counter()
        try:
            wait_until(lambda: bool(self.failed) or ("drawn" in self.t and "returned" in self.t),
                       timeout_s, "the merge to show")
        finally:
            self.poll.stop()
            for signal, slot in connections:
                signal.disconnect(slot)
            del ds.merge
            del self.seg.refresh
        if self.failed:
            raise RuntimeError(f"merge failed: {self.failed}")
        ticks = [t0, *[x for x in self.ticks if x <= self.t["drawn"]], self.t["drawn"]]
        gap = max(b - a for a, b in itertools.pairwise(ticks))
        # checkpoints (they hold the engine's gate exclusively) before p's block was staged
        end = self.t.get("engine_block", self.t["data"])
        waited = sum(max(0.0, min(b, end) - max(a, t0)) for a, b, _n in self.checkpoints)
        return {**self.plan, "ms": {k: (v - t0) * 1000 for k, v in self.t.items()},
                "trigger_ms": (t_return - t0) * 1000, "max_gui_gap_ms": gap * 1000,
                "checkpoint_ms": waited * 1000,
                "data_level": self.data_level,
                "refreshes": self.layers.refreshes - self.refreshes0}


def child_merge(path: str, n: int, seed: int, view: str) -> None:
    import numpy as np

    from app.ui.compat import camera

    window = make_window()
    open_in(window, path)
    viewer = window.viewer
    ds = window.session.dataset
    checkpoints: list[tuple[float, float, int]] = []
    model_checkpoint = ds.checkpoint

    def timed_checkpoint() -> int:  # the dataset's checkpoint thread calls it
        t = time.perf_counter()
        n = model_checkpoint()
        checkpoints.append((t, time.perf_counter(), n))
        return int(n)

    ds.checkpoint = timed_checkpoint
    used: set[int] = set()
    t = time.perf_counter()
    plans = plan_merges(ds, n + 1, seed, used)
    plan_s = time.perf_counter() - t
    # the first merge of the process (kernels loaded from the Numba cache, journal
    # warm-up): the smallest one, reported apart
    plans.sort(key=lambda p: p["source_blocks"])
    first, series = plans[0], plans[1:]
    rng = np.random.default_rng(seed)
    series = [series[i] for i in rng.permutation(len(series))]
    cam = camera(viewer)
    viewer.reset_view()
    settle(window)
    fit_zoom = float(cam.zoom)
    results = []
    for i, plan in enumerate([first, *series]):
        p = plan["p"]
        viewer.dims.set_point(0, p[0])
        if view == "zoom":
            # napari keeps the slice it has while the view stays inside it at the same
            # level: go through a coarser level first, as a user jumping there would
            cam.zoom = fit_zoom * 0.3
            settle(window)
            cam.center = (float(p[0]), float(p[1]), float(p[2]))
            cam.zoom = fit_zoom * 4
        window.widget.selection.set([plan["target"], *plan["sources"]])
        settle(window, quiet_ms=PRE_MERGE_QUIET_MS)
        value = window.widget.layers.segmentation.get_value(tuple(float(v) for v in p))
        assert value is not None and int(value[1]) == plan["p_label"], (value, plan)
        visible = window.widget.layers.visible_blocks()
        assert visible is not None
        res = MergeProbe(window, plan, checkpoints).run()
        res["visible_blocks"] = len(visible[1])
        res["first"] = i == 0
        results.append(res)
        settle(window)
        print(f"merge {i}: {plan['source_blocks']} blocks, data {res['ms'].get('data', -1):.0f} ms,"
              f" drawn {res['ms'].get('drawn', -1):.0f} ms, complete "
              f"{res['ms'].get('complete', -1):.0f} ms", file=sys.stderr, flush=True)
    emit({"shape": list(ds.shape), "block_size": list(ds.block_size), "view": view,
          "plan_s": plan_s, "window": list(WINDOW_SIZE), "merges": results})
    window.shutdown()
    viewer.close()


# =============================================================================
# 2. cold start
# =============================================================================
def child_start_napari(with_layers: bool) -> None:
    """``import napari; v = napari.Viewer()`` until the canvas' first draw event;
    ``with_layers``: and a multiscale image and labels layer (small, in memory)
    added first, as the first layers of a napari session (what they cost napari
    is the baseline of segmend's own start)."""
    t_main = time.perf_counter()
    import napari

    t_import = time.perf_counter()
    v = napari.Viewer()
    t_viewer = time.perf_counter()
    if with_layers:
        import numpy as np

        rng = np.random.default_rng(0)
        image = rng.integers(0, 255, (128, 128, 128), dtype=np.uint8)
        labels = np.kron(rng.integers(1, 500, (16, 16, 16)), np.ones((8, 8, 8), np.int64))
        labels = labels.astype(np.uint64)
        v.add_image([image, image[::2, ::2, ::2]], multiscale=True, name="grayscale")
        v.add_labels([labels, labels[::2, ::2, ::2]], multiscale=True, name="segmentation")
    from qtpy.QtCore import QTimer

    times: dict[str, float] = {}

    def on_draw(_event: Any) -> None:
        if "first_draw" not in times:
            times["first_draw"] = time.perf_counter()
            QTimer.singleShot(0, v.close)

    scene_canvas(v).events.draw.connect(on_draw)
    QTimer.singleShot(120_000, v.close)
    napari.run()
    emit({"main": t_main, "import": t_import, "viewer": t_viewer, **times})


class StartProbe:
    """Watches the draws of a segmend window from its creation on."""

    def __init__(self, window: Any) -> None:
        from qtpy.QtCore import QTimer

        self.window = window
        self.t: dict[str, float] = {"window": time.perf_counter()}
        self.canvas = scene_canvas(window.viewer)
        self.canvas.events.draw.connect(self.on_draw)
        window.session.opened.connect(self.on_opened)
        window.session.open_failed.connect(self.on_failed)
        QTimer.singleShot(180_000, self.finish)

    def on_failed(self, message: str) -> None:
        self.t["failed"] = time.perf_counter()
        print(message, file=sys.stderr)
        self.finish()

    def on_opened(self, _ds: Any) -> None:
        self.t.setdefault("opened", time.perf_counter())

    def on_draw(self, _event: Any) -> None:
        now = time.perf_counter()
        self.t.setdefault("first_draw", now)
        layers = self.window.widget.layers
        seg = layers.segmentation
        if seg is None:
            return
        self.t.setdefault("first_draw_with_layers", now)
        raw = seg._slice.image.raw
        if "first_data" not in self.t and raw is not None and raw.any():
            self.t["first_data"] = now
        if "first_data" in self.t and "complete" not in self.t and layers.is_settled() \
                and not layers.loader.busy:
            self.t["complete"] = now
            from qtpy.QtCore import QTimer

            QTimer.singleShot(0, self.finish)

    def finish(self) -> None:
        if "done" in self.t:
            return
        self.t["done"] = time.perf_counter()
        emit(self.t)
        if PROFILE:
            PROFILE[0].disable()
            PROFILE[0].dump_stats(os.environ["SEGMEND_BENCH_PROFILE"])
        self.window.qt_window.close()


PROFILE: list[Any] = []
"""cProfile of the GUI thread of ``start-segmend`` (``SEGMEND_BENCH_PROFILE=OUT.prof``)."""


def child_start_segmend(demo: str) -> None:
    """``segmend demo --out DEMO`` (the real CLI) with a probe on the window it makes."""
    t_main = time.perf_counter()
    import app.ui.main as ui_main

    run_app = ui_main.run_app

    def probed_run_app(file: str | None = None, **kwargs: Any) -> int:
        ui_main.skip_pyside_source_scan()  # as run_app does before it imports Qt modules
        import app.ui.main_window as mw

        base = mw.SegmendWindow

        class ProbedWindow(base):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any, **kw: Any) -> None:
                super().__init__(*args, **kw)
                self._bench_probe = StartProbe(self)
                self._bench_probe.t["main"] = t_main

        mw.SegmendWindow = ProbedWindow  # type: ignore[misc]
        try:
            return run_app(file, **kwargs)
        finally:
            mw.SegmendWindow = base  # type: ignore[misc]

    ui_main.run_app = probed_run_app
    if os.environ.get("SEGMEND_BENCH_PROFILE"):
        import cProfile

        PROFILE.append(cProfile.Profile())
        PROFILE[0].enable()
    from app.launcher import main

    main(["demo", "--out", demo])


# =============================================================================
# 3. memory while browsing
# =============================================================================
def browse_script(viewer: Any, shape: tuple[int, int, int]) -> Any:
    """A generator of UI actions, one per tick: z scrolls and jumps, zooms, pans."""
    import numpy as np

    from app.ui.compat import camera

    cam = camera(viewer)
    rng = np.random.default_rng(3)
    depth, height, width = shape
    z = depth // 2
    viewer.reset_view()
    fit = float(cam.zoom)

    def set_z(value: int) -> None:
        nonlocal z
        z = int(np.clip(value, 0, depth - 1))
        viewer.dims.set_point(0, z)

    def centre(y: float, x: float) -> None:
        cam.center = (float(z), float(y), float(x))

    while True:
        for _ in range(40):  # scroll through z
            set_z((z + 8) % depth)
            yield "z"
        for _ in range(7):  # zoom in at a random place
            if _ == 0:
                centre(rng.uniform(0, height), rng.uniform(0, width))
            cam.zoom = float(cam.zoom) * 1.45
            yield "zoom in"
        cy, cx = (float(v) for v in cam.center[-2:])
        ty, tx = rng.uniform(0, height), rng.uniform(0, width)
        for k in range(1, 31):  # pan across the volume at high zoom
            centre(cy + (ty - cy) * k / 30, cx + (tx - cx) * k / 30)
            yield "pan"
        for _ in range(20):  # scroll slowly at high zoom
            set_z(z + 2)
            yield "z"
        for _ in range(9):  # zoom back out, past the whole volume (coarser levels)
            cam.zoom = max(0.4 * fit, float(cam.zoom) / 1.45)
            yield "zoom out"
        for _ in range(10):  # jumps to other planes
            set_z(int(rng.integers(0, depth)))
            yield "z jump"
        for k in range(20):  # pan at 2x
            if k == 0:
                cam.zoom = fit * 2
            centre(height * (0.25 + 0.5 * k / 19), width * (0.75 - 0.5 * k / 19))
            yield "pan"


def child_browse(path: str, seconds: float, tick_ms: int) -> None:
    import threading

    import numpy as np
    import psutil
    from qtpy.QtCore import QTimer

    proc = psutil.Process()
    samples: list[tuple[float, int, str]] = []
    phase = ["start"]
    stop = threading.Event()

    def sampler() -> None:
        while not stop.is_set():
            samples.append((time.perf_counter(), proc.memory_info().rss, phase[0]))
            stop.wait(0.1)

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    marks: dict[str, Any] = {"imports": rss_breakdown()}
    window = make_window()
    settle(window)
    pump(300)
    marks["window"] = rss_breakdown()
    phase[0] = "open"
    t = time.perf_counter()
    open_in(window, path, settle_s=0)
    open_s = time.perf_counter() - t
    ds = window.session.dataset
    cache = ds.store.cache
    viewer = window.viewer
    layers = window.widget.layers
    # the first view, left alone for a while: does it settle (every visible block
    # loaded and drawn)?  If the blocks in view do not fit in the block cache it
    # never does: refreshes evict what the previous one loaded
    refreshes0 = layers.refreshes
    t = time.perf_counter()
    first_settle_s = try_settle(window, 30.0)
    first_view = {"settled_s": first_settle_s, "level": int(layers.segmentation.data_level),
                  "blocks": len(layers.visible_blocks()[1]),
                  "refreshes_per_s": (layers.refreshes - refreshes0) / (time.perf_counter() - t),
                  "cache": cache.nbytes}
    marks["opened"] = rss_breakdown()
    draws = [0]
    scene_canvas(viewer).events.draw.connect(lambda _e: draws.__setitem__(0, draws[0] + 1))
    loads = [0]
    layers.loader.loaded.connect(lambda *_: loads.__setitem__(0, loads[0] + 1))
    script = browse_script(viewer, ds.shape)
    actions: dict[str, int] = {}
    peak: dict[str, Any] = {"rss": 0, "cache": 0, "detail": {}}
    levels: set[int] = set()

    def tick() -> None:
        kind = next(script)
        actions[kind] = actions.get(kind, 0) + 1
        levels.add(int(layers.segmentation.data_level))
        detail = rss_breakdown()
        if detail["VmRSS"] > peak["rss"]:
            peak.update(rss=detail["VmRSS"], cache=cache.nbytes, detail=detail)

    phase[0] = "browse"
    timer = QTimer()
    timer.setInterval(tick_ms)
    timer.timeout.connect(tick)
    t_browse = time.perf_counter()
    draws0 = draws[0]
    timer.start()
    pump(int(seconds * 1000))
    timer.stop()
    browse_s = time.perf_counter() - t_browse
    n_draws = draws[0] - draws0
    phase[0] = "settle"
    refreshes0 = layers.refreshes
    t = time.perf_counter()
    final_settle_s = try_settle(window, 30.0)
    final_view = {"settled_s": final_settle_s, "level": int(layers.segmentation.data_level),
                  "blocks": len(layers.visible_blocks()[1]),
                  "refreshes_per_s": (layers.refreshes - refreshes0) / (time.perf_counter() - t)}
    pump(2000)
    marks["final"] = rss_breakdown()
    final_cache = cache.nbytes
    stop.set()
    thread.join()
    browse = [s[1] for s in samples if s[2] == "browse"]
    emit({
        "shape": list(ds.shape), "open_s": open_s, "browse_s": browse_s, "tick_ms": tick_ms,
        "ticks": sum(actions.values()), "actions": actions, "draws": n_draws,
        "loads": loads[0], "levels": sorted(levels),
        "peak_browse_rss": max(browse), "peak_sampled_rss": max(s[1] for s in samples),
        "final_rss": marks["final"]["VmRSS"], "hwm": marks["final"]["VmHWM"],
        "peak_detail": peak["detail"], "peak_cache": peak["cache"],
        "final_cache": final_cache, "cache_capacity": cache.capacity_bytes, "marks": marks,
        "first_view": first_view, "final_view": final_view,
        "block_voxels": int(np.prod(ds.block_size)),
        "series": [(round(s[0] - t_browse, 2), s[1], s[2]) for s in samples[::5]],
    })
    window.shutdown()
    viewer.close()


# =============================================================================
# data preparation (children too: their memory is not the app's)
# =============================================================================
def child_build_demo(out: str, mode: str) -> None:
    """The demo at ``out``: ``mode`` "labelmap" (what ``segmend demo`` opens) or "voxel"."""
    from app.model.dataset import open_dataset
    from app.model.demo import build_demo

    t = time.perf_counter()
    build_demo(out, labelmap=mode == "labelmap")
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    open_dataset(out, "r+").close()  # the label index, built on the first writable open
    emit({"build_s": build_s, "index_s": time.perf_counter() - t})


def child_build_synth(out: str, size: int, seeds: int, image: bool, tmp: str) -> None:
    """A Voronoi uint64 label pyramid (+ uint8 grayscale) from ``.npy`` sources in ``tmp``."""
    import numpy as np

    from app.model.bulk.build import build_pyramid
    from app.model.dataset import open_dataset
    from benchmarks.synthetic import voronoi_labels

    shape = (size, size, size)
    lab_npy, img_npy = Path(tmp) / f"labels-{size}.npy", Path(tmp) / f"image-{size}.npy"
    try:
        t = time.perf_counter()
        labels = voronoi_labels(shape, n_seeds=seeds, seed=7)
        # voronoi_labels puts half the labels above 2**63; PySide6 turns such ints into -1
        # in the app's Signal(list)/Signal(dict) payloads (see the report), so keep them
        # below 2**63 (still above 2**32, still distinct)
        labels &= np.uint64(2**63 - 1)
        np.save(lab_npy, labels)
        if image:  # grayscale: bodies in flat tones, darker boundaries
            img = np.lib.format.open_memmap(img_npy, mode="w+", dtype=np.uint8, shape=shape)
            for z0 in range(0, size, 64):
                slab = labels[z0 : z0 + 64]
                tone = ((slab * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(57)).astype(np.uint8)
                edge = np.zeros(slab.shape, bool)
                edge[:, 1:, :] |= slab[:, 1:, :] != slab[:, :-1, :]
                edge[:, :, 1:] |= slab[:, :, 1:] != slab[:, :, :-1]
                img[z0 : z0 + 64] = np.where(edge, 20, 90 + tone)
            img.flush()
            del img, slab, tone, edge
        del labels  # (no view of it may survive: build_pyramid maps the .npy files)
        gen_s = time.perf_counter() - t
        t = time.perf_counter()
        build_pyramid(lab_npy, out, image=img_npy if image else None)
        build_s = time.perf_counter() - t
    finally:
        lab_npy.unlink(missing_ok=True)
        img_npy.unlink(missing_ok=True)
    t = time.perf_counter()
    open_dataset(out, "r+").close()
    emit({"gen_s": gen_s, "build_s": build_s, "index_s": time.perf_counter() - t,
          "file_bytes": Path(out).stat().st_size})


def child_main(argv: list[str]) -> None:
    kind, *rest = argv
    if kind == "merge":
        child_merge(rest[0], int(rest[1]), int(rest[2]), rest[3])
    elif kind in ("start-napari", "start-napari-layers"):
        child_start_napari(kind == "start-napari-layers")
    elif kind == "start-segmend":
        child_start_segmend(rest[0])
    elif kind == "browse":
        child_browse(rest[0], float(rest[1]), int(rest[2]))
    elif kind == "build-demo":
        child_build_demo(rest[0], rest[1])
    elif kind == "build-synth":
        child_build_synth(rest[0], int(rest[1]), int(rest[2]), rest[3] == "1", rest[4])
    else:
        raise SystemExit(f"unknown child {kind}")


# =============================================================================
# the parent
# =============================================================================
class Runner:
    """Runs children with a common environment and collects their results."""

    def __init__(self, workdir: Path, verbose: bool) -> None:
        self.workdir = workdir
        self.verbose = verbose
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
        # napari's and segmend's settings (QSettings) go to the work directory
        self.env["XDG_CONFIG_HOME"] = str(workdir / "config")
        self.env["XDG_DATA_HOME"] = str(workdir / "data")
        self.env.setdefault("PYTHONWARNINGS", "ignore")
        # bytecode cached as in an installed app (each child's unmeasured warm-up writes it)
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.commands: list[str] = []
        self.loads: list[float] = []

    def command(self, kind: str, *args: Any) -> list[str]:
        return [sys.executable, "-m", "benchmarks.bench_app", "_child", kind, *map(str, args)]

    def run(self, kind: str, *args: Any, timeout: float = 3600) -> tuple[dict[str, Any], float]:
        cmd = self.command(kind, *args)
        shown = " ".join(cmd[1:]).replace(str(self.workdir), "$WORK")
        if shown not in self.commands:
            self.commands.append(shown)
        print(f"  $ python {shown}", file=sys.stderr, flush=True)
        t_spawn = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
        if self.verbose or proc.returncode or not lines:
            sys.stderr.write(proc.stderr[-6000:])
        if proc.returncode or not lines:
            raise RuntimeError(f"child {kind} failed (exit {proc.returncode})")
        result = json.loads(lines[-1][len(MARK):])
        self.loads.append(os.getloadavg()[0])
        return result, t_spawn


def pct(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q))


def bench_merge(r: Runner, demo: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    series = []
    print("merge latency: demo cube", file=sys.stderr)
    res, _ = r.run("merge", demo, args.merges, 1, "fit")
    series.append({"name": "demo cube, fit view", **res})
    size = args.merge_size
    synth = r.workdir / f"voronoi-{size}.h5"
    print(f"merge latency: building a {size}³ Voronoi pyramid", file=sys.stderr)
    built, _ = r.run("build-synth", synth, size, args.merge_seeds, 1, r.workdir)
    for view in ("fit", "zoom"):
        print(f"merge latency: {size}³, {view} view", file=sys.stderr)
        res, _ = r.run("merge", synth, args.merges, 2 if view == "fit" else 3, view)
        label = "fit view" if view == "fit" else "zoomed 4× on the body"
        series.append({"name": f"Voronoi {size}³ ({args.merge_seeds} bodies), {label}",
                       "build": built, **res})
    if not args.keep:
        shutil.rmtree(synth.with_name(synth.name + ".segmend"), ignore_errors=True)
        synth.unlink(missing_ok=True)
    return series


def bench_start(r: Runner, demo: Path, runs: int) -> dict[str, Any]:
    napari_runs: list[dict[str, float]] = []
    layers_runs: list[dict[str, float]] = []
    segmend_runs: list[dict[str, float]] = []
    kinds = (
        ("start-napari", napari_runs),
        ("start-napari-layers", layers_runs),
        ("start-segmend", segmend_runs),
    )
    for i in range(runs + 1):  # the first of each: warm-up, not counted
        for kind, out in kinds:
            args = (demo,) if kind == "start-segmend" else ()
            res, t_spawn = r.run(kind, *args, timeout=600)
            rel = {k: v - t_spawn for k, v in res.items() if isinstance(v, float)}
            if "failed" in res:
                raise RuntimeError("segmend could not open the demo")
            if i > 0:
                out.append(rel)
            print(f"    {kind}: " + ", ".join(f"{k} {v:.2f}" for k, v in rel.items()),
                  file=sys.stderr, flush=True)
    return {"napari": napari_runs, "napari_layers": layers_runs, "segmend": segmend_runs}


def bench_memory(r: Runner, args: argparse.Namespace) -> dict[str, Any]:
    size = args.browse_size
    need_disk = size**3 * 9 * 1.25 + 2 * GIB
    free_disk = shutil.disk_usage(r.workdir).free
    try:
        import psutil

        free_mem = psutil.virtual_memory().available
    except ImportError:
        free_mem = 1 << 62
    note = ""
    if size == 1024 and (free_disk < need_disk or free_mem < size**3 * 8 * 1.5):
        note = (f"1024³ needs ~{need_disk / GIB:.0f} GiB of disk and ~12 GiB of RAM to build "
                f"(free: {free_disk / GIB:.0f} GiB, {free_mem / GIB:.0f} GiB): used 768³")
        size = 768
        print(note, file=sys.stderr)
    path = r.workdir / f"browse-{size}.h5"
    print(f"memory: building a {size}³ pyramid (labels + grayscale)", file=sys.stderr)
    seeds = int(args.browse_seeds * (size / 512) ** 3)
    built, _ = r.run("build-synth", path, size, seeds, 1, r.workdir, timeout=7200)
    built["seeds"] = seeds
    print(f"memory: browsing for {args.browse_seconds:.0f} s", file=sys.stderr)
    try:
        res, _ = r.run("browse", path, args.browse_seconds, args.tick_ms, timeout=3600)
    finally:
        if not args.keep:
            shutil.rmtree(path.with_name(path.name + ".segmend"), ignore_errors=True)
            path.unlink(missing_ok=True)
    return {"size": size, "note": note, "build": built, **res}


# ------------------------------------------------------------------- report
def verdict(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def merge_rows(series: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    summary, detail = [], []
    for s in series:
        steady = [m for m in s["merges"] if not m["first"]]
        first = next(m for m in s["merges"] if m["first"])
        data = [m["ms"]["data"] for m in steady]
        drawn = [m["ms"]["drawn"] for m in steady]
        blocks = [m["source_blocks"] for m in steady]
        summary.append(
            f"| 1. merge visible ≤ {MERGE_TARGET_MS:.0f} ms | {s['name']}: n={len(steady)}, "
            f"{min(blocks)}–{max(blocks)} s0 blocks rewritten | data p50/p95/max "
            f"{pct(data, 50):.0f}/{pct(data, 95):.0f}/{max(data):.0f} ms; drawn "
            f"{pct(drawn, 50):.0f}/{pct(drawn, 95):.0f}/{max(drawn):.0f} ms; first merge of "
            f"the process ({first['source_blocks']} blocks): data {first['ms']['data']:.0f}, "
            f"drawn {first['ms']['drawn']:.0f} ms | {verdict(max(data) <= MERGE_TARGET_MS)} |")
        detail.append(f"\n**{s['name']}** (shape {s['shape']}, blocks {s['block_size']}, "
                      f"window {s['window'][0]}×{s['window'][1]})\n")
        detail.append("| s0 blocks rewritten | body blocks | body voxels | visible blocks | level "
                      "| job starts | first block staged | p's block staged | …on GUI thread "
                      "| refresh starts | **data** | refresh ends | **drawn** | s0 durable "
                      "| all levels | longest GUI stall | checkpoint overlap |")
        detail.append("|" + "---:|" * 17)
        for m in sorted(s["merges"], key=lambda m: (not m["first"], m["source_blocks"])):
            ms = m["ms"]
            tag = " (first)" if m["first"] else ""
            cells = [f"{ms[k]:.0f}" if k in ms else "–" for k in (
                "job", "engine_first", "engine_block", "gui_block", "refresh", "data",
                "refreshed", "drawn", "s0_durable", "complete")]
            detail.append(
                f"| {m['source_blocks']}{tag} | {m['body_blocks']} | {m['body_voxels']:,} | "
                f"{m['visible_blocks']} | {m['data_level']} | " + " | ".join(cells)
                + f" | {m['max_gui_gap_ms']:.0f} | {m['checkpoint_ms']:.0f} |")
        detail.append("\n(ms after the merge action was triggered)")
    return summary, detail


def start_rows(start: dict[str, Any]) -> tuple[list[str], list[str]]:
    def med(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    nap, seg = start["napari"], start["segmend"]
    a = med(nap, "first_draw")
    b = med(seg, "first_data")
    c = med(seg, "complete")
    with_layers = med(start["napari_layers"], "first_draw")
    summary = [
        f"| 2. cold start ≤ napari + {START_SLACK_S:.0f} s | (a) napari.Viewer() to first draw, "
        f"median of {len(nap)} | {a:.2f} s | |",
        f"| | (b) `segmend demo` to first frame with data, median of {len(seg)} | {b:.2f} s "
        f"(b − a = {b - a:+.2f} s); every visible block drawn: {c:.2f} s ({c - a:+.2f} s) "
        f"| {verdict(b - a <= START_SLACK_S)} |",
        f"| | (c) napari.Viewer() with its first image and labels layers (small, in memory) "
        f"to first draw, median of {len(start['napari_layers'])} | "
        f"{with_layers:.2f} s (b − c = {b - with_layers:+.2f} s: segmend's own share) | |",
    ]
    keys_n = ["main", "import", "viewer", "first_draw"]
    keys_s = ["main", "window", "first_draw", "opened", "first_draw_with_layers", "first_data",
              "complete"]
    detail = ["\n**cold start, medians (s from spawn)**\n",
              "| process | " + " | ".join(keys_s) + " |",
              "|---|" + "---:|" * len(keys_s)]
    detail.append("| napari | " + " | ".join(
        f"{med(nap, k):.2f}" if k in keys_n else "" for k in keys_s) + " |")
    detail.append("| segmend demo | " + " | ".join(f"{med(seg, k):.2f}" for k in keys_s) + " |")
    detail.append("\n(napari: `import` = after `import napari`, `window` column holds "
                  f"`napari.Viewer()` returned at {med(nap, 'viewer'):.2f} s)")
    detail.append("\nruns (s, napari first_draw / segmend first_data / complete): "
                  + "; ".join(f"{n['first_draw']:.2f} / {s['first_data']:.2f} / "
                              f"{s['complete']:.2f}" for n, s in zip(nap, seg, strict=True)))
    return summary, detail


def memory_rows(mem: dict[str, Any]) -> tuple[list[str], list[str]]:
    pd = mem["peak_detail"]
    fv = mem["first_view"]
    settled = ("settled" if fv["settled_s"] is not None else
               f"**never settled** in 30 s ({fv['refreshes_per_s']:.0f} refreshes/s)")
    summary = [
        f"| 3. RSS ≤ 1.5 GiB browsing | {mem['size']}³ labels + grayscale, "
        f"{mem['browse_s']:.0f} s of scripted browsing ({mem['ticks']} actions) | peak "
        f"{mem['peak_browse_rss'] / GIB:.2f} GiB, final {mem['final_rss'] / GIB:.2f} GiB "
        f"(process high-water mark {mem['hwm'] / GIB:.2f} GiB); the opening view (level "
        f"{fv['level']}, {fv['blocks']} blocks per layer) {settled} "
        f"| {verdict(mem['peak_browse_rss'] <= RSS_TARGET)} |"]
    marks = mem["marks"]
    detail = [f"\n**memory, {mem['size']}³** {mem['note']}\n",
              "| moment | RSS | anon | file | decoded-block cache |", "|---|---:|---:|---:|---:|"]
    for name, label in (("imports", "after imports"), ("window", "window shown"),
                        ("opened", "opened, first view")):
        m = marks[name]
        cache = f"{fv['cache'] / 2**20:.0f} MiB" if name == "opened" else ""
        detail.append(f"| {label} | {m['VmRSS'] / 2**20:.0f} MiB | {m['RssAnon'] / 2**20:.0f} | "
                      f"{m['RssFile'] / 2**20:.0f} | {cache} |")
    detail.append(f"| peak while browsing | {pd['VmRSS'] / 2**20:.0f} MiB | "
                  f"{pd['RssAnon'] / 2**20:.0f} | {pd['RssFile'] / 2**20:.0f} | "
                  f"{mem['peak_cache'] / 2**20:.0f} MiB of {mem['cache_capacity'] / 2**20:.0f} |")
    m = marks["final"]
    detail.append(f"| final | {m['VmRSS'] / 2**20:.0f} MiB | "
                  f"{m['RssAnon'] / 2**20:.0f} | {m['RssFile'] / 2**20:.0f} | "
                  f"{mem['final_cache'] / 2**20:.0f} MiB |")
    lv = mem["final_view"]
    detail.append(f"\nbrowsing: {mem['actions']}, {mem['draws']} frames drawn "
                  f"({mem['draws'] / mem['browse_s']:.1f}/s), {mem['loads']} block batches "
                  f"loaded, levels shown {mem['levels']}; open took {mem['open_s']:.1f} s. "
                  f"Opening view: level {fv['level']}, {fv['blocks']} blocks per layer, settled: "
                  f"{fv['settled_s'] is not None}, {fv['refreshes_per_s']:.1f} refreshes/s. "
                  f"Last view: level {lv['level']}, {lv['blocks']} blocks, settled: "
                  f"{lv['settled_s'] is not None}. Build: {mem['build']['seeds']} bodies, "
                  f"{mem['build']['gen_s']:.0f} s to generate, "
                  f"{mem['build']['build_s']:.0f} s build_pyramid, "
                  f"{mem['build']['index_s']:.0f} s label index, "
                  f"{mem['build']['file_bytes'] / GIB:.2f} GiB file")
    return summary, detail


def git_describe() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "app"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"
    return f"commit {head}" + (" (app/ modified)" if dirty else "")


def app_tree_hash() -> str:
    """A hash of the app's sources as they are on disk now."""
    import hashlib

    h = hashlib.sha256()
    for path in sorted((REPO / "app").rglob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()


def start_xvfb() -> tuple[subprocess.Popen[bytes], str]:
    for n in range(77, 120):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            proc = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "1600x1200x24"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(100):
                if Path(f"/tmp/.X11-unix/X{n}").exists():
                    return proc, f":{n}"
                time.sleep(0.05)
            proc.kill()
    raise RuntimeError("cannot start Xvfb")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="start,merge,memory",
                        help="comma-separated subset of start, merge, memory")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and few runs (a smoke test, not the targets)")
    parser.add_argument("--merges", type=int, default=12, help="merges per series (+1 first)")
    parser.add_argument("--merge-size", type=int, default=512)
    parser.add_argument("--merge-seeds", type=int, default=400)
    parser.add_argument("--start-runs", type=int, default=5)
    parser.add_argument("--browse-size", type=int, default=1024)
    parser.add_argument("--browse-seeds", type=int, default=1000,
                        help="bodies per 512³ of the browsed volume")
    parser.add_argument("--browse-seconds", type=float, default=60.0)
    parser.add_argument("--tick-ms", type=int, default=100, help="one browse action per tick")
    parser.add_argument("--workdir", type=Path, help="default: a new directory under /tmp")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--xvfb", action="store_true", help="run on a private Xvfb display")
    parser.add_argument("-v", "--verbose", action="store_true", help="show children's stderr")
    args = parser.parse_args()
    if args.quick:
        args.merge_size, args.merges, args.start_runs = 256, 10, 2
        args.browse_size, args.browse_seconds = 384, 20.0
    only = set(args.only.split(","))
    xvfb = None
    if args.xvfb:
        xvfb, display = start_xvfb()
        os.environ["DISPLAY"] = display
        os.environ.pop("WAYLAND_DISPLAY", None)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        raise SystemExit("no display: run under Xvfb (or pass --xvfb)")
    if os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        raise SystemExit("QT_QPA_PLATFORM=offscreen has no OpenGL for napari: unset it")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="segmend-bench-app-", dir="/tmp"))
    workdir.mkdir(parents=True, exist_ok=True)
    r = Runner(workdir, args.verbose)
    code_at_start = git_describe()
    tree_at_start = app_tree_hash()
    summary: list[str] = []
    detail: list[str] = []
    try:
        demo_start, demo_merge = workdir / "demo.h5", workdir / "demo-merge.h5"
        if only & {"start", "merge"}:
            print("building the demo", file=sys.stderr)
            r.run("build-demo", demo_start, "labelmap")  # (what `segmend demo` opens)
            r.run("build-demo", demo_merge, "voxel")
        if "start" in only:
            print("cold start", file=sys.stderr)
            s, d = start_rows(bench_start(r, demo_start, args.start_runs))
            summary += s
            detail += d
        if "merge" in only:
            s, d = merge_rows(bench_merge(r, demo_merge, args))
            summary += s
            detail += d
        if "memory" in only:
            s, d = memory_rows(bench_memory(r, args))
            summary += s
            detail += d
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait()
    code = git_describe()
    if app_tree_hash() != tree_at_start:
        code = f"{code_at_start} → {code} (**app/ changed during the run**)"
    elif code != code_at_start:
        code = f"{code_at_start} → {code} (app/ unchanged)"
    print(f"\n## segmend desktop app: {code}, {os.cpu_count()} cores, "
          f"DISPLAY={os.environ['DISPLAY']}, load average during the runs "
          f"{min(r.loads, default=0):.1f}–{max(r.loads, default=0):.1f}\n")
    print("| target | measurement | result | verdict |")
    print("|---|---|---|---|")
    print("\n".join(summary))
    print("\n".join(detail))
    print("\ncommands ($WORK = the work directory):\n")
    print("\n".join(f"    python {c}" for c in r.commands))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child_main(sys.argv[2:])
    else:
        main()
