"""Seeded split: a seeded watershed that divides one body into the parts its
seed groups claim.

The watershed runs on a crop around the seeds, grown while a part that would
leave the body (any group but the last) touches a crop face where the body
goes on; every voxel of the body outside the crop, or not reached from any
seed inside it, stays with the last group (it keeps the body's id).
:meth:`app.model.dataset.Dataset.split_by_seeds` commits the result as
ordinary splits (in labelmap mode :mod:`app.model.labelmap.seeded_split` gives
whole supervoxels to the parts and cleaves them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.segmentation import watershed

from app.model.dataset_reads import DatasetReads
from app.model.errors import CancelledError, InvalidMutationError
from app.model.geometry import Coord
from app.model.mutations.checks import require_new_label

Voxel = tuple[int, int, int]
"""An s0 voxel (z, y, x)."""

MARGIN = 16
"""Voxels the first crop extends past the seeds' bounding box on every side;
also the least a face moves when the crop grows."""

IMAGE_SIGMA = 0.5
"""Gaussian smoothing (voxels) of the grayscale before it is inverted."""

SEED_RADIUS = 3
"""Each seed marks the body's voxels within this distance (voxels, Euclidean)
of it, the nearest seed's group first: a seed clicked on a dark organelle or
next to a membrane does not stay a lone voxel that the other parts flood
around (measured on the shipped cube, see benchmarks/bench_seeded_split.py)."""

MAX_GROUPS = 255
"""Seed groups one split takes at most (parts are numbered in a uint8)."""


@dataclass(frozen=True)
class SeededSplit:
    """The parts of one body, as a seeded watershed found them.

    Attributes
    ----------
    body : int
        The body split.
    origin : tuple of 3 int
        s0 voxel (z, y, x) of ``parts[0, 0, 0]``.
    parts : ndarray, shape (dz, dy, dx), uint8
        0: not the body; k: the part of seed group k (1-based).  Voxels of the
        body outside this box belong to the last group.
    """

    body: int
    origin: Voxel
    parts: NDArray[np.uint8]

    def mask(self, group: int) -> NDArray[np.bool_]:
        """Voxels of seed group ``group`` (1-based), shape of :attr:`parts`, bool."""
        return self.parts == group


def seeded_split(
    reads: DatasetReads,
    body: int,
    seeds: Sequence[Sequence[Voxel]],
    *,
    cancelled: Callable[[], bool] | None = None,
) -> SeededSplit:
    """Divide ``body`` among seed groups by a seeded watershed (connectivity 1).

    The landscape is the grayscale, smoothed (Gaussian, :data:`IMAGE_SIGMA`)
    and inverted, so that the parts meet on the dark membranes of EM data;
    a dataset without grayscale uses the inverted Euclidean distance to the
    body's surface instead, so that the parts meet at necks.  The watershed
    is restricted to the body's voxels; its markers are the body's voxels
    within :data:`SEED_RADIUS` of each seed (a voxel near seeds of two groups
    goes to the nearest; each seed's own voxel to its group).  Nothing is
    changed.

    Runs on the caller's thread (tens of milliseconds for a body of 10⁴ voxels,
    seconds for one spanning a 250³ cube): a GUI runs it on a worker thread.
    The crop starts :data:`MARGIN` voxels around the seeds and doubles along
    an axis whenever a part of a group but the last touches that face where
    the body goes on.

    Parameters
    ----------
    reads : DatasetReads
        The dataset (read-only or writable; its label index must exist).
    body : int
        The label to split.
    seeds : sequence of sequences of (z, y, x)
        At least 2 groups of at least one s0 voxel each, every one on ``body``
        and in no other group.
    cancelled : callable, optional
        Polled before each watershed; when it returns True the split stops.

    Returns
    -------
    SeededSplit
        Group k's part is ``mask(k)`` at ``origin``.

    Raises
    ------
    app.model.errors.InvalidMutationError
        Fewer than 2 groups, an empty group, a seed outside the volume, not on
        ``body``, or in two groups.
    app.model.errors.CancelledError
        ``cancelled()`` returned True (polled before each watershed).
    app.model.errors.SegmendError
        The dataset has no label index yet (a read-only file never opened for
        writing).
    """
    stop = cancelled or (lambda: False)
    with reads.snapshot():
        groups = check_seeds(reads, int(body), seeds)
        limit_lo, limit_hi = _body_box(reads, int(body))
        points = np.array([v for group in groups for v in group])
        lo = np.maximum(points.min(axis=0) - MARGIN, limit_lo)
        hi = np.minimum(points.max(axis=0) + 1 + MARGIN, limit_hi)
        while True:
            if stop():
                raise CancelledError(f"seeded split of body {body} cancelled")
            parts, outside = _parts_in_crop(reads, int(body), groups, lo, hi)
            before = (lo.copy(), hi.copy())
            for axis, high in _faces_to_grow(parts, outside, len(groups)):
                step = max(MARGIN, int(hi[axis] - lo[axis]))
                if high:
                    hi[axis] = min(hi[axis] + step, limit_hi[axis])
                else:
                    lo[axis] = max(lo[axis] - step, limit_lo[axis])
            if np.array_equal(lo, before[0]) and np.array_equal(hi, before[1]):
                origin = (int(lo[0]), int(lo[1]), int(lo[2]))
                return SeededSplit(int(body), origin, parts)


def check_seeds(
    reads: DatasetReads, body: int, seeds: Sequence[Sequence[Voxel]]
) -> list[list[Voxel]]:
    """The seed groups as lists of int voxels (z, y, x), checked as
    :func:`seeded_split` checks them (it reads the labels at the seeds only,
    so a read-only dataset without label index will do).

    Raises
    ------
    app.model.errors.InvalidMutationError
        Naming the first thing wrong; seeds are named x,y,z, as the command
        line takes them.
    """
    if len(seeds) < 2:
        raise InvalidMutationError(f"a seeded split needs at least 2 seed groups, got {len(seeds)}")
    if len(seeds) > MAX_GROUPS:
        raise InvalidMutationError(
            f"a seeded split takes at most {MAX_GROUPS} seed groups, got {len(seeds)}"
        )
    shape = reads.shape
    groups: list[list[Voxel]] = []
    owner: dict[Voxel, int] = {}
    for k, group in enumerate(seeds, start=1):
        if len(group) == 0:
            raise InvalidMutationError(f"seed group {k} is empty")
        voxels: list[Voxel] = []
        for seed in group:
            voxel = _voxel(seed)
            name = _xyz(voxel)
            if not all(0 <= v < n for v, n in zip(voxel, shape, strict=True)):
                raise InvalidMutationError(
                    f"seed {name} is outside the volume (x,y,z size {_xyz(shape)})"
                )
            if owner.setdefault(voxel, k) != k:
                raise InvalidMutationError(
                    f"seed {name} is in seed groups {owner[voxel]} and {k}"
                )
            voxels.append(voxel)
        groups.append(voxels)
    with reads.snapshot():
        level = reads.labels(0)
        for voxel in owner:
            found = int(level[voxel])
            if found != body:
                raise InvalidMutationError(
                    f"seed {_xyz(voxel)} is on label {found}, not on body {body}"
                )
    return groups


def _voxel(seed: Sequence[int]) -> Voxel:
    """A seed as three ints (z, y, x), or InvalidMutationError."""
    values = list(seed)
    if len(values) != 3 or not all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values
    ):
        raise InvalidMutationError(f"a seed is three integer voxel coordinates, got {seed!r}")
    return (int(values[0]), int(values[1]), int(values[2]))


def _xyz(zyx: Sequence[int]) -> str:
    """A (z, y, x) triple written x,y,z."""
    return f"{zyx[2]},{zyx[1]},{zyx[0]}"


def _body_box(reads: DatasetReads, body: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The box [lo, hi) of the s0 blocks that hold ``body`` (z, y, x), in the volume."""
    blocks = reads.label_blocks(body)
    if not blocks:
        raise InvalidMutationError(f"body {body} has no voxels")
    return blocks_box(reads, blocks)


