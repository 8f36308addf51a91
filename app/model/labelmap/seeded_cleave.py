"""The seeded split in labelmap mode: whole supervoxels given to the seed groups.

A supervoxel is never cut: each one of the body goes to the seed group whose
watershed part holds most of its voxels in the crop (a vote, :func:`assign`),
and a supervoxel that holds a seed goes to that seed's group whatever the vote
(:func:`seeded_supervoxels`).  Rules:

- **Ties** go to the highest-numbered group among the tied ones: with two
  groups, a supervoxel split evenly stays in the body, as the last group keeps
  the body's id.
- **Voxels outside the crop** do not vote: a supervoxel partly outside counts
  its voxels inside only; one with no voxel in the crop stays with the last
  group (as the voxels of the body outside the crop do in voxel mode).
- **Two seeds of different groups in one supervoxel** cannot be separated by
  whole supervoxels: refused, naming the supervoxel.
- **A group left without a supervoxel** is refused (the seeds make it
  impossible: every group holds its seeds' supervoxels; the check guards it).

Pure NumPy, no I/O: :func:`app.model.labelmap.seeded_split.seeded_cleave`
reads the crop and runs the watershed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from app.model.errors import InvalidMutationError


@dataclass(frozen=True)
class Assignment:
    """The seed group of each supervoxel the crop holds.

    Attributes
    ----------
    supervoxels : ndarray, shape (n,), uint64
        Sorted, distinct, non-zero.
    groups : ndarray, shape (n,), uint8
        The group (1-based) of each.
    n_groups : int
        The number of seed groups; a supervoxel of the body not listed belongs
        to the last one.
    """

    supervoxels: NDArray[np.uint64]
    groups: NDArray[np.uint8]
    n_groups: int

    def of_group(self, group: int) -> NDArray[np.uint64]:
        """The listed supervoxels of ``group`` (1-based), sorted, uint64."""
        return self.supervoxels[self.groups == group]

    def paint(self, svs: NDArray[np.uint64], body: NDArray[np.bool_]) -> NDArray[np.uint8]:
        """The groups as voxels: what the cleaves will commit.

        Parameters
        ----------
        svs : ndarray, shape (dz, dy, dx), uint64
            Supervoxels of a box.
        body : ndarray, shape of ``svs``, bool
            The body's voxels in it.

        Returns
        -------
        ndarray, shape of ``svs``, uint8
            0 off the body; k on the body's voxels whose supervoxel is of group k
            (the last group for a supervoxel not listed).
        """
        at = np.minimum(np.searchsorted(self.supervoxels, svs), len(self.supervoxels) - 1)
        parts = np.where(self.supervoxels[at] == svs, self.groups[at], self.n_groups)
        return np.where(body, parts, 0).astype(np.uint8)


def seeded_supervoxels(seed_svs: Sequence[Sequence[int]]) -> dict[int, int]:
    """The supervoxel under each seed → its group (1-based).

    Parameters
    ----------
    seed_svs : sequence of sequences of int
        For each group, the supervoxel under each of its seeds.

    Raises
    ------
    app.model.errors.InvalidMutationError
        A supervoxel holds seeds of two groups (one line, naming it).
    """
    owner: dict[int, int] = {}
    for k, group in enumerate(seed_svs, start=1):
        for sv in (int(v) for v in group):
            first = owner.setdefault(sv, k)
            if first != k:
                raise InvalidMutationError(
                    f"supervoxel {sv} holds seeds of groups {first} and {k}: a seeded split "
                    "in labelmap mode moves whole supervoxels; split the supervoxel first "
                    "(split-supervoxel)"
                )
    return owner


def assign(
    parts: NDArray[np.uint8], svs: NDArray[np.uint64], n_groups: int, seeded: dict[int, int]
) -> Assignment:
    """Each supervoxel of the crop to the group whose part holds most of its voxels.

    Parameters
    ----------
    parts : ndarray, shape (dz, dy, dx), uint8
        The watershed's parts in the crop: 0 off the body, k in group k's part.
    svs : ndarray, shape of ``parts``, uint64
        The crop's supervoxels.
    n_groups : int
        The number of seed groups (at least 2, ``parts`` at most this).
    seeded : dict of int to int
        Supervoxel → group, as :func:`seeded_supervoxels` gives it: these go to
        their group whatever the vote.

    Returns
    -------
    Assignment
        Ties go to the highest-numbered tied group (see the module's rules).

    Raises
    ------
    app.model.errors.InvalidMutationError
        A group gets no supervoxel.
    """
    on_body = parts > 0
    ids, inverse = np.unique(svs[on_body], return_inverse=True)
    width = n_groups + 1
    votes = np.bincount(inverse * width + parts[on_body], minlength=len(ids) * width)
    votes = votes.reshape(len(ids), width)[:, 1:]
    groups = (n_groups - np.argmax(votes[:, ::-1], axis=1)).astype(np.uint8)
    forced = np.array(sorted(seeded), np.uint64)
    missed = np.setdiff1d(forced, ids)  # (a seed's supervoxel is in the crop: a guard)
    ids = np.concatenate([ids.astype(np.uint64), missed])
    groups = np.concatenate([groups, np.full(len(missed), n_groups, np.uint8)])
    order = np.argsort(ids)
    ids, groups = ids[order], groups[order]
    groups[np.searchsorted(ids, forced)] = [seeded[v] for v in forced.tolist()]
    empty = sorted(set(range(1, n_groups + 1)) - set(np.unique(groups).tolist()))
    if empty:
        raise InvalidMutationError(
            f"seed group {empty[0]} gets no supervoxel: a seeded split in labelmap mode "
            "moves whole supervoxels, each to the group holding most of its voxels"
        )
    return Assignment(ids, groups, n_groups)
