"""Counts in the UI's texts: plural-correct and thousands-separated."""

from __future__ import annotations

_IRREGULAR = {"body": "bodies"}


def count(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1: ``"1 mutation"``, ``"12,345 voxels"``,
    ``"2 bodies"``."""
    if n == 1:
        return f"1 {noun}"
    return f"{n:,} {_IRREGULAR.get(noun, noun + 's')}"