def blocks_box(
    reads: DatasetReads, blocks: Iterable[Coord]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The box [lo, hi) of s0 voxels (z, y, x, int64) of some s0 blocks (at least
    one), clipped to the volume."""
    coords = np.array(list(blocks), dtype=np.int64)
    size = np.array(reads.block_size, dtype=np.int64)
    lo = coords.min(axis=0) * size
    hi = np.minimum((coords.max(axis=0) + 1) * size, np.array(reads.shape, dtype=np.int64))
    return lo, hi


def crop_of(split: SeededSplit) -> tuple[slice, slice, slice]:
    """The s0 box of a split's :attr:`~SeededSplit.parts`, as slices."""
    z, y, x = (slice(o, o + n) for o, n in zip(split.origin, split.parts.shape, strict=True))
    return z, y, x


def check_new_labels(
    reads: DatasetReads, body: int, n_groups: int, new_labels: Sequence[int] | None
) -> list[int | None]:
    """The new bodies of a seeded split of ``body`` in ``n_groups`` groups: one per
    group but the last, each None (the next free label) unless ``new_labels`` names it.

    Raises
    ------
    app.model.errors.InvalidMutationError
        ``new_labels`` has the wrong length, repeats a label, or names the body or
        a label in use (in labelmap mode: a body or a supervoxel with voxels).
    """
    labels: list[int | None] = [None] * (n_groups - 1)
    if new_labels is None:
        return labels
    wanted = [require_new_label(label, int(body)) for label in new_labels]
    if len(wanted) != len(labels):
        raise InvalidMutationError(
            f"{n_groups} seed groups need {len(labels)} new labels, got {len(wanted)}"
        )
    if len(set(wanted)) != len(wanted):
        raise InvalidMutationError(f"new labels {wanted} repeat a label")
    for label in wanted:
        if reads.label_size(label) or (
            reads.labelmap and reads.label_size(label, supervoxels=True)
        ):
            raise InvalidMutationError(f"new label {label} is in use")
    return list(wanted)


def _parts_in_crop(
    reads: DatasetReads,
    body: int,
    groups: list[list[Voxel]],
    lo: NDArray[np.int64],
    hi: NDArray[np.int64],
) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
    """The watershed in the crop [lo, hi).

    Returns
    -------
    parts : ndarray, shape ``hi - lo``, uint8
        As :attr:`SeededSplit.parts`.
    outside : ndarray, shape ``hi - lo + 2``, bool
        The body in the crop grown by one voxel per side (False past the volume).
    """
    shape = np.array(reads.shape, dtype=np.int64)
    out_lo = np.maximum(lo - 1, 0)
    out_hi = np.minimum(hi + 1, shape)
    labels = reads.labels(0)[tuple(slice(a, b) for a, b in zip(out_lo, out_hi, strict=True))]
    outside = np.zeros(tuple(hi - lo + 2), dtype=bool)
    pad = 1 - (lo - out_lo)
    outside[tuple(slice(p, p + n) for p, n in zip(pad, labels.shape, strict=True))] = (
        labels == body
    )
    mask = outside[1:-1, 1:-1, 1:-1]
    markers = _markers(mask, groups, lo)
    basins = watershed(_landscape(reads, mask, lo, hi), markers, connectivity=1, mask=mask)
    parts = basins.astype(np.uint8)
    parts[mask & (parts == 0)] = len(groups)
    return parts, outside


def _markers(
    mask: NDArray[np.bool_], groups: list[list[Voxel]], lo: NDArray[np.int64]
) -> NDArray[np.int32]:
    """The watershed's markers, shape of ``mask``: k on the voxels of ``mask``
    within :data:`SEED_RADIUS` of a seed of group k (1-based) and nearer to it
    than to any other group's seed (ties: the lower group), 0 elsewhere."""
    r = SEED_RADIUS
    grid = np.mgrid[-r : r + 1, -r : r + 1, -r : r + 1].reshape(3, -1).T
    ball = grid[(grid**2).sum(axis=1) <= r * r]
    reach = (ball**2).sum(axis=1)
    shape = np.array(mask.shape)
    where, distance, group = [], [], []
    for k, seeds in enumerate(groups, start=1):
        for voxel in seeds:
            points = ball + (np.array(voxel) - lo)
            inside = np.all((points >= 0) & (points < shape), axis=1)
            points, near = points[inside], reach[inside]
            keep = mask[tuple(points.T)]
            where.append(np.ravel_multi_index(tuple(points[keep].T), mask.shape))
            distance.append(near[keep])
            group.append(np.full(int(keep.sum()), k, dtype=np.int32))
    flat, dist, owner = np.concatenate(where), np.concatenate(distance), np.concatenate(group)
    order = np.lexsort((owner, dist))
    voxels, first = np.unique(flat[order], return_index=True)
    markers = np.zeros(mask.shape, dtype=np.int32)
    markers.flat[voxels] = owner[order][first]
    return markers


def _landscape(
    reads: DatasetReads, mask: NDArray[np.bool_], lo: NDArray[np.int64], hi: NDArray[np.int64]
) -> NDArray[np.float32]:
    """What the watershed floods, shape of ``mask``: the smoothed grayscale
    inverted, or without grayscale the inverted distance to the body's surface."""
    if not reads.has_image:
        return -ndimage.distance_transform_edt(mask).astype(np.float32)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    image = np.asarray(reads.image(0)[box], dtype=np.float32)
    return -ndimage.gaussian_filter(image, IMAGE_SIGMA)


def _faces_to_grow(
    parts: NDArray[np.uint8], outside: NDArray[np.bool_], n_groups: int
) -> list[tuple[int, bool]]:
    """The crop faces (axis, high side?) where a part of a group but the last
    touches the face and the body goes on beyond it."""
    leaving = (parts > 0) & (parts < n_groups)
    grow: list[tuple[int, bool]] = []
    for axis in range(3):
        for high in (False, True):
            face = np.take(leaving, -1 if high else 0, axis=axis)
            beyond = np.take(outside, -1 if high else 0, axis=axis)[1:-1, 1:-1]
            if np.any(face & beyond):
                grow.append((axis, high))
    return grow
