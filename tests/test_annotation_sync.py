"""The sync's reading of a mutation's mapping moves (issue 17): each moved
supervoxel's body after every move, against a plain dictionary of them."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from app.model.annotations.sync import _final_targets
from app.model.mutations.base import Move

_move = st.builds(
    lambda svs, source, target: Move(np.array(sorted(svs), np.uint64), source, target),
    st.sets(st.integers(1, 40), min_size=1, max_size=12),
    st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))


@given(st.lists(_move, max_size=6))
def test_each_moved_supervoxel_ends_on_its_last_moves_target(moves: list[Move]) -> None:
    expected: dict[int, int] = {}
    for move in moves:
        expected.update(dict.fromkeys(move.svs.tolist(), move.target))
    moved, to = _final_targets(moves)
    assert moved.dtype == to.dtype == np.uint64
    assert moved.tolist() == sorted(expected)
    assert to.tolist() == [expected[sv] for sv in sorted(expected)]
