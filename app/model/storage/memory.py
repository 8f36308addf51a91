"""Tuning of the C allocator for a process that churns block-sized arrays.

Every edited block is a new array of a few MiB (64³ uint64 = 2 MiB), and the
cache frees as many.  glibc's defaults hand such freed memory back to the
kernel at once (``munmap``, or trimming the heap top), so the next block
faults in every 4 KiB page afresh — on a virtual machine that costs about as
much as decompressing the block.  Raising the thresholds keeps freed blocks in
the heap for reuse (the heap gives back what exceeds ``TRIM_BYTES``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

MMAP_THRESHOLD_BYTES = 32 << 20
"""Allocations below this come from the heap, not from their own mapping."""
TRIM_BYTES = 64 << 20
"""Free memory at a heap's top beyond this goes back to the kernel."""

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


@functools.cache
def recycle_block_memory() -> bool:
    """Let glibc reuse freed block arrays (once per process).

    Returns
    -------
    bool
        True if the allocator took the settings; False on a C library without
        ``mallopt`` (then nothing changes).
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    mallopt = getattr(ctypes.CDLL(name), "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) and mallopt(_M_TRIM_THRESHOLD, TRIM_BYTES)
    )
