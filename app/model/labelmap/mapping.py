"""The supervoxel → body mapping of a labelmap dataset, and the files it is read from.

A :class:`Mapping` holds DVID labelmap's forward map as two arrays (the mapped
supervoxels, sorted, and their bodies): 16 bytes per supervoxel, searched in
O(log n).  The reverse map (a body's supervoxels) is built on first use: 16
bytes per supervoxel more.  Mapping files come as DVID's ``GET /mappings``
text (``sv body`` lines), an ``(N, 2)`` uint64 ``.npy``, or an HDF5 dataset
(``FILE.h5:/path``).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.typing import ArrayLike, NDArray

from app.kernels import check_mapping, map_block
from app.model.errors import FormatError


@dataclass(frozen=True)
class Mapping:
    """Supervoxel → body.

    Attributes
    ----------
    svs : NDArray[uint64], shape (n,)
        The mapped supervoxels, strictly increasing; read-only.
    bodies : NDArray[uint64], shape (n,)
        The body of each (0: a retired supervoxel); read-only.  A supervoxel
        not in ``svs`` is its own body.
    """

    svs: NDArray[np.uint64]
    bodies: NDArray[np.uint64]

    def __post_init__(self) -> None:
        check_mapping(self.svs, self.bodies)
        self.svs.flags.writeable = False
        self.bodies.flags.writeable = False

    @classmethod
    def from_pairs(cls, pairs: ArrayLike, source: str = "the mapping") -> Mapping:
        """The mapping of ``(supervoxel, body)`` rows, in any order.

        Raises
        ------
        app.model.errors.FormatError
            Not ``(N, 2)`` non-negative integers, or a supervoxel mapped twice
            (named, with ``source``).
        """
        arr = np.asarray(pairs)
        if arr.ndim != 2 or arr.shape[1] != 2 or not np.issubdtype(arr.dtype, np.integer):
            raise FormatError(
                f"{source}: expected (N, 2) integer (supervoxel, body) rows, "
                f"got {arr.dtype} {arr.shape}"
            )
        if arr.size and np.issubdtype(arr.dtype, np.signedinteger) and int(arr.min()) < 0:
            raise FormatError(f"{source}: negative ids")
        svs = np.ascontiguousarray(arr[:, 0], dtype=np.uint64)
        bodies = np.ascontiguousarray(arr[:, 1], dtype=np.uint64)
        if svs.size > 1 and not bool((svs[1:] > svs[:-1]).all()):  # (a stored one is sorted)
            order = np.argsort(svs, kind="stable")
            svs, bodies = svs[order], bodies[order]
            twice = np.flatnonzero(svs[1:] == svs[:-1])
            if twice.size:
                raise FormatError(f"{source}: supervoxel {int(svs[twice[0]])} is mapped twice")
        return cls(svs, bodies)

    @property
    def pairs(self) -> NDArray[np.uint64]:
        """``(n, 2)`` uint64 ``(supervoxel, body)`` rows, sorted by supervoxel."""
        return np.stack([self.svs, self.bodies], axis=1)

    @property
    def nbytes(self) -> int:
        """Bytes held (the reverse map included once built)."""
        held = self.svs.nbytes + self.bodies.nbytes
        reverse = self.__dict__.get("_by_body", ())
        return held + sum(a.nbytes for a in reverse)

    def body_of(self, svs: NDArray[np.integer[Any]] | Sequence[int]) -> NDArray[np.uint64]:
        """The body of each supervoxel of ``svs`` (an array of any shape, or ints)."""
        if isinstance(svs, np.ndarray):
            if svs.dtype.kind not in "ui" or (svs.size and int(svs.min()) < 0):
                raise ValueError("supervoxels must be non-negative integers")
            arr = svs.astype(np.uint64)
        else:  # (element by element: ids above 2**53 stay exact)
            if any(int(v) < 0 for v in svs):
                raise ValueError("supervoxels must be non-negative integers")
            arr = np.array([int(v) for v in svs], np.uint64)
        if arr.size == 0:
            return arr
        return map_block(np.atleast_1d(arr), self.svs, self.bodies, checked=True).reshape(arr.shape)

    def build_reverse(self) -> None:
        """Build the reverse map now (it is built on first use otherwise)."""
        self._by_body  # noqa: B018

    def supervoxels_of(self, body: int) -> NDArray[np.uint64]:
        """The supervoxels the mapping gives to ``body``, sorted (without the
        unmapped supervoxel ``body`` itself, which is its own body unless mapped)."""
        ranked, svs = self._by_body
        key = np.uint64(body)
        lo, hi = np.searchsorted(ranked, key, "left"), np.searchsorted(ranked, key, "right")
        return svs[lo:hi]

    @functools.cached_property
    def _by_body(self) -> tuple[NDArray[np.uint64], NDArray[np.uint64]]:
        """The reverse map: the bodies sorted, and the supervoxels in that order
        (sorted within a body)."""
        order = np.argsort(self.bodies, kind="stable")  # (svs are sorted: they stay so)
        ranked, svs = self.bodies[order], self.svs[order]
        ranked.flags.writeable = svs.flags.writeable = False
        return ranked, svs


def read_mapping(spec: str | Path) -> Mapping:
    """The mapping in a file: ``FILE.h5:/dataset`` (an ``(N, 2)`` integer
    dataset), ``FILE.npy``, or a text file of ``sv body`` lines.

    Raises
    ------
    app.model.errors.FormatError
        Missing or unreadable file, or not a mapping (one line naming why).
    """
    text = str(spec)
    file, _, inner = text.partition(":") if ".h5:" in text or ".hdf5:" in text else (text, "", "")
    path = Path(file)
    if not path.is_file():
        raise FormatError(f"{path}: no such mapping file")
    try:
        if inner:
            with h5py.File(path, "r") as f:
                if inner not in f or not isinstance(f[inner], h5py.Dataset):
                    raise FormatError(f"{path}: no dataset {inner}")
                return Mapping.from_pairs(f[inner][...], f"{text}")
        if path.suffix == ".npy":
            return Mapping.from_pairs(np.load(path, allow_pickle=False), str(path))
        return Mapping.from_pairs(_text_pairs(path.read_bytes(), str(path)), str(path))
    except (OSError, ValueError) as exc:
        raise FormatError(f"{path}: unreadable mapping ({exc})") from exc


def _text_pairs(data: bytes, source: str) -> NDArray[np.uint64]:
    """``sv body`` lines (DVID's ``GET /mappings``) as ``(N, 2)`` rows."""
    if b"-" in data:
        raise FormatError(f"{source}: negative ids")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # (older NumPy only warns)
        try:
            values: Any = np.fromstring(data, dtype=np.uint64, sep=" ")  # (any whitespace)
        except (DeprecationWarning, ValueError):
            expected = "expected lines of two integers 'supervoxel body'"
            raise FormatError(f"{source}: {expected}") from None
    if values.size % 2:
        raise FormatError(f"{source}: an odd number of ids (a line without its body?)")
    return values.reshape(-1, 2)
