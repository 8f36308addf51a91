"""Parsing posted annotation elements (issue 17): the one-loop reading of the
usual elements gives exactly what checking each one as an :class:`Element`
gives, the same batch or the same one-line error."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.model.annotations.elements import (
    KINDS,
    RELATIONSHIPS,
    Batch,
    Point,
    element_of,
)
from app.model.annotations.parsing import parse_elements
from app.model.errors import InvalidMutationError

SHAPE = (5, 6, 7)
"""A volume ``(z, y, x)``: positions collide often, some fall outside."""


def reference(data: str, shape: tuple[int, int, int]) -> Batch:
    """Every element checked as an :class:`Element`, then distinct positions."""
    values = json.loads(data)
    elements = [element_of(v, shape, f"element {i}") for i, v in enumerate(values)]
    seen: dict[Point, int] = {}
    for i, element in enumerate(elements):
        first = seen.setdefault(element.pos, i)
        if first != i:
            raise InvalidMutationError(
                f"elements {first} and {i} are both at {list(element.pos)}")
    return Batch.of(elements)


def outcome(parse: Any, data: str) -> tuple[Any, ...]:
    try:
        batch = parse(data, SHAPE)
    except InvalidMutationError as exc:
        return ("error", str(exc))
    return (batch.pos.tolist(), batch.kinds.tolist(), batch.tags, batch.texts)


coordinate = st.one_of(st.integers(-1, 7), st.sampled_from([True, 1.0, "1", None]))
point = st.one_of(st.lists(st.integers(0, 4), min_size=3, max_size=3),
                  st.lists(coordinate, min_size=2, max_size=4), st.none(), st.just("1,2,3"))
text = st.text(min_size=0, max_size=4)
relationship = st.one_of(
    st.fixed_dictionaries({"Rel": st.sampled_from(RELATIONSHIPS), "To": point}),
    st.fixed_dictionaries({"To": point, "Rel": st.sampled_from([*RELATIONSHIPS, "Near", 3])}),
    st.dictionaries(st.sampled_from(["Rel", "To", "Extra"]), st.one_of(text, point)),
    text,
)
element = st.fixed_dictionaries(
    {},
    optional={
        "Pos": point,
        "Kind": st.sampled_from([*KINDS, "Synapse", None, 1]),
        "Tags": st.one_of(st.none(), st.lists(st.one_of(text, st.integers()), max_size=3), text,
                          st.just(0)),
        "Prop": st.one_of(st.none(), st.dictionaries(text, text, max_size=3),
                          st.dictionaries(text, st.one_of(text, st.integers()), max_size=2),
                          st.lists(text, max_size=1)),
        "Rels": st.one_of(st.none(), st.lists(relationship, max_size=3), text),
        "Other": text,
    },
)
usual = st.fixed_dictionaries({
    "Pos": st.lists(st.integers(0, 4), min_size=3, max_size=3),
    "Kind": st.sampled_from(KINDS),
    "Tags": st.one_of(st.none(), st.lists(text, max_size=3)),
    "Prop": st.one_of(st.none(), st.dictionaries(text, text, max_size=3)),
    "Rels": st.one_of(st.none(), st.lists(st.fixed_dictionaries(
        {"Rel": st.sampled_from(RELATIONSHIPS),
         "To": st.lists(st.integers(0, 4), min_size=3, max_size=3)}), max_size=3)),
})


@settings(max_examples=400, deadline=None)
@given(st.lists(usual, max_size=8), st.one_of(st.none(), element, st.integers()),
       st.integers(0, 8))
def test_the_fast_reading_gives_what_each_element_checked_gives(
        values: list[Any], odd: Any, at: int) -> None:
    if odd is not None:  # (an element that may not be one, somewhere)
        values.insert(at, odd)
    data = json.dumps(values, ensure_ascii=False)
    assert outcome(parse_elements, data) == outcome(reference, data)


@pytest.mark.parametrize("data", [
    '[{"Pos": [1, 2, 3], "Kind": "PreSyn", "Tags": ["b", "a", "b"], "Prop": {"z": "1", "a": '
    '"\\u00e9\\n<&>"}, "Rels": [{"To": [0, 0, 0], "Rel": "PreSynTo", "x": 1}]}]',
    '[{"Pos": [1, 2, 3]}, {"Pos": [3, 2, 1], "Tags": [], "Prop": {}, "Rels": []}]',
    '[{"Pos": [1, 2, 3]}, {"Pos": [0, 0, 0]}, {"Pos": [1, 2, 3]}]',
    '[{"Pos": [1, 2, 3], "Kind": "Gap"}, {"Pos": [1, true, 3]}]',
    "[]",
])
def test_written_back_as_dvid_writes_them(data: str) -> None:
    assert outcome(parse_elements, data) == outcome(reference, data)
    if outcome(reference, data)[0] != "error":
        batch = parse_elements(data, SHAPE)
        assert [json.loads(t) for t in batch.texts] == [
            element_of(v, SHAPE, "e").to_json() for v in json.loads(data)]
        assert batch.pos.dtype == np.int64 and batch.pos.shape == (len(batch), 3)
