"""Printing results: JSON for machines, text for people, progress on stderr."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def emit(args: argparse.Namespace, result: Any, fmt: Callable[[Any], str] | None = None) -> None:
    """Print ``result`` at once (an edit's is durable when printed): JSON with
    ``--json`` (or without a formatter), else ``fmt(result)``."""
    if getattr(args, "json", False) or fmt is None:
        print(json.dumps(result, sort_keys=False), flush=True)
    else:
        print(fmt(result), flush=True)


@contextmanager
def progress_bar(desc: str, unit: str = "it") -> Iterator[Callable[[int, int], None]]:
    """A ``progress(done, total)`` callback drawing a bar on standard error."""
    from tqdm import tqdm  # (not loaded by commands that draw no bar, such as the app's)

    bar = tqdm(desc=desc, unit=unit, file=sys.stderr, disable=None, leave=False)

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()


SQLITE_MAX_INT = 2**63 - 1
"""The largest integer SQLite takes (MutationIDs, counts of rows)."""


def bounded_int(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer from ``low`` (to ``high``), else a one-line
    argument error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {text}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {text}")
        return value

    return parse
