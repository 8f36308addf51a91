"""Scheduling priority of background threads.

An editor's pool threads run Numba kernels that release the GIL and can keep
every core busy; in the desktop app they then compete with the GUI thread (and
the software OpenGL renderer) for the same cores, and an edit shows later than
it would on an idle machine.  A higher nice value for the background threads
lets the interactive ones run first, without slowing the background work when
nothing else wants the cores.
"""

from __future__ import annotations

import os
import sys
import threading


def lower_thread_priority(nice: int) -> bool:
    """Raise the calling thread's nice value by ``nice`` (lower its priority).

    Linux schedules threads individually (a thread id is a valid
    ``PRIO_PROCESS`` target); elsewhere the call would change the whole
    process, so it does nothing.  Raising one's own nice value needs no
    privilege; if the OS refuses anyway, the thread keeps its priority (only
    responsiveness is at stake).

    Returns
    -------
    bool
        Whether the priority was lowered.
    """
    if nice <= 0 or not sys.platform.startswith("linux"):
        return False
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
    except OSError:
        return False
    return True
