"""Running commands: one to its end (:func:`run_proc`) or watched line by line (:class:`Watched`).

Every process runs in its own session, so a time-out kills its whole group.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
SEGMEND = (PY, "-m", "app")
CAMPAIGN = (PY, "-m", "tools.campaign")  # with ROOT on PYTHONPATH (see Run.helper)
CMD_TIMEOUT = 90.0


@dataclass(frozen=True)
class Proc:
    """A finished process: exit status (None: hung and killed), output, seconds."""

    rc: int | None
    out: str
    err: str
    seconds: float = 0.0


class Watched:
    """A running process whose stdout lines and stderr are collected by threads."""

    def __init__(self, argv: Sequence[str], cwd: Path, env: dict[str, str], stdin: bool = False):
        self.start = time.monotonic()
        self.proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            start_new_session=True,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.out: list[str] = []
        self._err: list[bytes] = []
        threading.Thread(target=self._pump_out, daemon=True).start()
        self._err_thread = threading.Thread(target=self._pump_err, daemon=True)
        self._err_thread.start()

    def _pump_out(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.out.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def _pump_err(self) -> None:
        assert self.proc.stderr is not None
        self._err.append(self.proc.stderr.read())

    def wait_line(self, pred: Callable[[str], bool], timeout: float = CMD_TIMEOUT) -> str | None:
        """The next stdout line satisfying ``pred``; None at end of output or timeout."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                self.lines.put(None)
                return None
            if pred(line):
                return line
        return None

    def send(self, text: str) -> None:
        if self.proc.stdin is not None:
            with suppress(OSError):
                self.proc.stdin.write(text.encode())
                self.proc.stdin.flush()

    def signal(self, sig: int) -> None:
        with suppress(ProcessLookupError):
            os.kill(self.proc.pid, sig)

    def finish(self, timeout: float = CMD_TIMEOUT) -> Proc:
        """Close stdin, wait (killing the process group after ``timeout``)."""
        if self.proc.stdin is not None:
            with suppress(OSError):
                self.proc.stdin.close()
        try:
            rc: int | None = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            rc = None
        self._err_thread.join(timeout=30)
        with suppress(queue.Empty):
            while self.lines.get(timeout=30) is not None:
                pass
        self.lines.put(None)
        err = b"".join(self._err).decode(errors="replace")
        return Proc(rc, "\n".join(self.out), err, time.monotonic() - self.start)


def run_proc(
    argv: Sequence[str],
    cwd: Path,
    env: dict[str, str],
    stdin: bytes | None = None,
    timeout: float = CMD_TIMEOUT,
) -> Proc:
    """Run a process to its end (killing its group after ``timeout``)."""
    start = time.monotonic()
    p = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=env,
        start_new_session=True,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = p.communicate(stdin, timeout=timeout)
        rc: int | None = p.returncode
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        rc = None
    return Proc(
        rc, out.decode(errors="replace"), err.decode(errors="replace"), time.monotonic() - start
    )
