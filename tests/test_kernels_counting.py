"""Tests of app.kernels.counting against app.kernels.reference (exact equality)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.typing import NDArray

import app.kernels.counting as counting
from app.kernels import count_equal, count_in, label_counts
from app.kernels.reference import count_equal_ref, count_in_ref, label_counts_ref

LABEL_DTYPES = [np.uint8, np.uint16, np.uint32, np.uint64]
SHAPES = [(1, 1, 1), (1, 5, 7), (3, 4, 5), (65, 33, 17), (64, 64, 64)]


def runs_labels(shape: tuple[int, ...], dtype: Any, seed: int, n: int) -> NDArray[Any]:
    """Runs of random lengths of ``n`` labels (0, small, and the dtype's top
    values), as in real label data."""
    rng = np.random.default_rng(seed)
    top = int(np.iinfo(dtype).max)
    pal = np.array(
        sorted({0, *range(1, n // 2), *(top - i for i in range(n - n // 2))}), dtype=dtype
    )
    size = int(np.prod(shape))
    out = np.empty(size, dtype=dtype)
    i = 0
    while i < size:
        length = int(rng.choice([1, 2, 9, 63, 64, 65, 500]))
        out[i : i + length] = pal[rng.integers(0, pal.size)]
        i += length
    return out.reshape(shape)


def assert_counts_equal(block: NDArray[Any]) -> None:
    labels, counts = label_counts(block)
    want_labels, want_counts = label_counts_ref(block)
    assert labels.dtype == np.uint64
    assert counts.dtype == np.int64
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_array_equal(counts, want_counts)


@pytest.mark.parametrize("n", [1, 2, 12])
@pytest.mark.parametrize("dtype", LABEL_DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_label_counts_equals_reference(shape: tuple[int, ...], dtype: Any, n: int) -> None:
    assert_counts_equal(runs_labels(shape, dtype, seed=n + len(shape), n=n))


@pytest.mark.parametrize("dtype", LABEL_DTYPES)
def test_label_counts_noise_and_zero(dtype: Any) -> None:
    rng = np.random.default_rng(3)
    block = rng.integers(0, 5, size=(17, 16, 15)).astype(dtype)
    assert_counts_equal(block)
    assert_counts_equal(np.zeros((4, 5, 6), dtype=dtype))
    labels, counts = label_counts(np.zeros((4, 5, 6), dtype=dtype))
    assert labels.tolist() == [0]
    assert counts.tolist() == [120]


@pytest.mark.parametrize("seed", [4, 5, 6, 7])
def test_label_counts_many_distinct_grows_table(seed: int) -> None:
    # > 1024 distinct values forces rehashing (several times); colliding values
    # (multiples of 2**52) and values above 2**63 stress the hash
    rng = np.random.default_rng(seed)
    values = np.concatenate(
        [
            np.arange(1, 3000, dtype=np.uint64) << np.uint64(52) >> np.uint64(0),
            np.uint64(2**63) + rng.integers(0, 2**40, size=3000, dtype=np.uint64),
            np.arange(4000, dtype=np.uint64),
        ]
    )
    block = rng.choice(values, size=(40, 50, 60))
    block[:, :, 10:50] = values[7]  # plus long runs
    assert_counts_equal(block)


def test_label_counts_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(counting, "_MAX_DISTINCT", 100)
    rng = np.random.default_rng(5)
    block = rng.integers(0, 2**64 - 1, size=(10, 20, 30), dtype=np.uint64, endpoint=True)
    assert_counts_equal(block)


def test_label_counts_non_contiguous_and_errors() -> None:
    block = runs_labels((9, 8, 70), np.uint64, seed=6, n=6)
    view = block[::2, :, 3:]
    assert_counts_equal(view)
    labels, counts = label_counts(np.zeros((0, 3, 3), dtype=np.uint32))
    assert labels.size == 0 and counts.size == 0
    with pytest.raises(TypeError, match="block"):
        label_counts(block.astype(np.int64))
    with pytest.raises(TypeError, match="block"):
        label_counts(block.tolist())


@settings(max_examples=100, deadline=None)
@given(
    arrays(
        np.uint64,
        st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 150)),
        elements=st.sampled_from([0, 1, 2, 2**63, 2**64 - 1]),
    )
)
def test_label_counts_hypothesis(block: NDArray[np.uint64]) -> None:
    assert_counts_equal(block)


@pytest.mark.parametrize("dtype", LABEL_DTYPES)
@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 4, 5), (65, 33, 17)])
def test_count_equal_and_count_in(shape: tuple[int, ...], dtype: Any) -> None:
    block = runs_labels(shape, dtype, seed=7, n=8)
    top = int(np.iinfo(dtype).max)
    for label in (0, 1, 2, top, top - 1, 2**64 - 1):
        assert count_equal(block, label) == count_equal_ref(block, label)
    req = [top, 0, 3, 2**64 - 1, top, 1, 2**40]
    got = count_in(block, np.array(req, dtype=np.uint64))
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, count_in_ref(block, req))
    np.testing.assert_array_equal(count_in(block, req), count_in_ref(block, req))


def test_count_hand_example_and_errors() -> None:
    block = np.array([[[5, 5, 0], [7, 5, 2**64 - 1]]], dtype=np.uint64)
    assert count_equal(block, 5) == 3
    assert count_equal(block, 2**64 - 1) == 1
    assert count_in(block, [7, 5, 9, 5]).tolist() == [1, 3, 0, 3]
    assert count_in(block, []).tolist() == []
    with pytest.raises(ValueError, match="label"):
        count_equal(block, -1)
    with pytest.raises(ValueError, match="labels"):
        count_in(block, [-1])


@settings(max_examples=60, deadline=None)
@given(
    block=arrays(
        np.uint16,
        st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 40)),
        elements=st.integers(0, 4),
    ),
    labels=st.lists(st.integers(0, 6), max_size=6),
)
def test_count_in_hypothesis(block: NDArray[np.uint16], labels: list[int]) -> None:
    np.testing.assert_array_equal(count_in(block, labels), count_in_ref(block, labels))
    for label in labels:
        assert count_equal(block, label) == count_equal_ref(block, label)
