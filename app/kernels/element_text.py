"""DVID's ``ElementPos`` lists as JSON text, from arrays.

An annotation sync message lists the elements that changed body as
``[{"Label":L,"Kind":"K","Pos":[x,y,z]},...]`` (Go's ``json.Marshal`` of
``[]ElementPos``).  A post of a million elements lists them all; formatting
each with Python's ``%`` costs about a microsecond and a half an element.
Here one pass counts the digits (so the text is allocated once, exactly)
and a second writes them.

The kind names are the caller's (plain ASCII words with nothing to escape);
a kind is given as its index into them.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from numba import njit
from numpy.typing import NDArray

__all__ = ["element_positions_json"]

_OPEN = np.frombuffer(b'{"Label":', np.uint8)
_KIND = np.frombuffer(b',"Kind":"', np.uint8)
_POS = np.frombuffer(b'","Pos":[', np.uint8)
_CLOSE = np.frombuffer(b"]}", np.uint8)


@njit(cache=True, nogil=True, inline="always")
def _width(v: np.uint64) -> int:
    """Decimal digits of ``v``."""
    ten = np.uint64(10)
    n = 1
    while v >= ten:
        v //= ten
        n += 1
    return n


@njit(cache=True, nogil=True, inline="always")
def _put_digits(out: NDArray[np.uint8], at: int, v: np.uint64) -> int:
    """Write ``v`` in decimal at ``out[at:]``; returns the end."""
    ten = np.uint64(10)
    end = at + _width(v)
    i = end
    while True:
        i -= 1
        out[i] = 48 + np.int64(v % ten)
        v //= ten
        if i == at:
            return end


@njit(cache=True, nogil=True, inline="always")
def _put_int(out: NDArray[np.uint8], at: int, v: np.int64) -> int:
    """Write the signed ``v`` in decimal at ``out[at:]``; returns the end."""
    if v < 0:
        out[at] = 45  # "-"
        return _put_digits(out, at + 1, np.uint64(-(v + 1)) + np.uint64(1))
    return _put_digits(out, at, np.uint64(v))


@njit(cache=True, nogil=True, inline="always")
def _int_width(v: np.int64) -> int:
    if v < 0:
        return 1 + _width(np.uint64(-(v + 1)) + np.uint64(1))
    return _width(np.uint64(v))


@njit(cache=True, nogil=True, inline="always")
def _put_bytes(out: NDArray[np.uint8], at: int, text: NDArray[np.uint8]) -> int:
    for j in range(text.size):
        out[at + j] = text[j]
    return at + text.size


@njit(cache=True, nogil=True)
def _text_size(labels: NDArray[np.uint64], kinds: NDArray[np.uint8],
               pos: NDArray[np.int64], name_sizes: NDArray[np.int64], fixed: int) -> int:
    """Bytes of the list (``fixed``: those of one item's literal parts)."""
    total = 1 + labels.size  # "[", the commas and "]"
    for i in range(labels.size):
        total += (fixed + _width(labels[i]) + name_sizes[kinds[i]] + _int_width(pos[i, 0])
                  + _int_width(pos[i, 1]) + _int_width(pos[i, 2]))
    return total


@njit(cache=True, nogil=True)
def _write_text(labels: NDArray[np.uint64], kinds: NDArray[np.uint8], pos: NDArray[np.int64],
                names: NDArray[np.uint8], name_sizes: NDArray[np.int64],
                open_: NDArray[np.uint8], kind: NDArray[np.uint8], pos_: NDArray[np.uint8],
                close: NDArray[np.uint8], out: NDArray[np.uint8]) -> None:
    """Write the list into ``out`` (exactly :func:`_text_size` bytes)."""
    at = 0
    out[at] = 91  # "["
    at += 1
    for i in range(labels.size):
        if i:
            out[at] = 44  # ","
            at += 1
        at = _put_bytes(out, at, open_)
        at = _put_digits(out, at, labels[i])
        at = _put_bytes(out, at, kind)
        k = kinds[i]
        for j in range(name_sizes[k]):
            out[at + j] = names[k, j]
        at += name_sizes[k]
        at = _put_bytes(out, at, pos_)
        at = _put_int(out, at, pos[i, 0])
        out[at] = 44  # ","
        at = _put_int(out, at + 1, pos[i, 1])
        out[at] = 44
        at = _put_int(out, at + 1, pos[i, 2])
        at = _put_bytes(out, at, close)
    out[at] = 93  # "]"


def element_positions_json(labels: NDArray[np.uint64], kinds: NDArray[np.uint8],
                           pos: NDArray[np.int64], kind_names: tuple[str, ...]) -> str:
    """``[{"Label":L,"Kind":"K","Pos":[x,y,z]},...]`` of n elements, ``null`` if none.

    Parameters
    ----------
    labels : NDArray[np.uint64], shape (n,)
        Each element's label.
    kinds : NDArray[np.uint8], shape (n,)
        Each element's kind, an index into ``kind_names``.
    pos : NDArray[np.int64], shape (n, 3)
        Each element's ``(x, y, z)``.
    kind_names : tuple of str
        The kinds' names: ASCII letters and digits (nothing to escape).

    Raises
    ------
    ValueError
        Arrays of other dtypes or shapes, a kind past ``kind_names``, or a
        name that is not plain ASCII letters and digits.
    """
    labels, kinds, pos = _checked(labels, kinds, pos, len(kind_names))
    if not labels.size:
        return "null"
    names, sizes = _names(kind_names)
    fixed = _OPEN.size + _KIND.size + _POS.size + 2 + _CLOSE.size  # (the 2: Pos's commas)
    out = np.empty(_text_size(labels, kinds, pos, sizes, fixed), np.uint8)
    _write_text(labels, kinds, pos, names, sizes, _OPEN, _KIND, _POS, _CLOSE, out)
    return out.tobytes().decode("ascii")


@cache
def _names(kind_names: tuple[str, ...]) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """The names' bytes, a row each (zero-padded), and their lengths."""
    if not all(name.isascii() and name.isalnum() for name in kind_names):
        raise ValueError(f"kind names must be ASCII letters and digits, got {kind_names!r}")
    names = np.zeros((len(kind_names), max(map(len, kind_names))), np.uint8)
    for i, name in enumerate(kind_names):
        names[i, :len(name)] = np.frombuffer(name.encode(), np.uint8)
    return names, np.array([len(n) for n in kind_names], np.int64)


def _checked(labels: NDArray[np.uint64], kinds: NDArray[np.uint8], pos: NDArray[np.int64],
             n_kinds: int) -> tuple[NDArray[np.uint64], NDArray[np.uint8], NDArray[np.int64]]:
    for name, array, dtype, ndim in (("labels", labels, np.uint64, 1),
                                     ("kinds", kinds, np.uint8, 1), ("pos", pos, np.int64, 2)):
        if not isinstance(array, np.ndarray) or array.dtype != dtype or array.ndim != ndim:
            raise ValueError(f"{name} must be a {ndim}D {np.dtype(dtype).name} array")
    if pos.shape != (labels.size, 3) or kinds.size != labels.size:
        raise ValueError(f"labels {labels.shape}, kinds {kinds.shape} and pos {pos.shape} "
                         "must be (n,), (n,) and (n, 3)")
    if kinds.size and int(kinds.max()) >= n_kinds:
        raise ValueError(f"kind {int(kinds.max())} is past the {n_kinds} kind names")
    return (np.ascontiguousarray(labels), np.ascontiguousarray(kinds),
            np.ascontiguousarray(pos))
