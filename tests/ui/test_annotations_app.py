"""The segmend window with annotations: the synapses of the selected bodies (a Points
layer and their partner arrows) following the edits, bookmarks, the bodies' status,
name and synapse counts, *Next body* down the PostSyn ranking, and a protected
body's merge refused.

The dataset is a private copy of the voxel-mode demo with the shipped synthetic
synapses posted (1,056 elements): they land on whatever body holds their voxel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from napari.utils.colormaps.standardize_color import transform_color
from qtpy.QtCore import Qt
from qtpy.QtTest import QTest

from app.model.dataset import open_dataset
from app.ui.annotation_jobs import BOOKMARKS, SYNAPSES
from app.ui.body_status import PROTECTED_HINT
from app.ui.compat import camera
from app.ui.help import ShortcutsDialog, native_key
from app.ui.main_window import SegmendWindow
from app.ui.synapse_layer import POINTS_NAME, POSTSYN_COLOR, PRESYN_COLOR
from tests.ui.conftest import WAIT_MS, dataset, wait_idle

pytestmark = pytest.mark.gui

SYNAPSES_JSON = Path(__file__).resolve().parents[2] / "resources" / "fib-medulla-250-synapses.json"
Zyx = tuple[int, int, int]


@pytest.fixture
def syn(window: SegmendWindow, demo_path: Path, qtbot: Any) -> SegmendWindow:
    """The window with a private copy of the voxel-mode demo, its synapses posted."""
    with open_dataset(demo_path, "r+") as ds:
        assert ds.annotations.post(SYNAPSES, SYNAPSES_JSON.read_text()) == 1056
    with qtbot.waitSignal(window.session.opened, timeout=WAIT_MS):
        window.open_path(demo_path)
    wait_idle(qtbot, window)
    return window


def ranked(win: SegmendWindow, n: int) -> list[int]:
    """The ``n`` bodies with the most PostSyn elements, most first (the model's ranking)."""
    return [entry["Label"] for entry in dataset(win).annotations.top(SYNAPSES, n)]


def zyx(pos: list[int]) -> Zyx:
    """napari's (z, y, x) of a DVID position (x, y, z)."""
    x, y, z = pos
    return int(z), int(y), int(x)


def expected_points(win: SegmendWindow, *bodies: int) -> dict[Zyx, tuple[str, int]]:
    """Each element of ``bodies`` (read from the model): its voxel -> (kind, body)."""
    ds = dataset(win)
    return {zyx(e["Pos"]): (e["Kind"], body)
            for body in bodies for e in ds.annotations.body(SYNAPSES, body)}


def shown_points(win: SegmendWindow) -> dict[Zyx, tuple[str, int]]:
    """What the synapses layer shows: each point's voxel -> (kind, body)."""
    points = win.widget.synapses.points
    assert points is not None
    features = points.features
    return {tuple(int(v) for v in p): (str(k), int(b))  # type: ignore[misc]
            for p, k, b in zip(points.data, features["kind"], features["body"], strict=True)}


def show_synapses(qtbot: Any, win: SegmendWindow, *bodies: int) -> None:
    """Select ``bodies`` and wait until the synapse layers show them."""
    with qtbot.waitSignal(win.widget.synapses.updated, timeout=WAIT_MS,
                          check_params_cb=lambda ids: ids == list(bodies)):
        win.widget.selection.set(bodies)


# ------------------------------------------------------------------------- synapses
def test_synapse_layer_shows_the_selected_bodies_synapses(syn: SegmendWindow,
                                                          qtbot: Any) -> None:
    win = syn
    ds = dataset(win)
    tools = win.widget.synapses
    assert tools.points is None  # nothing selected: no layer yet
    a, b = ranked(win, 2)
    show_synapses(qtbot, win, a, b)
    points, partners = tools.points, tools.partners
    assert points is not None and partners is not None
    assert [layer.name for layer in win.viewer.layers][-2:] == ["synapse partners", POINTS_NAME]
    assert win.viewer.layers.selection.active is win.widget.layers.segmentation
    # every element of both bodies, at its voxel (z, y, x), which is in its body
    shown = shown_points(win)
    assert shown == expected_points(win, a, b)
    assert {body for _, body in shown.values()} == {a, b}
    for (z, y, x), (_kind, body) in shown.items():
        assert int(ds.labels(0)[z, y, x]) == body
    # PreSyn and PostSyn in two colours (and symbols)
    kinds = np.asarray(points.features["kind"])
    assert {"PreSyn", "PostSyn"} <= set(kinds)
    for kind, colour in (("PreSyn", PRESYN_COLOR), ("PostSyn", POSTSYN_COLOR)):
        np.testing.assert_allclose(points.face_color[kinds == kind],
                                   np.broadcast_to(transform_color(colour)[0],
                                                   ((kinds == kind).sum(), 4)))
    assert not np.allclose(transform_color(PRESYN_COLOR), transform_color(POSTSYN_COLOR))
    assert {str(s.value) for s in points.symbol[kinds == "PreSyn"]} == {"diamond"}
    assert {str(s.value) for s in points.symbol[kinds == "PostSyn"]} == {"disc"}
    # one arrow per relationship, from the PreSyn to the PostSyn
    want = set()
    for body in (a, b):
        for e in ds.annotations.body(SYNAPSES, body, relationships=True):
            for rel in e["Rels"] or ():
                pre, post = (e["Pos"], rel["To"]) if rel["Rel"] == "PreSynTo" else \
                    (rel["To"], e["Pos"])
                want.add((zyx(pre), zyx(post)))
    arrows = {(tuple(int(v) for v in start), tuple(int(v) for v in start + offset))
              for start, offset in partners.data}
    assert arrows == want and len(partners.data) == len(want) > 0
    # in 2D a point shows on its plane, where the layer's status names its kind and body
    index, (z, y, x) = next((i, p) for i, p in enumerate(shown) if p[0] + 3 < ds.shape[0])
    win.viewer.dims.set_point(0, z)
    kind, body = shown[z, y, x]
    assert points.get_status((z, y, x), world=True)["value"] == \
        f"{index}; kind: {kind}, body: {body}"
    # a thick slice shows those of nearby planes too
    win.viewer.dims.set_point(0, z + 3)
    assert points.get_value((z + 3, y, x), world=True) != index
    win.viewer.dims.margin_left = win.viewer.dims.margin_right = (4.0, 0.0, 0.0)
    assert points.get_value((z + 3, y, x), world=True) == index
    # a smaller selection shows fewer
    show_synapses(qtbot, win, b)
    assert shown_points(win) == expected_points(win, b)


def test_synapses_follow_a_merge_and_its_undo(syn: SegmendWindow, qtbot: Any) -> None:
    win = syn
    tools = win.widget.synapses
    a, b = ranked(win, 2)
    before_a, before_b = expected_points(win, a), expected_points(win, b)
    show_synapses(qtbot, win, a)
    assert shown_points(win) == before_a
    # the selection stays [a]: only the merge's committed labels refresh the layer
    merged = {pos: (kind, a) for pos, (kind, _body) in {**before_a, **before_b}.items()}
    with qtbot.waitSignal(tools.updated, timeout=WAIT_MS,
                          check_params_cb=lambda ids: ids == [a] and tools.points is not None
                          and len(tools.points.data) == len(merged)):
        win.session.merge(a, [b])
    assert win.widget.selection.ids == [a]
    assert shown_points(win) == merged
    with qtbot.waitSignal(tools.updated, timeout=WAIT_MS,
                          check_params_cb=lambda ids: ids == [a] and tools.points is not None
                          and len(tools.points.data) == len(before_a)):
        win.session.undo()
    assert shown_points(win) == before_a


def test_no_synapses_no_layer_until_there_are(opened: SegmendWindow, qtbot: Any) -> None:
    win = opened
    tools = win.widget.synapses
    ds = dataset(win)
    body = int(ds.labels(0)[124, 100, 100])
    with qtbot.waitSignal(tools.updated, timeout=WAIT_MS) as blocker:
        win.widget.selection.set([body])
    assert blocker.args == [[]]  # no synapses set: nothing shown
    assert tools.points is None and tools.partners is None
    assert POINTS_NAME not in [layer.name for layer in win.viewer.layers]
    ds.annotations.post(SYNAPSES, SYNAPSES_JSON.read_text())
    with qtbot.waitSignal(tools.updated, timeout=WAIT_MS) as blocker:
        tools.refresh()
    assert blocker.args == [[body]]
    assert shown_points(win) == expected_points(win, body) != {}


# ------------------------------------------------------------------------ bookmarks
def centre_view(win: SegmendWindow, z: float, y: float, x: float) -> None:
    win.viewer.dims.set_point(0, z)
    camera(win.viewer).center = (z, y, x)


def test_bookmarks_add_jump_delete(syn: SegmendWindow, qtbot: Any, said: list[str]) -> None:
    win = syn
    ds = dataset(win)
    panel = win.widget.bookmarks_panel
    assert panel.marks == [] and not panel.jump_button.isEnabled()
    win.session.user = "tester"
    centre_view(win, 60, 70.2, 80.4)
    panel.note_edit.setText("false merge here")
    with qtbot.waitSignal(panel.changed, timeout=WAIT_MS,
                          check_params_cb=lambda marks: len(marks) == 1):
        panel.add_button.click()
    [element] = ds.annotations.export(BOOKMARKS)
    assert element["Pos"] == [80, 70, 60] and element["Kind"] == "Note"
    assert element["Prop"] == {"comment": "false merge here", "user": "tester"}
    assert panel.note_edit.text() == "" and "bookmarked [80, 70, 60]" in said
    centre_view(win, 100, 30, 40)
    with qtbot.waitSignal(panel.changed, timeout=WAIT_MS,
                          check_params_cb=lambda marks: len(marks) == 2):
        panel.add_button.click()
    assert [e["Pos"] for e in ds.annotations.export(BOOKMARKS)] == [[80, 70, 60], [40, 30, 100]]
    assert [panel.list.item(i).text() for i in range(2)] == [
        "false merge here   [80, 70, 60]", "(no note)   [40, 30, 100]"]
    # jump: the button, and a double-click
    panel.list.setCurrentRow(1)
    with qtbot.waitSignal(panel.jumped, timeout=WAIT_MS):
        panel.jump_button.click()
    assert win.viewer.dims.point[0] == 100
    assert tuple(round(v) for v in camera(win.viewer).center[-2:]) == (30, 40)
    viewport, at = panel.list.viewport(), panel.list.visualItemRect(panel.list.item(0)).center()
    with qtbot.waitSignal(panel.jumped, timeout=WAIT_MS) as blocker:
        QTest.mouseClick(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)
        QTest.mouseDClick(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                          at)
    assert blocker.args == [(80, 70, 60)]
    assert win.viewer.dims.point[0] == 60
    assert tuple(round(v) for v in camera(win.viewer).center[-2:]) == (70, 80)
    # delete the one picked
    with qtbot.waitSignal(panel.changed, timeout=WAIT_MS,
                          check_params_cb=lambda marks: len(marks) == 1):
        panel.delete_button.click()
    assert [e["Pos"] for e in ds.annotations.export(BOOKMARKS)] == [[40, 30, 100]]
    assert [m.pos for m in panel.marks] == [(40, 30, 100)]


# ---------------------------------------------------------------------- body status
def test_body_panel_shows_counts_and_sets_status_and_name(syn: SegmendWindow,
                                                          qtbot: Any) -> None:
    win = syn
    ds = dataset(win)
    panel = win.widget.status_page
    a, b = ranked(win, 2)
    with qtbot.waitSignal(panel.updated, timeout=WAIT_MS,
                          check_params_cb=lambda infos: [i.body for i in infos] == [a, b]):
        win.widget.selection.set([a, b])

    def counted(body: int) -> tuple[str, str]:
        kinds = [kind for kind, _ in expected_points(win, body).values()]
        return f"{kinds.count('PreSyn'):,}", f"{kinds.count('PostSyn'):,}"

    assert panel.rows() == [(str(a), "", "", *counted(a)), (str(b), "", "", *counted(b))]
    assert panel.current == a and panel.table.currentRow() == 0  # the first, highlighted
    assert panel.apply_button.isEnabled()
    panel.status_combo.setCurrentIndex(panel.status_combo.findData("Traced"))
    panel.name_edit.setText("candidate")
    with qtbot.waitSignal(panel.updated, timeout=WAIT_MS,
                          check_params_cb=lambda infos: infos[0].status == "Traced"):
        panel.apply_button.click()
    value = ds.body_annotations.get(a)
    assert value is not None
    assert (value["body ID"], value["status"], value["name"]) == (a, "Traced", "candidate")
    assert panel.rows()[0][:3] == (str(a), "Traced", "candidate")
    assert ds.body_annotations.get(b) is None
    # the second row's body; "(no status)" removes the status
    panel.table.setCurrentCell(1, 0)
    assert panel.current == b and panel.name_edit.text() == ""
    assert panel.name_edit.placeholderText() == f"name of {b}"
    panel.status_combo.setCurrentIndex(panel.status_combo.findData("Orphan"))
    with qtbot.waitSignal(panel.written, timeout=WAIT_MS):
        panel.apply_button.click()
    assert ds.body_annotations.get(b)["status"] == "Orphan"  # type: ignore[index]
    panel.table.setCurrentCell(0, 0)
    assert panel.status_combo.currentText() == "Traced"
    panel.status_combo.setCurrentIndex(0)
    with qtbot.waitSignal(panel.written, timeout=WAIT_MS):
        panel.apply_button.click()
    value = ds.body_annotations.get(a)
    assert value is not None and "status" not in value and value["name"] == "candidate"


def test_protected_body_merge_is_refused_and_changes_nothing(
        syn: SegmendWindow, qtbot: Any, said: list[str]) -> None:
    win = syn
    ds = dataset(win)
    panel = win.widget.status_page
    a, b = ranked(win, 2)
    ds.body_annotations.update(b, status="Finalized")
    sizes = ds.label_size(a), ds.label_size(b)
    points = expected_points(win, a), expected_points(win, b)
    with qtbot.waitSignal(panel.updated, timeout=WAIT_MS,
                          check_params_cb=lambda infos: [i.body for i in infos] == [a, b]):
        win.widget.selection.set([a, b])
    status = panel.table.item(1, 1)
    assert status is not None and status.text() == "Finalized" and status.font().bold()
    with qtbot.waitSignals([win.session.edit_failed, win.error_shown], timeout=WAIT_MS):
        win.widget.commands["merge"].trigger()
    line = said[-1]
    assert line == (f"merge failed: body {b} is 'Finalized', a protected status: force the "
                    "edit (--force) to change it")
    assert panel.hint.text() == PROTECTED_HINT
    assert win.widget.body_panel.tabs.currentWidget() is panel  # the page shows why
    wait_idle(qtbot, win)
    assert (ds.label_size(a), ds.label_size(b)) == sizes
    assert ds.mutations() == [] and win.widget.selection.ids == [a, b]
    assert (expected_points(win, a), expected_points(win, b)) == points
    assert ds.body_annotations.get(b)["status"] == "Finalized"  # type: ignore[index]


# ------------------------------------------------------------------------ next body
def test_next_body_walks_the_postsyn_ranking(syn: SegmendWindow, qtbot: Any,
                                            said: list[str]) -> None:
    win = syn
    ds = dataset(win)
    top = ranked(win, 3)
    native = win.viewer.window._qt_viewer.canvas.native
    win.qt_window.activateWindow()
    native.setFocus()
    qtbot.waitUntil(lambda: win.qt_window.isActiveWindow(), timeout=WAIT_MS)
    for i, body in enumerate(top):
        with qtbot.waitSignal(win.widget.selection.changed, timeout=WAIT_MS,
                              check_params_cb=lambda ids, body=body: ids == [body]):
            if i == 0:
                QTest.keyClick(native, Qt.Key.Key_N)  # the shortcut
            else:
                win.widget.commands["next_body"].trigger()
        z = int(win.viewer.dims.point[0])
        y, x = (round(v) for v in camera(win.viewer).center[-2:])
        assert int(ds.labels(0)[z, y, x]) == body  # the view went to it
        count = ds.annotations.counts(SYNAPSES, body)["PostSyn"]
        assert said[-1].startswith(f"body {body} (#{i + 1} by PostSyn count: {count}) at z=")
    assert win.widget.next_body.visited == top
    dialog = ShortcutsDialog()
    listed = dialog.keys()
    assert native_key("N") in listed
    dialog.deleteLater()
