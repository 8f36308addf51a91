"""Reading a DVID ``POST /elements`` body into a :class:`~.elements.Batch`.

Elements of the usual shape (JSON objects with integer positions inside the
volume, known kinds and relationships, string tags and properties) are read
by msgspec, in C, into typed structs whose bounds are the volume's, then
written back as DVID's JSON text.  The first body that is not of that shape
goes element by element through :func:`~.elements.element_of`, which names
the problem in one line (or accepts it: an odd form DVID accepts too, such
as ``"Tags": 0``).  Both give the same batch.
"""

from __future__ import annotations

import json
from functools import cache
from itertools import chain
from operator import attrgetter
from typing import Annotated, Any, Literal

import msgspec
import numpy as np
from numpy.typing import NDArray

from app.model.annotations.elements import Batch, Point, element_of, kind_codes, paused_gc
from app.model.errors import InvalidMutationError

_Kind = Literal["PostSyn", "PreSyn", "Gap", "Note", "Unknown"]
_Rel = Literal["PostSynTo", "PreSynTo", "ConvergentTo", "GroupedWith", "UnknownRelationship"]
_Tag = Annotated[str, msgspec.Meta(min_length=1)]

_WRITE = msgspec.json.Encoder(order="deterministic")
"""DVID's text of a struct: fields in their order, properties sorted by name."""


def parse_elements(data: bytes | str, shape: tuple[int, int, int]) -> Batch:
    """The elements of a DVID ``POST /elements`` body.

    Parameters
    ----------
    data : bytes or str
        A JSON list of element objects.
    shape : (int, int, int)
        The s0 volume's shape ``(z, y, x)``: positions must be inside it.

    Raises
    ------
    app.model.errors.InvalidMutationError
        Malformed JSON, an element that is not one (naming its index and the
        field), a position outside the volume, an unknown kind or
        relationship, or two elements at one position: one line.
    """
    with paused_gc():
        batch = _usual(data, shape)
        if batch is None:
            try:
                values = json.loads(data)
            except (ValueError, UnicodeDecodeError) as exc:
                raise InvalidMutationError(f"elements are not JSON: {exc}") from None
            if not isinstance(values, list):
                raise InvalidMutationError(
                    f"elements must be a JSON list of objects, got {type(values).__name__}")
            batch = Batch.of([element_of(v, shape, f"element {i}")
                              for i, v in enumerate(values)])
        _check_distinct(batch.pos, shape)
    return batch


def _check_distinct(pos: NDArray[np.int64], shape: tuple[int, int, int]) -> None:
    """Raise if two of the positions ``(x, y, z)``, inside ``shape``, are one."""
    ordered = np.sort((pos[:, 2] * shape[1] + pos[:, 1]) * shape[2] + pos[:, 0])
    if not (ordered[1:] == ordered[:-1]).any():
        return
    seen: dict[Point, int] = {}
    for i, p in enumerate(map(tuple, pos.tolist())):
        first = seen.setdefault(p, i)
        if first != i:
            raise InvalidMutationError(f"elements {first} and {i} are both at {list(p)}")


@cache
def _reader(shape: tuple[int, int, int]) -> msgspec.json.Decoder[Any]:
    """A decoder of a list of usual elements inside a volume of ``shape``."""
    zs, ys, xs = shape
    point = tuple[Annotated[int, msgspec.Meta(ge=0, lt=xs)],
                  Annotated[int, msgspec.Meta(ge=0, lt=ys)],
                  Annotated[int, msgspec.Meta(ge=0, lt=zs)]]
    rel = msgspec.defstruct("Rel", [("Rel", _Rel), ("To", point)], gc=False)
    element = msgspec.defstruct("Element", [
        ("Pos", point), ("Kind", _Kind, "Unknown"), ("Tags", list[_Tag] | None, None),
        ("Prop", dict[str, str] | None, None), ("Rels", list[rel] | None, None)], gc=False)  # type: ignore[valid-type]
    return msgspec.json.Decoder(list[element])  # type: ignore[valid-type]


def _usual(data: bytes | str, shape: tuple[int, int, int]) -> Batch | None:
    """The batch of ``data`` if each of its elements is of the usual shape, else None."""
    try:
        elements = _reader(shape).decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    tags: list[tuple[str, ...]] = [()] * len(elements)
    # (DVID writes no tags, properties or relationships as null)
    for i, e in enumerate(elements):
        if e.Tags:
            e.Tags = list(dict.fromkeys(e.Tags))
            tags[i] = tuple(e.Tags)
        else:
            e.Tags = None
        if not e.Prop:
            e.Prop = None
        if not e.Rels:
            e.Rels = None
    pos = np.fromiter(chain.from_iterable(map(attrgetter("Pos"), elements)), np.int64,
                      3 * len(elements)).reshape(-1, 3)
    texts = _WRITE.encode_lines(elements).split(b"\n")  # (JSON escapes newlines)
    return Batch(pos, kind_codes(list(map(attrgetter("Kind"), elements))), tags, texts[:-1])
