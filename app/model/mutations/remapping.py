"""What the labelmap kinds share: plans that change only the mapping, and the
supervoxel lists their records keep in the blob store."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import accumulate

import numpy as np
from numpy.typing import NDArray

from app.model.errors import InvalidMutationError
from app.model.mutations.base import BlockChange, EditContext, Mutation, Outcome, Plan, Recording


def body_supervoxels(ctx: EditContext, body: int, what: str) -> NDArray[np.uint64]:
    """The supervoxels of ``body`` (sorted), or InvalidMutationError naming it."""
    svs = ctx.supervoxels_of(body)
    if svs.size == 0:
        raise InvalidMutationError(f"{what} {body} has no supervoxels")
    return svs


def remap_plan(
    record: Callable[[Recording], Mutation],
    *,
    n_ids: int = 1,
    undoable: bool = True,
    new_label: int = 0,
    release: Callable[[], None] | None = None,
) -> Plan:
    """The plan of a mutation that changes the mapping only: no block changes,
    no index rows; ``record`` makes its record (its :meth:`~Mutation.moves`
    are the change), ``new_label`` is a body it makes."""

    def finish(changes: list[BlockChange]) -> Outcome:
        assert not changes
        return Outcome([], record, n_ids, new_label)

    return Plan([], None, finish, undoable=undoable, release=release)


def encode_groups(groups: Sequence[NDArray[np.uint64]]) -> bytes:
    """Supervoxel lists as one blob (little-endian uint64, one list after another)."""
    return b"".join(np.asarray(g, dtype="<u8").tobytes() for g in groups)


def decode_groups(data: bytes, counts: Sequence[int]) -> list[NDArray[np.uint64]]:
    """The lists :func:`encode_groups` wrote, of ``counts`` supervoxels each."""
    flat = np.frombuffer(data, dtype="<u8").astype(np.uint64)
    if flat.size != sum(counts):
        raise InvalidMutationError(
            f"a supervoxel list holds {flat.size} ids, its record says {sum(counts)}"
        )
    # (slices: np.split costs tens of µs on a few ids)
    return [flat[end - n:end] for n, end in zip(counts, accumulate(counts), strict=True)]
