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

import numpy as np

from app.kernels import parse_rles
from app.model.dataset import Dataset
from app.model.errors import InvalidMutationError, SegmendError

_LOG_FIELDS = ("MutationID", "UUID", "Timestamp")


class ApplyError(SegmendError):
    """A line of an ``apply`` input failed; the lines before it stay applied."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


def log_lines(ds: Dataset, since: int = 0) -> Iterator[dict[str, Any]]:
    """The mutation log after ``since`` as replayable JSON objects (SPEC §9 names)."""
    for record in ds.mutations(since):
        head = {k: record[k] for k in _LOG_FIELDS if k in record}
        action = record["Action"]
        if action == "undo":
            yield {"Action": "undo", **head, "Undoes": record["Undoes"]}
        elif "Redoes" in record:
            yield {"Action": "redo", **head, "Redoes": record["Redoes"]}
        elif action == "merge":
            yield {
                "Action": "merge",
                **head,
                "Target": record["Target"],
                "Labels": record["Labels"],
            }
        elif action in ("split", "splitcoarse"):
            line: dict[str, Any] = {
                "Action": action,
                **head,
                "Target": record["Target"],
                "NewLabel": record["NewLabel"],
            }
            if action == "split":
                spans = parse_rles(ds.blob(record["Split"]), headered=False)
                line["RLEs"] = spans.tolist()
            else:
                line["Blocks"] = record["Blocks"]
            yield line
        elif action == "post-nextlabel":
            yield {
                "Action": action,
                **head,
                "Start Label": record["Start Label"],
                "End Label": record["End Label"],
            }
        elif action == "post-maxlabel":
            yield {"Action": action, **head, "MaxLabel": record["MaxLabel"]}


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
            results.append(apply_one(ds, op))
        except json.JSONDecodeError as exc:
            raise ApplyError(number, f"not JSON ({exc.msg})") from exc
        except (SegmendError, ValueError, KeyError, TypeError) as exc:
            raise ApplyError(number, _describe(exc)) from exc
    return results


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc)


def apply_one(ds: Dataset, op: dict[str, Any]) -> dict[str, Any]:
    """Apply one mutation object; returns what it produced (SPEC §9 CLI results)."""
    action = op.get("Action")
    if action == "merge":
        return {"MutationID": ds.merge(_int(op, "Target"), _ints(op, "Labels"))}
    if action == "split":
        spans = op["RLEs"]
        if not isinstance(spans, list) or not all(
            isinstance(s, list) and len(s) == 4 and all(isinstance(v, int) for v in s)
            for s in spans
        ):
            raise InvalidMutationError("RLEs must be a list of [x, y, z, length] integer lists")
        result = ds.split(
            _int(op, "Target"),
            np.array(spans, dtype=np.int64).reshape(-1, 4),
            new_label=_opt_int(op, "NewLabel"),
        )
        return {"label": result.label, "MutationID": result.mutation_id}
    if action == "splitcoarse":
        blocks = op["Blocks"]
        if not isinstance(blocks, list):
            raise InvalidMutationError("Blocks must be a list of [z, y, x] lists")
        result = ds.split_coarse(_int(op, "Target"), blocks, new_label=_opt_int(op, "NewLabel"))
        return {"label": result.label, "MutationID": result.mutation_id}
    if action == "undo":
        return {"MutationID": ds.undo()}
    if action == "redo":
        return {"MutationID": ds.redo()}
    if action == "post-nextlabel":
        start, end = _int(op, "Start Label"), _int(op, "End Label")
        got = ds.next_label(end - start + 1)
        return {"start": got[0], "end": got[1]}
    if action == "post-maxlabel":
        return {"MutationID": ds.set_max_label(_int(op, "MaxLabel"))}
    raise InvalidMutationError(
        f"unknown Action {action!r}; expected merge, split, splitcoarse, undo, redo, "
        "post-nextlabel or post-maxlabel"
    )


def _int(op: dict[str, Any], key: str) -> int:
    value = op[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidMutationError(f"{key} must be an integer, got {value!r}")
    return value


def _opt_int(op: dict[str, Any], key: str) -> int | None:
    return None if op.get(key) is None else _int(op, key)


def _ints(op: dict[str, Any], key: str) -> list[int]:
    values = op[key]
    if not isinstance(values, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in values
    ):
        raise InvalidMutationError(f"{key} must be a list of integers, got {values!r}")
    return values
