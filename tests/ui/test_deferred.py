"""Status texts are batched behind the view (:mod:`app.ui.deferred`)."""

from __future__ import annotations

from typing import Any

from app.ui.deferred import DeferredUpdates
from app.ui.main_window import SegmendWindow
from app.ui.status import StatusIndicators


def test_the_latest_update_of_each_key_is_applied_once_after_the_delay(qtbot: Any) -> None:
    updates = DeferredUpdates(delay_ms=30)
    applied: list[str] = []
    updates.put("a", lambda: applied.append("a1"))
    updates.put("b", lambda: applied.append("b1"))
    updates.put("a", lambda: applied.append("a2"))
    assert applied == [] and updates.pending
    qtbot.waitUntil(lambda: not updates.pending, timeout=2000)
    assert applied == ["a2", "b1"]
    updates.put("a", lambda: applied.append("a3"))
    updates.flush()
    assert applied == ["a2", "b1", "a3"] and not updates.pending


def test_indicators_report_new_texts_at_once_and_show_them_later(qtbot: Any) -> None:
    status = StatusIndicators()
    qtbot.addWidget(status)
    assert status.pending.text() == "idle"  # the first texts are shown at once
    status.set_pending(3, 1)
    assert status.texts()[0] == "working: 1 edit, 3 jobs"
    assert status.pending.text() == "idle"
    qtbot.waitUntil(lambda: status.pending.text() == status.texts()[0], timeout=2000)


def test_an_error_shows_at_once_over_a_waiting_message(window: SegmendWindow) -> None:
    bar = window.qt_window.statusBar()
    window.reporter.info("merging 2 bodies...")
    assert bar.currentMessage() == ""  # waits behind the view
    window.reporter.error("label 7 has no voxels", context="merge failed")
    window.reporter.close_boxes()
    assert bar.currentMessage() == "merge failed: label 7 has no voxels"
    assert not window.status.updates.pending  # nothing older left to overwrite it
