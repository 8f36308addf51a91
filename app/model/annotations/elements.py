"""Annotation elements in DVID's JSON form: parsed, checked, written back.

An element (DVID ``annotation.Element``) is a point with a kind, tags,
string properties and relationships to other points::

    {"Pos": [x, y, z], "Kind": "PreSyn", "Tags": ["t"], "Prop": {"k": "v"},
     "Rels": [{"Rel": "PreSynTo", "To": [x, y, z]}]}

``Pos`` is in s0 voxels, ``x`` the fastest axis (the volume's last).  Kinds
and relationships are DVID's strings (its Go code writes them as strings,
never the numbers of its wiki).  Written back in DVID's field order, with
``null`` for no tags, no properties or no relationships, as DVID does.

A post is parsed into a :class:`Batch` (:mod:`app.model.annotations.parsing`).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
from numpy.typing import NDArray

from app.model.errors import InvalidMutationError

KINDS = ("PostSyn", "PreSyn", "Gap", "Note", "Unknown")
"""DVID's element kinds (``ElementType``)."""
KIND_CODES = {kind: code for code, kind in enumerate(KINDS)}
"""Each kind's code: its index in :data:`KINDS` (a :class:`Batch`'s ``kinds``)."""
SYNAPTIC = ("PreSyn", "PostSyn")
"""The kinds counted per body (DVID's labelsz indexes)."""
RELATIONSHIPS = ("PostSynTo", "PreSynTo", "ConvergentTo", "GroupedWith", "UnknownRelationship")
"""DVID's relationship kinds (``RelationType``)."""

Point = tuple[int, int, int]
"""``(x, y, z)``: an element's position, s0 voxels."""


@dataclass(frozen=True)
class Relationship:
    """A relationship to the element at ``to`` (``rel``: one of :data:`RELATIONSHIPS`)."""

    rel: str
    to: Point

    def to_json(self) -> dict[str, Any]:
        return {"Rel": self.rel, "To": list(self.to)}


