"""The worker pool: results on the GUI thread, lanes in order, failures and progress delivered."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from qtpy.QtCore import QThread

from app.ui.workers import Job, TaskRunner

pytestmark = pytest.mark.gui


def test_results_come_back_on_the_gui_thread(qtbot: Any) -> None:
    runner = TaskRunner(4)
    gui = QThread.currentThread()
    seen: list[tuple[Any, bool, str]] = []

    def work(job: Job) -> str:
        return threading.current_thread().name

    for _ in range(20):
        runner.submit(work, on_done=lambda name: seen.append(
            (None, QThread.currentThread() is gui, name)))
    runner.submit(lambda job: None, on_done=lambda r: seen.append((r, True, "none")))
    qtbot.waitUntil(lambda: len(seen) == 21 and runner.pending == 0, timeout=10_000)
    assert all(on_gui for _, on_gui, _ in seen)
    assert {name for _, _, name in seen} != {threading.current_thread().name}
    runner.wait_for_done()


def test_a_lane_runs_one_job_at_a_time_in_order(qtbot: Any) -> None:
    runner = TaskRunner(4)
    running = 0
    most = 0
    order: list[int] = []
    lock = threading.Lock()

    def work(i: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.01)  # simulated work on the worker thread
        with lock:
            running -= 1
        return i

    for i in range(8):
        runner.submit(lambda job, i=i: work(i), lane="edits", on_done=order.append)
    assert runner.pending_in("edits") == 8
    qtbot.waitUntil(lambda: len(order) == 8, timeout=10_000)
    assert order == list(range(8)) and most == 1
    runner.wait_for_done()


def test_failures_progress_and_cancel_are_delivered(qtbot: Any) -> None:
    runner = TaskRunner(2)
    errors: list[BaseException] = []
    failed_names: list[str] = []
    runner.job_failed.connect(lambda name, exc: failed_names.append(name))

    def boom(job: Job) -> None:
        raise ValueError("bad input")

    runner.submit(boom, name="boom", on_error=errors.append)
    progress: list[tuple[int, int]] = []
    started = threading.Event()

    def long(job: Job) -> str:
        started.set()
        for i in range(1000):
            job.report(i, 1000)
            if job.cancel_event.wait(0.005):
                return "cancelled"
        return "finished"

    results: list[str] = []
    job = runner.submit(long, on_done=results.append,
                        on_progress=lambda d, t: progress.append((d, t)))
    qtbot.waitUntil(lambda: bool(progress) and bool(errors), timeout=10_000)
    job.cancel()
    qtbot.waitUntil(lambda: results == ["cancelled"], timeout=10_000)
    assert isinstance(errors[0], ValueError) and failed_names == ["boom"]
    assert progress[0][1] == 1000
    runner.wait_for_done()


def test_shutdown_drain_keeps_queued_edits(qtbot: Any) -> None:
    runner = TaskRunner(2)
    gate = threading.Event()
    ran: list[str] = []
    runner.submit(lambda job: gate.wait(5), lane="edits", essential=True)
    runner.submit(lambda job: ran.append("edit"), lane="edits", essential=True)
    runner.submit(lambda job: ran.append("open"), lane="edits")
    left = runner.drain_lane("edits")
    assert [j.essential for j in left] == [True, False]
    gate.set()
    runner.wait_for_done()
    for job in left:
        if job.essential:
            job.run()
    assert ran == ["edit"]
