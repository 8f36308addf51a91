"""One line for the user from an exception: the CLI's errors and the app's messages."""

from __future__ import annotations

import os
import re

from app.model.errors import SegmendError

CLEAR_MESSAGES = (SegmendError, OSError, ValueError, KeyError, IndexError)
"""Exceptions whose message says it all; others are prefixed by their type's name."""


def one_line(exc: BaseException | str) -> str:
    """The first line of an exception's message (or of a text), never empty.

    Model errors (and the I/O, value and lookup errors segmend raises) carry
    clear messages; other exceptions are prefixed by their type name, so that
    the user can report them.
    """
    if isinstance(exc, str):
        text = exc
    elif isinstance(exc, CLEAR_MESSAGES):
        text = str(exc).strip() or type(exc).__name__
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc).strip() else type(exc).__name__
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


_HDF5_REASON = re.compile(r"error message = '([^']+)'")


def write_failure(exc: BaseException, path: object) -> str:
    """Why writing the file ``path`` failed, in a few words without its name: the
    system's reason (HDF5's messages bury it), else the error's one line."""
    errno_ = getattr(exc, "errno", None)
    if isinstance(errno_, int) and errno_:
        return os.strerror(errno_)
    reason = _HDF5_REASON.search(str(exc))
    if reason:
        return reason.group(1)
    text = one_line(exc)
    prefix = f"cannot write {path}: "
    return text[len(prefix) :] if text.startswith(prefix) else text
