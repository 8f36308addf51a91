"""Exact 2x2x2 downsampling of label and grayscale volumes.

Axis order is ``(z, y, x)``, C order. A voxel of the output summarises the
2x2x2 group of input voxels below it; at the far edges of an odd-sized axis a
group has fewer than 8 voxels and only the voxels inside the volume take part.

Label rules (see SPEC §2 "Downres rule"):

``"labelmap"`` (default, DVID labelmap/labelarray)
    Each non-zero label votes; most votes wins; a tie goes to the smaller label;
    an all-zero group gives 0.
``"labelblk"`` (what DVID's labelblk ``downsizeAdd`` does)
    Zero votes like any label; a tie goes to the larger label.

Grayscale: the mean of the group, rounded to nearest with halves rounded up,
``(sum + n // 2) // n`` with ``n`` the number of voxels of the group inside the
volume.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
from numba import njit
from numpy.typing import NDArray

from app.kernels.label_vote import downsample_kernel, downsample_palette_kernel
from app.kernels.palette import INDEX_DTYPES
from app.kernels.relabel import index_dtype

__all__ = [
    "RULES",
    "downsample_image",
    "downsample_image_into",
    "downsample_labels",
    "downsample_labels_into",
    "downsample_palette_into",
    "downsampled_shape",
]

#: Names of the supported label downsampling rules.
RULES: tuple[str, ...] = ("labelmap", "labelblk")

_LABEL_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.uint32), np.dtype(np.uint64))
_IMAGE_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))

U = TypeVar("U", bound=np.unsignedinteger[Any])

@njit(cache=True, nogil=True)
def _downsample_image_kernel(vol: NDArray[Any], out: NDArray[Any]) -> None:
    """Write the rounded 2x2x2 mean of C-contiguous 3D ``vol`` into ``out``."""
    nz, ny, nx = vol.shape
    oz_n, oy_n, ox_n = out.shape
    fz = nz // 2
    fy = ny // 2
    fx = nx // 2
    for oz in range(oz_n):
        z0 = 2 * oz
        z1 = min(z0 + 1, nz - 1)
        for oy in range(oy_n):
            y0 = 2 * oy
            y1 = min(y0 + 1, ny - 1)
            orow = out[oz, oy]
            r0 = vol[z0, y0]
            r1 = vol[z0, y1]
            r2 = vol[z1, y0]
            r3 = vol[z1, y1]
            start = 0
            if oz < fz and oy < fy:
                for ox in range(fx):
                    x = 2 * ox
                    s = (
                        np.uint32(r0[x])
                        + np.uint32(r0[x + 1])
                        + np.uint32(r1[x])
                        + np.uint32(r1[x + 1])
                        + np.uint32(r2[x])
                        + np.uint32(r2[x + 1])
                        + np.uint32(r3[x])
                        + np.uint32(r3[x + 1])
                    )
                    orow[ox] = (s + np.uint32(4)) // np.uint32(8)
                start = fx
            dz = 2 if z1 != z0 else 1
            dy = 2 if y1 != y0 else 1
            for ox in range(start, ox_n):
                x0 = 2 * ox
                dx = 2 if x0 + 1 < nx else 1
                s = np.uint32(0)
                n = np.uint32(0)
                for kz in range(dz):
                    for ky in range(dy):
                        for kx in range(dx):
                            s += np.uint32(vol[z0 + kz, y0 + ky, x0 + kx])
                            n += np.uint32(1)
                orow[ox] = (s + n // np.uint32(2)) // n


# --------------------------------------------------------------------------- front ends


def downsampled_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """Shape of the 2x2x2 downsampling of a volume of shape ``shape``.

    Parameters
    ----------
    shape : tuple of 3 ints
        ``(Z, Y, X)``.

    Returns
    -------
    tuple of 3 ints
        ``(ceil(Z/2), ceil(Y/2), ceil(X/2))``.
    """
    if len(shape) != 3:
        raise ValueError(f"shape must have 3 axes (z, y, x), got {tuple(shape)!r}")
    z, y, x = (int(s) for s in shape)
    return ((z + 1) // 2, (y + 1) // 2, (x + 1) // 2)


def _check_volume(vol: Any, name: str, dtypes: tuple[np.dtype[Any], ...]) -> NDArray[Any]:
    if not isinstance(vol, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(vol).__name__}")
    if vol.dtype not in dtypes:
        allowed = ", ".join(str(d) for d in dtypes)
        raise TypeError(f"{name} must have dtype in ({allowed}), got {vol.dtype}")
    if vol.ndim != 3:
        raise ValueError(f"{name} must be 3D (z, y, x), got ndim={vol.ndim}")
    if min(vol.shape) == 0:
        raise ValueError(f"{name} must not be empty, got shape {vol.shape}")
    return np.ascontiguousarray(vol)


def _check_out(out: Any, vol: NDArray[Any], labels: NDArray[Any] | None = None) -> None:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    dtype, of = (vol.dtype, "vol") if labels is None else (labels.dtype, "labels")
    if out.dtype != dtype:
        raise TypeError(f"out must have dtype {dtype} (same as {of}), got {out.dtype}")
    expected = downsampled_shape(vol.shape)
    if out.shape != expected:
        raise ValueError(
            f"out must have shape {expected} for vol of shape {vol.shape}, got {out.shape}"
        )
    if not out.flags.writeable:
        raise ValueError("out must be writeable")
    if np.shares_memory(out, vol):
        raise ValueError("out must not overlap vol")


def _rule_flag(rule: str) -> bool:
    if rule not in RULES:
        raise ValueError(f"unknown downsampling rule {rule!r}; expected one of {RULES}")
    return rule == "labelblk"


def downsample_labels(vol: NDArray[U], rule: str = "labelmap") -> NDArray[U]:
    """Downsample a label volume 2x2x2 by exact voting.

    Parameters
    ----------
    vol : NDArray[uint8 | uint16 | uint32 | uint64], shape (Z, Y, X)
        Labels; any memory layout (non-contiguous input is copied).
    rule : {"labelmap", "labelblk"}
        ``"labelmap"``: non-zero labels vote, most votes wins, ties go to the
        smaller label, an all-zero group gives 0. ``"labelblk"``: zero votes
        too, ties go to the larger label. At far edges only the voxels inside
        the volume vote.

    Returns
    -------
    NDArray, shape (ceil(Z/2), ceil(Y/2), ceil(X/2)), same dtype as ``vol``
        New C-contiguous array.

    Raises
    ------
    TypeError
        ``vol`` is not an unsigned-integer ndarray.
    ValueError
        ``vol`` is not 3D or is empty, or ``rule`` is unknown.
    """
    labelblk = _rule_flag(rule)
    v = _check_volume(vol, "vol", _LABEL_DTYPES)
    out = np.empty(downsampled_shape(v.shape), dtype=v.dtype)
    downsample_kernel(v, None, out, labelblk)
    return out


def downsample_labels_into(vol: NDArray[U], out: NDArray[U], rule: str = "labelmap") -> NDArray[U]:
    """Downsample a label volume 2x2x2 into a preallocated array (in place).

    Parameters
    ----------
    vol : NDArray[uint8 | uint16 | uint32 | uint64], shape (Z, Y, X)
        Labels; any memory layout.
    out : NDArray, shape (ceil(Z/2), ceil(Y/2), ceil(X/2)), same dtype as ``vol``
        Destination; may be a non-contiguous view (e.g. an octant of a larger
        block). Must not overlap ``vol``.
    rule : {"labelmap", "labelblk"}
        See :func:`downsample_labels`.

    Returns
    -------
    NDArray
        ``out``, filled.

    Raises
    ------
    TypeError
        Bad dtype of ``vol`` or ``out``.
    ValueError
        Bad shape of ``vol`` or ``out``, read-only ``out`` or unknown ``rule``.
    """
    labelblk = _rule_flag(rule)
    v = _check_volume(vol, "vol", _LABEL_DTYPES)
    _check_out(out, v)
    if out.flags.c_contiguous:
        downsample_kernel(v, None, out, labelblk)
    else:
        tmp = np.empty(out.shape, dtype=out.dtype)
        downsample_kernel(v, None, tmp, labelblk)
        out[...] = tmp
    return out


def downsample_palette_into(
    index: NDArray[Any], labels: NDArray[U], out: NDArray[U], rule: str = "labelmap"
) -> NDArray[U]:
    """:func:`downsample_labels_into` of the volume ``labels[index]``, read
    through the palette (the volume is never built).

    Parameters
    ----------
    index : NDArray[uint8 | uint16 | uint32], shape (Z, Y, X)
        Each voxel's entry in ``labels`` (all < ``labels.size``); any layout.
    labels : NDArray[uint8 | uint16 | uint32 | uint64], shape (k,)
        Label of each entry (entries may repeat a label).
    out : NDArray, shape (ceil(Z/2), ceil(Y/2), ceil(X/2)), ``labels``' dtype
        Destination; may be a non-contiguous view.
    rule : {"labelmap", "labelblk"}
        See :func:`downsample_labels`.

    Returns
    -------
    NDArray
        ``out``, filled: exactly ``downsample_labels(labels[index], rule)``.

    Raises
    ------
    TypeError
        Bad dtype of ``index``, ``labels`` or ``out``.
    ValueError
        Bad shapes, an index outside ``labels``, read-only ``out`` or unknown ``rule``.
    """
    labelblk = _rule_flag(rule)
    v = _check_volume(index, "index", INDEX_DTYPES)
    if not isinstance(labels, np.ndarray) or labels.ndim != 1 or labels.dtype not in _LABEL_DTYPES:
        raise TypeError("labels must be a 1D unsigned-integer numpy.ndarray")
    _check_out(out, v, labels)
    if int(v.max()) >= labels.size:
        raise ValueError(f"index holds values outside the {labels.size} labels")
    by_rank = np.unique(np.append(labels, labels.dtype.type(0)))
    rank = np.searchsorted(by_rank, labels).astype(index_dtype(by_rank.size - 1))
    downsample_palette_kernel(v, rank, by_rank, out, labelblk)
    return out


def downsample_image(vol: NDArray[U]) -> NDArray[U]:
    """Downsample a grayscale volume 2x2x2 by the rounded mean.

    Each output voxel is ``(sum + n // 2) // n`` over the ``n`` voxels of its
    group that lie inside the volume (``n = 8`` in the interior, fewer at far
    edges): the mean rounded to nearest, halves rounded up.

    Parameters
    ----------
    vol : NDArray[uint8 | uint16], shape (Z, Y, X)
        Intensities; any memory layout.

    Returns
    -------
    NDArray, shape (ceil(Z/2), ceil(Y/2), ceil(X/2)), same dtype as ``vol``

    Raises
    ------
    TypeError
        ``vol`` is not a uint8 or uint16 ndarray.
    ValueError
        ``vol`` is not 3D or is empty.
    """
    v = _check_volume(vol, "vol", _IMAGE_DTYPES)
    out = np.empty(downsampled_shape(v.shape), dtype=v.dtype)
    _downsample_image_kernel(v, out)
    return out


def downsample_image_into(vol: NDArray[U], out: NDArray[U]) -> NDArray[U]:
    """Downsample a grayscale volume 2x2x2 into a preallocated array (in place).

    Parameters
    ----------
    vol : NDArray[uint8 | uint16], shape (Z, Y, X)
        Intensities; any memory layout.
    out : NDArray, shape (ceil(Z/2), ceil(Y/2), ceil(X/2)), same dtype as ``vol``
        Destination; may be a non-contiguous view. Must not overlap ``vol``.

    Returns
    -------
    NDArray
        ``out``, filled.
    """
    v = _check_volume(vol, "vol", _IMAGE_DTYPES)
    _check_out(out, v)
    if out.flags.c_contiguous:
        _downsample_image_kernel(v, out)
    else:
        tmp = np.empty(out.shape, dtype=out.dtype)
        _downsample_image_kernel(v, tmp)
        out[...] = tmp
    return out
