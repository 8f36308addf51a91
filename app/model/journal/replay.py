"""The mutation log as JSON lines, and applying such lines to a dataset.

``segmend log A.h5 | segmend apply B.h5 -`` replays A's session on a copy B of
A's base with identical labels: splits carry their spans inline and the label
they created (``NewLabel``), label reservations are replayed, and undo/redo
are replayed as such.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from app.model.dataset import Dataset
from app.model.errors import InvalidMutationError, SegmendError
from app.model.mutations import apply_line, is_known, record_from_json


class ApplyError(SegmendError):
    """A line of an ``apply`` input failed; the lines before it stay applied."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


def log_lines(ds: Dataset, since: int = 0) -> Iterator[dict[str, Any]]:
    """The mutation log after ``since`` as replayable JSON objects (SPEC §9 names);
    records of kinds this version does not know are left out."""
    for row in ds.mutations(since):
        if is_known(row):
            yield record_from_json(row).log_line(ds.blob)


def apply_lines(ds: Dataset, lines: Iterable[str]) -> list[dict[str, Any]]:
    """Apply mutation JSON lines in order; returns one result per applied line.

    Raises
    ------
    ApplyError
        At the first failing line (blank lines are skipped); earlier lines stay applied.
    """
    results = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            op = json.loads(text)
            if not isinstance(op, dict):
                raise InvalidMutationError("expected a JSON object")
            results.append(apply_line(ds, op))
        except json.JSONDecodeError as exc:
            raise ApplyError(number, f"not JSON ({exc.msg})") from exc
        except (SegmendError, ValueError, KeyError, TypeError) as exc:
            raise ApplyError(number, _describe(exc)) from exc
    return results


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc)
