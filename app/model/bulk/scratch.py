"""A reusable per-thread block buffer for encoding (bulk jobs)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["scratch_copy"]

_scratch = threading.local()


def scratch_copy(view: NDArray[Any]) -> NDArray[Any]:
    """``view`` copied into this thread's reusable C-contiguous buffer.

    Fresh 2 MiB arrays cost page faults that take longer than encoding them;
    the buffer is only read by the encoder before the next block reuses it.
    """
    buf = getattr(_scratch, "buffer", None)
    if buf is None or buf.shape != view.shape or buf.dtype != view.dtype:
        buf = np.empty(view.shape, view.dtype)
        _scratch.buffer = buf
    np.copyto(buf, view)
    return buf
