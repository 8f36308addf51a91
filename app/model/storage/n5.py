"""Reading an N5 dataset (the block format of Saalfeld lab's N5, Paintera, BigDataViewer).

A dataset is a folder whose ``attributes.json`` gives ``dimensions`` and
``blockSize`` in x, y, z order, the ``dataType`` and the ``compression``.
Block (gx, gy, gz) is the file ``gx/gy/gz`` under it: a big-endian header
(uint16 mode, uint16 ndim, ndim × uint32 block size, x first), then the
compressed elements, big-endian, x fastest — which, read as a C-ordered array,
is the block in z, y, x order.  A missing block reads as 0.  Edge blocks may
be stored clipped to the volume or whole (both are read).  zarr-python does
not read N5; this reader implements the part of the format ``build`` needs.
"""

from __future__ import annotations

import bz2
import itertools
import json
import lzma
import math
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import blosc
import numpy as np
from numpy.typing import NDArray

from app.model.errors import FormatError

__all__ = ["N5Dataset", "is_n5_dataset"]

_DTYPES = ("uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
           "float32", "float64")
_DEFAULT_MODE = 0
_MODE_NAMES = {1: "varlength", 2: "object"}


def _zstd(data: bytes) -> bytes:
    from numcodecs import Zstd

    return bytes(Zstd().decode(data))


_DECODERS: dict[str, Callable[[bytes], bytes]] = {
    "raw": bytes,
    "gzip": lambda data: zlib.decompress(data, 32 + zlib.MAX_WBITS),  # gzip or zlib header
    "bzip2": bz2.decompress,
    "xz": lzma.decompress,
    "zstd": _zstd,
    "blosc": blosc.decompress,
}


