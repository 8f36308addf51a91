"""Background threads run below the interactive ones (app.model.priority)."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from app.model.dataset import open_dataset
from app.model.priority import lower_thread_priority
from tests.conftest import biggest

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="per-thread priority is Linux's"
)


def _nice(native_id: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, native_id)


@linux_only
def test_only_the_calling_thread_is_lowered() -> None:
    main = _nice(threading.get_native_id())
    seen: list[tuple[bool, int, int]] = []

    def worker() -> None:
        before = _nice(threading.get_native_id())
        lowered = lower_thread_priority(3)
        seen.append((lowered, before, _nice(threading.get_native_id())))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    lowered, before, after = seen[0]
    assert lowered and after == min(before + 3, 19)
    assert _nice(threading.get_native_id()) == main
    assert not lower_thread_priority(0)


@linux_only
def test_a_datasets_block_pool_runs_at_the_nice_asked_for(
    small_pyramid: Path, model: NDArray[np.uint64]
) -> None:
    main = _nice(threading.get_native_id())
    a, b = biggest(model, 2)
    with open_dataset(small_pyramid, "r+", workers=2, background_nice=4) as ds:
        ds.merge(a, [b])
        pool = [t for t in threading.enumerate() if t.name.startswith("segmend-block")]
        checkpoint = [t for t in threading.enumerate() if t.name == "segmend-checkpoint"]
        assert pool and checkpoint
        assert all(_nice(t.native_id) == min(main + 4, 19) for t in pool + checkpoint)
