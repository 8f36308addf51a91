"""The napari warm-up thread: runs once, off the GUI thread; a failure is only a warning."""

from __future__ import annotations

import threading
from typing import Any

import napari.layers
import pytest

from app.ui import warmup

pytestmark = pytest.mark.gui


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process in which no warm-up was started yet."""
    monkeypatch.setattr(warmup, "_thread", None)
    monkeypatch.setattr(warmup, "_error", [])


def test_warm_up_runs_once_on_another_thread(fresh: None,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[tuple[str, str]] = []
    labels = napari.layers.Labels

    def spy(*args: Any, **kwargs: Any) -> Any:
        made.append((type(args[0][0]).__name__, threading.current_thread().name))
        return labels(*args, **kwargs)

    monkeypatch.setattr(napari.layers, "Labels", spy)
    warmup.start()
    first = warmup._thread
    warmup.start()  # once per process
    assert warmup._thread is first is not None
    warmup.wait()
    assert not first.is_alive()
    assert made == [("ndarray", "segmend napari warm-up")]
    warmup.wait()  # done: returns at once


def test_a_failed_warm_up_is_a_warning(fresh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise TypeError("napari changed")

    monkeypatch.setattr(napari.layers, "Labels", broken)
    warmup.start()
    with pytest.warns(RuntimeWarning, match="warm-up failed.*napari changed"):
        warmup.wait()
    warmup.wait()  # reported once


def test_wait_without_a_warm_up_returns(fresh: None) -> None:
    warmup.wait()
    assert warmup._thread is None
