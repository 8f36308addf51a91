"""The window around the proofreading: menus, settings, import, drag and drop, status, help."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from qtpy.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QUrl
from qtpy.QtGui import QDragEnterEvent, QDropEvent
from qtpy.QtWidgets import QApplication

from app.model.demo import demo_cube_path
from app.ui.help import ShortcutsDialog, native_key
from app.ui.main_window import SegmendWindow
from app.ui.settings import AppSettings, SettingsDialog, qsettings
from app.ui.shortcuts import SHORTCUTS
from tests.ui.conftest import WAIT_MS, wait_idle

pytestmark = pytest.mark.gui


def test_file_menu_has_segmend_entries(window: SegmendWindow) -> None:
    file_menu = window.viewer.window.file_menu
    texts = [a.text() for a in file_menu.actions()]
    assert texts[:5] == ["Open segmend dataset...", "Open OME-Zarr folder (read-only)...",
                         "Open recent segmend dataset", "Import volume (build pyramid)...",
                         "segmend settings..."]
    proofread = [a.text() for a in window.proofread_menu.actions() if a.text()]
    assert "Merge into first" in proofread and "Undo" in proofread and "3D bodies" in proofread


def test_every_shortcut_is_bound_and_listed_in_help(window: SegmendWindow, qtbot: Any) -> None:
    keys = {spec.name: window.widget.commands[spec.name].shortcut().toString()
            for spec in SHORTCUTS}
    assert keys["merge"] == "M"
    assert keys["undo"] == "Ctrl+Z" and keys["redo"] == "Ctrl+Shift+Z"
    assert len(set(keys.values())) == len(keys)  # no two commands share a key
    window.widget.commands["help"].trigger()
    dialog = window.widget.findChild(ShortcutsDialog)
    assert dialog is not None and dialog.isVisible() and not dialog.isModal()
    listed = dialog.keys()
    assert all(native_key(spec.key) in listed for spec in SHORTCUTS)
    dialog.close()


def test_settings_round_trip_and_user_goes_into_records(
        window: SegmendWindow, demo_path: Path, qtbot: Any, _private_qsettings: Path,
        private_config: Path) -> None:
    dialog = window.settings_dialog()
    assert isinstance(dialog, SettingsDialog) and not dialog.isModal()
    dialog.kafka_servers.setText("127.0.0.1:9")  # nobody listens: the sender is down
    dialog.topic_prefix.setText("test-")
    dialog.user.setText("proofreader-7")
    dialog.workers.setValue(3)
    window.save_settings = True
    dialog.accept()
    stored = AppSettings.load()
    assert (stored.kafka_servers, stored.topic_prefix, stored.user, stored.workers) == (
        "127.0.0.1:9", "test-", "proofreader-7", 3)
    assert Path(qsettings().fileName()).is_relative_to(_private_qsettings)
    assert private_config.exists()  # the config file the CLI reads
    # an injected store (an ini file) works the same
    ini = QSettings(str(_private_qsettings / "other.ini"), QSettings.Format.IniFormat)
    stored.with_recent(demo_path).save(ini)
    assert AppSettings.load(ini).recent == (str(demo_path.resolve()),)
    # the user name is recorded in the mutations made afterwards
    with qtbot.waitSignal(window.session.opened, timeout=WAIT_MS):
        window.open_path(demo_path)
    ds = window.session.dataset
    assert ds is not None
    labels = ds.labels(0)
    window.widget.selection.set([int(labels[124, 100, 100]), int(labels[124, 100, 120])])
    with qtbot.waitSignal(window.session.edit_finished, timeout=WAIT_MS):
        window.widget.commands["merge"].trigger()
    assert ds.mutations()[-1]["User"] == "proofreader-7"
    assert ds.kafka.bootstrap_servers == "127.0.0.1:9" and ds.kafka.topic_prefix == "test-"
    assert AppSettings.load().recent[0] == str(demo_path.resolve())
    # the status bar follows the model's sender: never "off" with a broker configured
    qtbot.waitUntil(lambda: window.status.kafka_state in ("connecting", "down"), timeout=WAIT_MS)
    wait_idle(qtbot, window)


def test_recent_files_menu_reopens(window: SegmendWindow, demo_path: Path, qtbot: Any) -> None:
    with qtbot.waitSignal(window.session.opened, timeout=WAIT_MS):
        window.open_path(demo_path)
    wait_idle(qtbot, window)
    actions = window.recent_menu.actions()
    assert [a.text() for a in actions] == [str(demo_path.resolve())]
    with qtbot.waitSignal(window.session.opened, timeout=WAIT_MS):
        actions[0].trigger()
    wait_idle(qtbot, window)


def test_drop_a_pyramid_file_opens_it(window: SegmendWindow, demo_path: Path, qtbot: Any) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(demo_path))])
    target = window.viewer.window._qt_viewer
    buttons, mods = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(QPoint(200, 200), Qt.DropAction.CopyAction, mime, buttons, mods)
    drop = QDropEvent(QPointF(QPoint(200, 200)), Qt.DropAction.CopyAction, mime, buttons, mods)
    QApplication.sendEvent(target, enter)  # Qt delivers a drop only after its drag entered
    assert enter.isAccepted()
    with qtbot.waitSignal(window.session.opened, timeout=WAIT_MS):
        QApplication.sendEvent(target, drop)
    assert drop.isAccepted()
    assert [layer.name for layer in window.viewer.layers][:2] == ["grayscale", "segmentation"]
    assert window.session.path == demo_path
    wait_idle(qtbot, window)


def test_import_volume_builds_pyramid_with_progress(window: SegmendWindow, tmp_path: Path,
                                                    qtbot: Any) -> None:
    source = tmp_path / "volume.h5"
    with h5py.File(demo_cube_path(), "r") as cube, h5py.File(source, "w") as f:
        f.create_dataset("seg", data=cube["automated/bodies"][:70, :90, :100])
        f.create_dataset("em", data=cube["raw"][:70, :90, :100])
    dialog = window.import_dialog(str(source))
    assert not dialog.isModal()
    qtbot.waitUntil(lambda: dialog.labels.count() == 2, timeout=WAIT_MS)
    dialog.labels.setCurrentIndex(dialog.labels.findData("/seg"))
    dialog.image.setCurrentIndex(dialog.image.findData("/em"))
    out = tmp_path / "built.h5"
    dialog.out.setText(str(out))
    progress: list[int] = []
    dialog.progress.valueChanged.connect(progress.append)
    with qtbot.waitSignal(window.session.opened, timeout=WAIT_MS):
        dialog.start()
    assert out.exists() and progress and max(progress) == dialog.progress.maximum()
    ds = window.session.dataset
    assert ds is not None and ds.path == out and ds.shape == (70, 90, 100) and ds.has_image
    wait_idle(qtbot, window)


def test_import_cancel_leaves_nothing(window: SegmendWindow, tmp_path: Path, qtbot: Any) -> None:
    cube = demo_cube_path()
    dialog = window.import_dialog(str(cube))
    qtbot.waitUntil(lambda: dialog.labels.count() >= 3, timeout=WAIT_MS)
    dialog.labels.setCurrentIndex(dialog.labels.findData("/automated/bodies"))
    out = tmp_path / "cancelled.h5"
    dialog.out.setText(str(out))
    dialog.start()
    dialog.cancel()
    qtbot.waitUntil(lambda: dialog.job is None, timeout=WAIT_MS)
    assert "cancelled" in dialog.state.text()
    assert not out.exists() and not list(tmp_path.glob(".cancelled.h5.partial*"))
    assert window.session.dataset is None
    dialog.close()


def test_drop_plain_volume_offers_import(window: SegmendWindow, tmp_path: Path,
                                         qtbot: Any) -> None:
    volume = tmp_path / "labels.npy"
    np.save(volume, np.ones((8, 8, 8), np.uint32))
    window.open_path(volume)
    dialog = window._import
    assert dialog is not None and dialog.isVisible()
    assert dialog.source.text() == str(volume)
    dialog.close()


def test_status_bar_shows_pending_mutations_backlog_and_kafka(opened: SegmendWindow,
                                                              qtbot: Any) -> None:
    win = opened
    pending, mutations, backlog, kafka = win.status.texts()
    assert pending == "idle" and mutations == "0 mutations" and backlog == "outbox: 0"
    assert "off" in kafka
    ds = win.session.dataset
    assert ds is not None
    win.widget.selection.set([int(ds.labels(0)[124, 100, 100]), int(ds.labels(0)[124, 100, 120])])
    seen: list[str] = []
    win.runner.pending_changed.connect(lambda _n: seen.append(win.status.texts()[0]))
    with qtbot.waitSignal(win.session.edit_finished, timeout=WAIT_MS):
        win.widget.commands["merge"].trigger()
    wait_idle(qtbot, win)
    assert any(text.startswith("working: 1 edit") for text in seen)
    assert win.status.texts()[1] == "1 mutation"
    status = ds.events_status()
    assert status is not None and status.state == "off" and status.backlog > 0
    qtbot.waitUntil(lambda: win.status.texts()[2] == f"outbox: {status.backlog}",
                    timeout=WAIT_MS)  # no broker: the events wait in the outbox
    win.set_kafka_status("down", 5)
    assert "down" in win.status.texts()[3] and win.status.texts()[2] == "outbox: 5"
    win.set_kafka_status("connected", 0)
    assert "connected" in win.status.texts()[3] and win.status.texts()[2] == "outbox: 0"
    with pytest.raises(ValueError, match="Kafka state"):
        win.set_kafka_status("sleeping", 0)
