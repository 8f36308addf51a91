"""Typed fields of ``segmend apply`` lines: each error names the field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.model.errors import InvalidMutationError


def int_field(op: Mapping[str, Any], key: str) -> int:
    """The integer ``op[key]`` (KeyError if absent)."""
    value = op[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidMutationError(f"{key} must be an integer, got {value!r}")
    return value


def opt_int_field(op: Mapping[str, Any], key: str) -> int | None:
    """The integer ``op[key]``, or None if absent or null."""
    return None if op.get(key) is None else int_field(op, key)


def int_list_field(op: Mapping[str, Any], key: str) -> list[int]:
    """The list of integers ``op[key]``."""
    values = op[key]
    if not isinstance(values, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in values
    ):
        raise InvalidMutationError(f"{key} must be a list of integers, got {values!r}")
    return values


def rles_field(op: Mapping[str, Any]) -> NDArray[np.int64]:
    """``op["RLEs"]``: a list of ``[x, y, z, length]`` integer lists, as ``(n, 4)``."""
    spans = op["RLEs"]
    if not isinstance(spans, list) or not all(
        isinstance(s, list) and len(s) == 4 and all(isinstance(v, int) for v in s)
        for s in spans
    ):
        raise InvalidMutationError("RLEs must be a list of [x, y, z, length] integer lists")
    return np.array(spans, dtype=np.int64).reshape(-1, 4)
