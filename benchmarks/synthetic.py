"""Synthetic label and image volumes for benchmarks.

All generators are deterministic functions of their arguments, return C-ordered
``(z, y, x)`` arrays and use label values both below and above ``2**32`` so that
64-bit code paths are exercised.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

__all__ = ["grayscale_image", "label_table", "noisy_labels", "voronoi_labels"]


def label_table(n: int, seed: int) -> NDArray[np.uint64]:
    """Return ``n`` distinct, non-zero uint64 labels, half of them above ``2**32``.

    Parameters
    ----------
    n : int
        Number of labels.
    seed : int
        Random seed.

    Returns
    -------
    NDArray[np.uint64], shape (n,)
        Distinct labels in random order.
    """
    rng = np.random.default_rng(seed)
    small = np.zeros(0, dtype=np.uint64)
    while small.size < n:
        draw = rng.integers(1, 2**31, size=2 * n + 16, dtype=np.int64).astype(np.uint64)
        small = np.unique(np.concatenate([small, draw]))
    small = rng.permutation(small)[:n]
    large = small + np.uint64(2**40) + np.uint64(2**63)
    pick = rng.random(n) < 0.5
    return np.where(pick, large, small).astype(np.uint64)


def voronoi_labels(
    shape: tuple[int, int, int],
    n_seeds: int,
    seed: int = 0,
    *,
    coarse: int = 4,
    wobble: float = 3.0,
    noise: float = 0.02,
) -> NDArray[np.uint64]:
    """Voronoi-like supervoxels: each voxel takes the label of its nearest seed.

    The nearest seed is computed exactly (k-d tree) on a grid ``coarse`` times
    coarser than the volume, then looked up for every voxel at a displaced
    position: a smooth wave field of amplitude ``wobble`` voxels makes the
    boundaries curved rather than grid-aligned, and a fraction ``noise`` of the
    voxels is displaced by one extra voxel, making boundaries ragged as in real
    supervoxel data.

    Parameters
    ----------
    shape : tuple of 3 ints
        Output shape ``(Z, Y, X)``.
    n_seeds : int
        Number of seeds (supervoxels).
    seed : int
        Random seed.
    coarse : int
        Coarsening factor of the exact Voronoi grid.
    wobble : float
        Amplitude, in voxels, of the smooth boundary displacement.
    noise : float
        Fraction of voxels with an extra random one-voxel displacement.

    Returns
    -------
    NDArray[np.uint64], shape ``shape``
        Labels (no zeros), half of the labels above ``2**32``.
    """
    rng = np.random.default_rng(seed)
    zs, ys, xs = (int(s) for s in shape)
    cshape = tuple(-(-s // coarse) + 1 for s in (zs, ys, xs))
    seeds = rng.random((n_seeds, 3)) * np.array(cshape, dtype=np.float64)
    tree = cKDTree(seeds)
    grid = np.stack(
        np.meshgrid(*[np.arange(c, dtype=np.float64) + 0.5 for c in cshape], indexing="ij"),
        axis=-1,
    ).reshape(-1, 3)
    _, nearest = tree.query(grid, k=1, workers=-1)
    labels = label_table(n_seeds, seed + 1)
    coarse_labels = labels[np.asarray(nearest).reshape(cshape)]

    out = np.empty((zs, ys, xs), dtype=np.uint64)
    yy = np.arange(ys, dtype=np.float64)[:, None]
    xx = np.arange(xs, dtype=np.float64)[None, :]
    freq = rng.uniform(0.03, 0.12, size=(3, 3))
    phase = rng.uniform(0.0, 2 * np.pi, size=3)
    cz, cy, cx = cshape
    for z in range(zs):
        # smooth displacement of each axis, a function of the other coordinates
        dz = wobble * np.sin(freq[0, 1] * yy + freq[0, 2] * xx + phase[0] + freq[0, 0] * z)
        dy = wobble * np.sin(freq[1, 0] * z + freq[1, 2] * xx + phase[1] + freq[1, 1] * yy)
        dx = wobble * np.sin(freq[2, 0] * z + freq[2, 1] * yy + phase[2] + freq[2, 2] * xx)
        pz = z + dz
        py = yy + dy
        px = xx + dx
        if noise > 0:
            kick = rng.random((3, ys, xs)) < noise
            sign = rng.integers(0, 2, size=(3, ys, xs)) * 2 - 1
            pz = pz + kick[0] * sign[0]
            py = py + kick[1] * sign[1]
            px = px + kick[2] * sign[2]
        iz = np.clip(np.floor(pz / coarse).astype(np.int64), 0, cz - 1)
        iy = np.clip(np.floor(py / coarse).astype(np.int64), 0, cy - 1)
        ix = np.clip(np.floor(px / coarse).astype(np.int64), 0, cx - 1)
        out[z] = coarse_labels[iz, iy, ix]
    return out


def noisy_labels(
    shape: tuple[int, int, int], n_labels: int, seed: int = 0, *, zero_fraction: float = 0.1
) -> NDArray[np.uint64]:
    """Uniform random labels from a small set, plus some zeros.

    Parameters
    ----------
    shape : tuple of 3 ints
        Output shape ``(Z, Y, X)``.
    n_labels : int
        Number of distinct non-zero labels.
    seed : int
        Random seed.
    zero_fraction : float
        Probability that a voxel is 0 (background).

    Returns
    -------
    NDArray[np.uint64], shape ``shape``
        Labels.
    """
    rng = np.random.default_rng(seed)
    table = np.concatenate([np.zeros(1, np.uint64), label_table(n_labels, seed + 1)])
    out = np.empty(tuple(int(s) for s in shape), dtype=np.uint64)
    for z in range(out.shape[0]):
        u = rng.random(out.shape[1:])
        idx = rng.integers(1, n_labels + 1, size=out.shape[1:], dtype=np.int64)
        idx[u < zero_fraction] = 0
        out[z] = table[idx]
    return out


def grayscale_image(
    shape: tuple[int, int, int], dtype: type[np.unsignedinteger] = np.uint8, seed: int = 0
) -> NDArray[np.unsignedinteger]:
    """Uniform random grayscale image of the given unsigned dtype.

    Parameters
    ----------
    shape : tuple of 3 ints
        Output shape ``(Z, Y, X)``.
    dtype : numpy unsigned integer type
        ``np.uint8`` or ``np.uint16``.
    seed : int
        Random seed.

    Returns
    -------
    NDArray, shape ``shape``, dtype ``dtype``
    """
    rng = np.random.default_rng(seed)
    return rng.integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype, endpoint=True)
