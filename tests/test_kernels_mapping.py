"""The mapping kernel against its NumPy reference: dtypes, odd shapes, layouts,
unmapped and retired supervoxels, blocks with very many distinct values; the
overlay table against a dict."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.typing import NDArray

from app.kernels import check_mapping, map_block, map_ids
from app.kernels.mapping_table import Table, empty_table, table_pairs, table_put
from app.kernels.reference import map_block_ref


def a_mapping(rng: np.random.Generator, high: int, n: int) -> tuple[NDArray[Any], NDArray[Any]]:
    """``n`` supervoxels below ``high`` mapped to bodies (some retired: 0)."""
    svs = np.unique(rng.integers(0, high, n, dtype=np.uint64))
    bodies = rng.integers(1, 2**64 - 1, svs.size, dtype=np.uint64, endpoint=True)
    bodies[rng.random(svs.size) < 0.1] = 0
    return svs, bodies


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.uint64])
@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 13, 5), (64, 64, 64)])
def test_map_block_equals_reference(dtype: Any, shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(shape[0])
    high = int(np.iinfo(dtype).max)
    runs = rng.integers(0, min(high, 300), (shape[0], shape[1], -(-shape[2] // 4)), dtype=dtype)
    block = np.repeat(runs, 4, axis=2)[:, :, : shape[2]]  # runs along x, as labels come
    svs, bodies = a_mapping(rng, min(high, 300), 150)
    got = map_block(block, svs, bodies)
    assert got.dtype == np.uint64 and got.shape == block.shape and got.flags.c_contiguous
    np.testing.assert_array_equal(got, map_block_ref(block, svs, bodies))
    overlay = table_of(dict(zip(*a_mapping(rng, min(high, 300), 40), strict=True)))
    np.testing.assert_array_equal(
        map_block(block, svs, bodies, overlay=overlay),
        map_block_ref(block, svs, bodies, overlay),
    )
    np.testing.assert_array_equal(  # any layout
        map_block(block[:, ::-1, ::2], svs, bodies), map_block_ref(block[:, ::-1, ::2], svs, bodies)
    )


def test_unmapped_supervoxels_are_their_own_body_and_zeros_stay_zero() -> None:
    block = np.array([[[0, 5, 5, 9, 2**64 - 1, 7]]], np.uint64)
    svs = np.array([5, 7, 2**64 - 1], np.uint64)
    bodies = np.array([50, 0, 1], np.uint64)
    assert map_block(block, svs, bodies).tolist() == [[[0, 50, 50, 9, 1, 0]]]
    empty = np.zeros(0, np.uint64)
    np.testing.assert_array_equal(map_block(block, empty, empty), block)


def test_a_block_of_all_distinct_values_grows_its_table() -> None:
    rng = np.random.default_rng(3)
    block = rng.permutation(np.arange(40_000, dtype=np.uint64)).reshape(10, 40, 100)
    svs, bodies = a_mapping(rng, 40_000, 30_000)
    np.testing.assert_array_equal(map_block(block, svs, bodies), map_block_ref(block, svs, bodies))


@settings(max_examples=80, deadline=None)
@given(
    block=arrays(np.uint64, st.tuples(*[st.integers(1, 6)] * 3), elements=st.integers(0, 12)),
    pairs=st.dictionaries(st.integers(0, 12), st.integers(0, 2**64 - 1), max_size=12),
    changes=st.dictionaries(st.integers(1, 12), st.integers(0, 2**64 - 1), max_size=6),
)
def test_map_block_hypothesis(
    block: NDArray[np.uint64], pairs: dict[int, int], changes: dict[int, int]
) -> None:
    svs, bodies = _arrays(pairs)
    np.testing.assert_array_equal(map_block(block, svs, bodies), map_block_ref(block, svs, bodies))
    overlay = table_of(changes)
    expected = map_block_ref(block, *_arrays({**pairs, **changes}))
    np.testing.assert_array_equal(map_block(block, svs, bodies, overlay=overlay), expected)
    np.testing.assert_array_equal(map_block_ref(block, svs, bodies, overlay), expected)
    ids = block.ravel()  # (as a list of ids: looked up one by one)
    np.testing.assert_array_equal(map_ids(ids, svs, bodies, overlay=overlay), expected.ravel())
    np.testing.assert_array_equal(map_ids(ids, svs, bodies), map_block_ref(ids, svs, bodies))


def _arrays(pairs: dict[int, int]) -> tuple[NDArray[np.uint64], NDArray[np.uint64]]:
    """A mapping's sorted arrays."""
    keys = sorted(pairs)
    return np.array(keys, np.uint64), np.array([pairs[k] for k in keys], np.uint64)


def table_of(pairs: dict[int, int]) -> Table:
    """An overlay table of ``pairs`` (supervoxel → body; no supervoxel 0)."""
    table, count = empty_table(), 0
    for sv, body in pairs.items():
        if sv:
            table, count = table_put(table, count, np.array([sv], np.uint64), body)
    return table


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.lists(st.integers(1, 5_000), max_size=700, unique=True),
                          st.integers(0, 2**64 - 1)), max_size=6))
def test_table_put_is_a_dict_update(puts: list[tuple[list[int], int]]) -> None:
    table, count, model = empty_table(), 0, {}
    for svs, body in puts:  # (700 at once: the table grows)
        table, count = table_put(table, count, np.array(svs, np.uint64), body)
        model.update(dict.fromkeys(svs, body))
        assert count == len(model) and 2 * count <= table[0].size
    svs, bodies = table_pairs(*table)
    assert dict(zip(svs.tolist(), bodies.tolist(), strict=True)) == model
    assert svs.tolist() == sorted(model)


def test_bad_tables_and_puts_are_refused() -> None:
    keys, values = empty_table()
    one = np.array([1], np.uint64)
    with pytest.raises(ValueError, match="supervoxel 0"):
        table_put((keys, values), 0, np.array([3, 0], np.uint64), 5)
    with pytest.raises(ValueError, match="power-of-two"):
        table_put((keys[:3].copy(), values[:3].copy()), 0, one, 5)
    with pytest.raises(TypeError, match="uint64"):
        table_put((keys.astype(np.int64), values), 0, one, 5)
    with pytest.raises(ValueError, match="1D"):
        table_put((keys, values), 0, one.reshape(1, 1), 5)
    assert not keys.any()  # (nothing written)


def test_bad_mappings_and_blocks_are_refused() -> None:
    ok = np.array([1, 2], np.uint64)
    block = np.ones((2, 2, 2), np.uint64)
    with pytest.raises(ValueError, match="strictly increasing"):
        check_mapping(np.array([2, 2], np.uint64), ok)
    with pytest.raises(ValueError, match="2 supervoxels but 1 bodies"):
        map_block(block, ok, ok[:1])
    with pytest.raises(TypeError, match="uint64"):
        map_block(block, ok.astype(np.int64), ok)
    with pytest.raises(ValueError, match="1D"):
        map_block(block, ok.reshape(2, 1), ok)
    with pytest.raises(ValueError, match="power-of-two"):
        map_block(block, ok, ok, overlay=(ok, ok[:1]))
    with pytest.raises(TypeError, match="unsigned"):
        map_block(block.astype(np.int32), ok, ok)
    with pytest.raises(TypeError, match="1D uint64"):
        map_ids(block, ok, ok)
    full = (np.arange(1, 5, dtype=np.uint64), np.full(4, 9, np.uint64))  # (no free slot)
    assert map_ids(np.array([7], np.uint64), ok, ok, overlay=full).tolist() == [7]
