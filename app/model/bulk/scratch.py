"""A reusable per-thread block buffer for encoding (bulk jobs)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["scratch_copy"]

_scratch = threading.local()


def scratch_copy(view: NDArray[Any], dtype: np.dtype[Any] | None = None) -> NDArray[Any]:
    """``view`` copied into this thread's reusable C-contiguous buffer (as
    ``dtype`` if given: values must fit it).

    Fresh 2 MiB arrays cost page faults that take longer than encoding them;
    the buffer is only read by the encoder before the next block reuses it.
    """
    dtype = view.dtype if dtype is None else dtype
    buf = getattr(_scratch, "buffer", None)
    if buf is None or buf.shape != view.shape or buf.dtype != dtype:
        buf = np.empty(view.shape, dtype)
        _scratch.buffer = buf
    np.copyto(buf, view, casting="unsafe")
    return buf