@dataclass(frozen=True)
class Element:
    """One annotation element (immutable).

    Attributes
    ----------
    pos : (int, int, int)
        ``(x, y, z)``, s0 voxels.
    kind : str
        One of :data:`KINDS`.
    tags : tuple of str
        Its tags, in the given order.
    prop : tuple of (str, str)
        Its properties, sorted by name (DVID's ``map[string]string``).
    rels : tuple of Relationship
        Its relationships, in the given order.
    """

    pos: Point
    kind: str
    tags: tuple[str, ...] = ()
    prop: tuple[tuple[str, str], ...] = ()
    rels: tuple[Relationship, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """DVID's JSON object (``Pos, Kind, Tags, Prop, Rels``; ``null`` when empty)."""
        return {
            "Pos": list(self.pos),
            "Kind": self.kind,
            "Tags": list(self.tags) or None,
            "Prop": dict(self.prop) or None,
            "Rels": [r.to_json() for r in self.rels] or None,
        }

    def text(self) -> bytes:
        """:meth:`to_json` as compact JSON text, UTF-8 (as stored)."""
        return msgspec.json.encode(self.to_json())

    def without_rels(self) -> dict[str, Any]:
        """DVID's JSON object without ``Rels`` (its label and tag lists' form)."""
        out = self.to_json()
        del out["Rels"]
        return out

    def moved(self, to: Point) -> Element:
        """The element at ``to``."""
        return Element(to, self.kind, self.tags, self.prop, self.rels)

    def relinked(self, old: Point, new: Point | None) -> Element:
        """The element with its relationships to ``old`` pointing at ``new``
        (None: dropped)."""
        rels: list[Relationship] = []
        for r in self.rels:
            if r.to != old:
                rels.append(r)
            elif new is not None:
                rels.append(Relationship(r.rel, new))
        return Element(self.pos, self.kind, self.tags, self.prop, tuple(rels))


@dataclass(frozen=True)
class Batch:
    """Elements column by column, as a post writes them.

    Attributes
    ----------
    pos : NDArray[np.int64], shape (n, 3)
        Their ``(x, y, z)``.
    kinds : NDArray[np.uint8], shape (n,)
        Their kinds' codes (:data:`KIND_CODES`).
    tags : list of tuple of str
        Their tags.
    texts : list of bytes
        Their :meth:`Element.text`.
    """

    pos: NDArray[np.int64]
    kinds: NDArray[np.uint8]
    tags: list[tuple[str, ...]]
    texts: list[bytes]

    def __len__(self) -> int:
        return len(self.kinds)

    @classmethod
    def of(cls, elements: Sequence[Element]) -> Batch:
        """The batch of ``elements``."""
        return cls(np.array([e.pos for e in elements], np.int64).reshape(-1, 3),
                   kind_codes([e.kind for e in elements]), [e.tags for e in elements],
                   [e.text() for e in elements])


def kind_codes(kinds: Sequence[str]) -> NDArray[np.uint8]:
    """The codes (:data:`KIND_CODES`) of ``kinds`` (each one of :data:`KINDS`)."""
    return np.fromiter(map(KIND_CODES.__getitem__, kinds), np.uint8, len(kinds))


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection inside (it would run over and over while
    millions of objects are made, none of them garbage)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def element_of(value: Any, shape: tuple[int, int, int], where: str) -> Element:
    """One element of a JSON object (see :func:`parse_elements`)."""
    if not isinstance(value, Mapping):
        raise InvalidMutationError(f"{where} is not a JSON object")
    pos = point_of(value.get("Pos"), shape, f"{where}: Pos")
    kind = value.get("Kind", "Unknown")
    if kind not in KINDS:
        raise InvalidMutationError(
            f"{where}: unknown Kind {kind!r} (one of {', '.join(KINDS)})")
    tags = value.get("Tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise InvalidMutationError(f"{where}: Tags must be a list of non-empty strings")
    prop = value.get("Prop") or {}
    if not isinstance(prop, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in prop.items()):
        raise InvalidMutationError(f"{where}: Prop must map strings to strings")
    rels = value.get("Rels") or []
    if not isinstance(rels, list):
        raise InvalidMutationError(f"{where}: Rels must be a list")
    return Element(
        pos, kind, tuple(dict.fromkeys(tags)), tuple(sorted(prop.items())),
        tuple(_relationship(r, shape, f"{where}: Rels[{j}]") for j, r in enumerate(rels)),
    )


def _relationship(value: Any, shape: tuple[int, int, int], where: str) -> Relationship:
    if not isinstance(value, Mapping):
        raise InvalidMutationError(f"{where} is not a JSON object")
    rel = value.get("Rel")
    if rel not in RELATIONSHIPS:
        raise InvalidMutationError(
            f"{where}: unknown Rel {rel!r} (one of {', '.join(RELATIONSHIPS)})")
    return Relationship(rel, point_of(value.get("To"), shape, f"{where}: To"))


def point_of(value: Any, shape: tuple[int, int, int], what: str) -> Point:
    """``value`` as an ``(x, y, z)`` inside a volume of ``shape`` ``(z, y, x)``.

    Raises
    ------
    app.model.errors.InvalidMutationError
        Not three integers, or outside the volume: one line naming ``what``.
    """
    if (not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise InvalidMutationError(f"{what} must be [x, y, z] integers, got {value!r}")
    x, y, z = (int(v) for v in value)
    if not (0 <= z < shape[0] and 0 <= y < shape[1] and 0 <= x < shape[2]):
        raise InvalidMutationError(
            f"{what} {[x, y, z]} is outside the volume (x < {shape[2]}, y < {shape[1]}, "
            f"z < {shape[0]})")
    return (x, y, z)


def parse_point(text: str, shape: tuple[int, int, int]) -> Point:
    """A ``x,y,z`` (or DVID's ``x_y_z``) command-line point, inside the volume."""
    parts = text.replace("_", ",").split(",")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise InvalidMutationError(f"a point is x,y,z integers, got {text!r}") from None
    return point_of(values, shape, "point")