def is_n5_dataset(path: Path) -> bool:
    """Whether the folder ``path`` is an N5 dataset (its attributes give dimensions)."""
    try:
        attrs = json.loads((path / "attributes.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(attrs, dict) and "dimensions" in attrs


class N5Dataset:
    """An N5 dataset, read-only, sliced like a NumPy array in z, y, x order.

    Parameters
    ----------
    path : Path
        The dataset's folder.

    Attributes
    ----------
    shape : tuple of int
        (z, y, x) — the reverse of the N5 ``dimensions``.
    dtype : numpy.dtype
        The native-endian element type.
    block_size : tuple of int
        (z, y, x).

    Raises
    ------
    app.model.errors.FormatError
        Naming ``path``: no N5 dataset there, or an element type or a
        compression this reader does not read.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            attrs = json.loads((path / "attributes.json").read_text())
            dims = [int(v) for v in attrs["dimensions"]]
            block = [int(v) for v in attrs["blockSize"]]
            type_name = str(attrs["dataType"])
            compression = attrs.get("compression", {"type": attrs.get("compressionType", "raw")})
            codec = str(compression["type"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise FormatError(f"{path}: not an N5 dataset ({exc})") from None
        if type_name not in _DTYPES:
            raise FormatError(f"{path}: N5 data type {type_name!r} is not supported")
        if codec not in _DECODERS:
            raise FormatError(
                f"{path}: N5 compression {codec!r} is not supported "
                f"(supported: {', '.join(_DECODERS)})"
            )
        if len(block) != len(dims) or min(block, default=0) < 1 or min(dims, default=1) < 0:
            raise FormatError(f"{path}: bad N5 dimensions {dims} or block size {block}")
        self.shape: tuple[int, ...] = tuple(reversed(dims))
        self.block_size: tuple[int, ...] = tuple(reversed(block))
        self.dtype: np.dtype[Any] = np.dtype(type_name)
        self._stored = self.dtype.newbyteorder(">")
        self._decode = _DECODERS[codec]

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    def __getitem__(self, key: Any) -> NDArray[Any]:
        """The voxels selected by integers and slices of step 1 (and ``...``)."""
        keys = key if isinstance(key, tuple) else (key,)
        if keys.count(Ellipsis) > 1:
            raise IndexError("an index can only have a single ellipsis ('...')")
        if Ellipsis in keys:
            at = keys.index(Ellipsis)
            keys = keys[:at] + (slice(None),) * (self.ndim - len(keys) + 1) + keys[at + 1 :]
        if len(keys) > self.ndim:
            raise IndexError(f"too many indices for a {self.ndim}D N5 dataset")
        keys = keys + (slice(None),) * (self.ndim - len(keys))
        start, stop, dropped = [], [], []
        for axis, (k, n) in enumerate(zip(keys, self.shape, strict=True)):
            if isinstance(k, slice):
                lo, hi, step = k.indices(n)
                if step != 1:
                    raise IndexError("N5 datasets are sliced with a step of 1 only")
                start.append(lo)
                stop.append(max(lo, hi))
            elif isinstance(k, int | np.integer):
                i = int(k) + n if k < 0 else int(k)
                if not 0 <= i < n:
                    raise IndexError(f"index {k} is out of bounds for axis {axis} of size {n}")
                start.append(i)
                stop.append(i + 1)
                dropped.append(axis)
            else:
                raise IndexError(f"N5 datasets take integers and slices, not {k!r}")
        region = self.read_region(tuple(start), tuple(stop))
        return region.squeeze(axis=tuple(dropped)) if dropped else region

    def read_region(self, start: tuple[int, ...], stop: tuple[int, ...]) -> NDArray[Any]:
        """The voxels in ``[start, stop)`` (z, y, x, inside the volume), a new array."""
        out = np.zeros(tuple(b - a for a, b in zip(start, stop, strict=True)), self.dtype)
        if out.size == 0:
            return out
        ranges = [
            range(a // s, math.ceil(b / s))
            for a, b, s in zip(start, stop, self.block_size, strict=True)
        ]
        for grid in itertools.product(*ranges):
            block = self._read_block(grid)
            if block is None:
                continue
            origin = [g * s for g, s in zip(grid, self.block_size, strict=True)]
            lo = [max(a, o) for a, o in zip(start, origin, strict=True)]
            hi = [
                min(b, o + e, n)
                for b, o, e, n in zip(stop, origin, block.shape, self.shape, strict=True)
            ]
            if any(h <= low for low, h in zip(lo, hi, strict=True)):
                continue
            dst = tuple(slice(a - s, b - s) for a, b, s in zip(lo, hi, start, strict=True))
            src = tuple(slice(a - o, b - o) for a, b, o in zip(lo, hi, origin, strict=True))
            out[dst] = block[src]
        return out

    def _read_block(self, grid: tuple[int, ...]) -> NDArray[Any] | None:
        """Block ``grid`` (z, y, x order) as stored (its shape from its header),
        or None if it is absent."""
        block_path = self.path.joinpath(*(str(g) for g in reversed(grid)))
        try:
            raw = block_path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise FormatError(f"{block_path}: unreadable N5 block ({exc})") from None
        try:
            mode, ndim = struct.unpack_from(">HH", raw)
            if mode != _DEFAULT_MODE:
                kind = _MODE_NAMES.get(mode, f"mode {mode}")
                raise FormatError(f"{block_path}: {kind} N5 blocks are not supported")
            if ndim != self.ndim:
                raise FormatError(f"{block_path}: a {ndim}D block in a {self.ndim}D N5 dataset")
            dims = struct.unpack_from(f">{ndim}I", raw, 4)
            data = self._decode(raw[4 + 4 * ndim :])
            count = math.prod(dims)
            if len(data) != count * self.dtype.itemsize:
                raise FormatError(
                    f"{block_path}: N5 block holds {len(data)} bytes, "
                    f"expected {count * self.dtype.itemsize} for a block of {list(dims)}"
                )
        except (struct.error, zlib.error, lzma.LZMAError, OSError, ValueError, RuntimeError) as exc:
            raise FormatError(f"{block_path}: damaged N5 block ({exc})") from None
        return np.frombuffer(data, self._stored, count).reshape(tuple(reversed(dims)))
