"""The mutation log as JSON lines, and applying such lines to a dataset.

``segmend log A.h5 | segmend apply B.h5 -`` replays A's session on a copy B of
A's base with identical labels: splits carry their spans inline and the label
they created (``NewLabel``), label reservations reserve the same labels, and
undo/redo are replayed as such, each checked to take the mutation its line
names (``Undoes``, ``Redoes``).

Every number of a line is an integer of 64 bits (labels are uint64,
coordinates int64): anything else is refused before the line is applied.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from app.model.dataset import Dataset, SplitResult
from app.model.error_text import one_line
from app.model.errors import InvalidMutationError, SegmendError
from app.model.events.encoding import go_json
from app.model.events.gotime import parse_go_time
from app.model.mutations import apply_line, is_known, record_from_json
from app.model.mutations.checks import MAX_LABEL

_MIN_NUMBER = -(1 << 63)
"""The smallest number a line may hold (int64); the largest is MAX_LABEL (uint64)."""


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


def dvid_log_lines(ds: Dataset, since: int = 0) -> Iterator[bytes]:
    """What DVID's mutation log (``GET /mutations``) would hold for the mutations
    after ``since``: the ``-complete`` message of each completed one, in
    completion order, as the bytes sent to Kafka (Go's JSON), whole (never by
    ``DataRef``).  Undo and redo appear as the merges and splits they performed,
    as on Kafka; label reservations, as in DVID, not at all."""
    done = [row for row in ds.mutations(since, state="done") if is_known(row)]
    completed = {row["MutationID"]: str(row.get("Completed", row["Timestamp"])) for row in done}
    done.sort(key=lambda row: (parse_go_time(completed[row["MutationID"]]), row["MutationID"]))
    for row in done:
        for msg in record_from_json(row).messages(completed[row["MutationID"]]):
            yield go_json(msg)


def apply_lines(ds: Dataset, lines: Iterable[str]) -> list[dict[str, Any]]:
    """Apply mutation JSON lines in order; returns one result per applied line.

    Raises
    ------
    ApplyError
        At the first failing line (blank lines are skipped); earlier lines stay applied.
    """
    return [result for _number, result in applied_lines(ds, lines)]


def applied_lines(ds: Dataset, lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Apply mutation JSON lines in order, yielding ``(line number, result)`` as
    soon as each line's edit is durable (blank lines are skipped).

    A line applies entirely or not at all; nothing of a line is applied
    before the previous result was taken.

    Raises
    ------
    ApplyError
        At the first failing line, naming it; earlier lines stay applied.
    """
    editor = _LineEditor(ds)
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            op = parse_line(text)
            result = apply_line(editor, op)
        except Exception as exc:  # every failure of a line is reported as that line's
            raise ApplyError(number, _describe(exc)) from exc
        editor.note(op, result)
        yield number, result


def parse_line(text: str) -> dict[str, Any]:
    """One ``apply`` line as a JSON object whose numbers are all 64-bit integers.

    Raises
    ------
    InvalidMutationError
        If it is not JSON (or nested too deeply to read), not an object, or
        holds a number that is not an integer of 64 bits.
    """
    try:
        op = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidMutationError(f"not JSON ({exc.msg})") from None
    except RecursionError:
        raise InvalidMutationError("not JSON (nested too deeply)") from None
    except ValueError:  # Python's limit on the digits of an integer
        raise InvalidMutationError("a number has too many digits for 64 bits") from None
    if not isinstance(op, dict):
        raise InvalidMutationError("expected a JSON object")
    for key, value in op.items():
        _check_numbers(key, value)
    return op


def _check_numbers(key: str, value: Any) -> None:
    """Refuse a number in field ``key``'s value that is not a 64-bit integer
    (walks nested lists and objects without recursion)."""
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, list):
            todo.extend(item)
        elif isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, float):
            raise InvalidMutationError(f"{key} holds {item!r}, which is not an integer")
        elif isinstance(item, int) and not _MIN_NUMBER <= item <= MAX_LABEL:
            raise InvalidMutationError(f"{key} holds {_short(item)}, out of the 64-bit range")


def _short(number: int) -> str:
    """``number`` in decimal, its middle digits left out past 40 digits."""
    text = str(number)
    return text if len(text) <= 40 else f"{text[:18]}...{text[-18:]} ({len(text)} digits)"


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    if isinstance(exc, OverflowError):
        return f"a number is out of range ({exc})"
    return one_line(exc)


class _LineEditor:
    """The dataset as the lines of one input edit it (:class:`LineEditor`): it
    maps the MutationIDs the input names to those its lines got here."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        self._ids: dict[int, int] = {}

    def note(self, op: dict[str, Any], result: dict[str, Any]) -> None:
        """The line ``op`` gave ``result``: its MutationID here."""
        source, here = op.get("MutationID"), result.get("MutationID")
        if isinstance(source, int) and isinstance(here, int):
            self._ids[source] = here

    # ------------------------------------------------------------ LineEditor
    @property
    def next_free_label(self) -> int:
        return self.ds.next_free_label

    def history_top(self, direction: Literal["undo", "redo"]) -> int:
        return self.ds.engine.history.top(direction)

    def local_id(self, mutation_id: int) -> int:
        return self._ids.get(mutation_id, mutation_id)

    # ---------------------------------------------------------------- Editor
    def merge(self, target: int, labels: list[int]) -> int:
        return self.ds.merge(target, labels)

    def cleave(
        self, body: int, supervoxels: list[int], *, cleaved_label: int | None = None
    ) -> tuple[int, int]:
        return self.ds.cleave(body, supervoxels, cleaved_label=cleaved_label)

    def split_supervoxel(
        self, supervoxel: int, rles: Any, *, split: int | None = None, remain: int | None = None
    ) -> tuple[int, int, int]:
        return self.ds.split_supervoxel(supervoxel, rles, split=split, remain=remain)

    def split(self, target: int, rles: Any, *, new_label: int | None = None) -> SplitResult:
        return self.ds.split(target, rles, new_label=new_label)

    def split_coarse(
        self, target: int, blocks: list[list[int]], new_label: int | None = None
    ) -> SplitResult:
        return self.ds.split_coarse(target, blocks, new_label)

    def next_label(self, n: int = 1, start: int | None = None) -> tuple[int, int]:
        return self.ds.next_label(n, start)

    def set_max_label(self, value: int) -> int | None:
        return self.ds.set_max_label(value)

    def undo(self) -> int:
        return self.ds.undo()

    def redo(self) -> int:
        return self.ds.redo()
