"""Tests of app.kernels.element_text against app.kernels.reference (exact equality)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from app.kernels import element_positions_json
from app.kernels.reference import element_positions_json_ref

KINDS = ("PostSyn", "PreSyn", "Gap", "Note", "Unknown")
TOP = np.iinfo(np.uint64).max
EDGES = np.array([0, 1, 9, 10, 99, 100, 2**63 - 1, 2**63, TOP], np.uint64)
SIGNED = np.array([0, 1, -1, 9, -10, 2**62, 2**63 - 1, -(2**63)], np.int64)


def same_as_reference(labels: Any, kinds: Any, pos: Any, names: tuple[str, ...] = KINDS
                      ) -> None:
    got = element_positions_json(labels, kinds, pos, names)
    assert got == element_positions_json_ref(labels, kinds, pos, names)


@pytest.mark.parametrize("n", [0, 1, 2, 7, 64, 1001])
def test_element_positions_equal_reference(n: int) -> None:
    rng = np.random.default_rng(n)
    labels = np.concatenate([EDGES, rng.integers(0, TOP, n, dtype=np.uint64,
                                                 endpoint=True)])[:n]
    kinds = rng.integers(0, len(KINDS), n).astype(np.uint8)
    pos = rng.choice(np.concatenate([SIGNED, np.arange(300)]), (n, 3)).astype(np.int64)
    same_as_reference(labels, kinds, pos)


def test_every_edge_label_and_coordinate_and_kind() -> None:
    n = len(EDGES) * len(SIGNED)
    labels = np.repeat(EDGES, len(SIGNED))
    pos = np.stack([np.tile(SIGNED, len(EDGES)), np.tile(SIGNED[::-1], len(EDGES)),
                    np.zeros(n, np.int64)], axis=1)
    same_as_reference(labels, (np.arange(n) % len(KINDS)).astype(np.uint8), pos)


def test_none_is_null_and_one_is_a_list() -> None:
    assert element_positions_json(np.zeros(0, np.uint64), np.zeros(0, np.uint8),
                                  np.zeros((0, 3), np.int64), KINDS) == "null"
    assert element_positions_json(np.array([7], np.uint64), np.array([1], np.uint8),
                                  np.array([[1, 2, 3]], np.int64), KINDS) == \
        '[{"Label":7,"Kind":"PreSyn","Pos":[1,2,3]}]'


def test_strided_inputs_are_read_as_given() -> None:
    labels = np.arange(20, dtype=np.uint64)[::2]
    pos = np.arange(60, dtype=np.int64).reshape(10, 6)[:, ::2]
    same_as_reference(labels, np.zeros(10, np.uint8), pos)


@pytest.mark.parametrize(("labels", "kinds", "pos", "names", "match"), [
    (np.zeros(2, np.int64), np.zeros(2, np.uint8), np.zeros((2, 3), np.int64), KINDS,
     "labels must be a 1D uint64"),
    (np.zeros(2, np.uint64), np.zeros(2, np.int8), np.zeros((2, 3), np.int64), KINDS,
     "kinds must be a 1D uint8"),
    (np.zeros(2, np.uint64), np.zeros(2, np.uint8), np.zeros((2, 3), np.int32), KINDS,
     "pos must be a 2D int64"),
    (np.zeros(2, np.uint64), np.zeros(2, np.uint8), np.zeros((2, 2), np.int64), KINDS,
     "must be"),
    (np.zeros(2, np.uint64), np.zeros(3, np.uint8), np.zeros((2, 3), np.int64), KINDS,
     "must be"),
    (np.zeros(1, np.uint64), np.array([5], np.uint8), np.zeros((1, 3), np.int64), KINDS,
     "past the 5 kind names"),
    (np.zeros(1, np.uint64), np.zeros(1, np.uint8), np.zeros((1, 3), np.int64), ('Pre"',),
     "ASCII letters and digits"),
])
def test_bad_arguments_are_refused(labels: Any, kinds: Any, pos: Any,
                                   names: tuple[str, ...], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        element_positions_json(labels, kinds, pos, names)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 40).flatmap(lambda n: st.tuples(
    arrays(np.uint64, n), arrays(np.uint8, n, elements=st.integers(0, len(KINDS) - 1)),
    arrays(np.int64, (n, 3)))))
def test_any_elements_equal_reference(columns: tuple[Any, Any, Any]) -> None:
    same_as_reference(*columns)
