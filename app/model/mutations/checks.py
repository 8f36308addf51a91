"""Argument checks shared by the mutation kinds: each error names what was wrong."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.model.errors import InvalidMutationError
from app.model.geometry import Coord
from app.model.mutations.base import EditContext

MAX_LABEL = (1 << 64) - 1
"""The largest uint64 label."""


def require_label(value: Any, what: str) -> int:
    """``value`` as a valid non-zero uint64 label, or InvalidMutationError naming it."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidMutationError(f"{what} must be an integer label, got {value!r}")
    label = int(value)
    if label == 0:
        raise InvalidMutationError(f"{what} is 0: label 0 is background and cannot be edited")
    if not 0 < label <= MAX_LABEL:
        raise InvalidMutationError(f"{what} {label} is not a uint64 label")
    return label


def require_new_label(new_label: int, target: int) -> int:
    """A requested new label for a split of ``target``."""
    label = require_label(new_label, "new label")
    if label == target:
        raise InvalidMutationError(f"new label {label} is the target itself")
    return label


def blocks_of(ctx: EditContext, label: int, what: str) -> dict[Coord, int]:
    """The s0 blocks of ``label`` (from the index), or InvalidMutationError if it has none."""
    blocks = ctx.label_blocks(label)
    if not blocks:
        raise InvalidMutationError(f"{what} {label} has no voxels")
    return blocks


def block_origin(coord: Coord, block_size: tuple[int, int, int]) -> tuple[int, int, int]:
    """The s0 voxel (z, y, x) at which block ``coord`` starts."""
    return (coord[0] * block_size[0], coord[1] * block_size[1], coord[2] * block_size[2])
