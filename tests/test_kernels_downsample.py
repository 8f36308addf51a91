"""Tests of app.kernels.downsample against app.kernels.reference (exact equality)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.typing import NDArray

from app.kernels import (
    RULES,
    downsample_image,
    downsample_image_into,
    downsample_labels,
    downsample_labels_into,
    downsampled_shape,
)
from app.kernels.reference import downsample_image_ref, downsample_labels_ref, vote_ref

LABEL_DTYPES = [np.uint8, np.uint16, np.uint32, np.uint64]
IMAGE_DTYPES = [np.uint8, np.uint16]
SHAPES = [(1, 1, 1), (1, 5, 7), (3, 4, 5), (2, 2, 2), (65, 33, 17), (64, 64, 64)]


def palette(dtype: Any) -> NDArray[Any]:
    """A few labels of ``dtype``: 0, small ones, and the largest values
    (above 2**63 for uint64)."""
    top = int(np.iinfo(dtype).max)
    return np.array([0, 1, 2, 3, top - 1, top], dtype=dtype)


def random_labels(shape: tuple[int, ...], dtype: Any, seed: int, k: int = 4) -> NDArray[Any]:
    """Random labels drawn from ``k`` palette entries, so that ties happen."""
    rng = np.random.default_rng(seed)
    pal = palette(dtype)
    choice = rng.choice(pal.size, size=k, replace=False)
    return pal[choice][rng.integers(0, k, size=shape)]


def blocky_labels(shape: tuple[int, int, int], dtype: Any, seed: int) -> NDArray[Any]:
    """Big uniform 8x8x8 cubes (so whole chunks of groups are uniform), with a
    few sprinkled voxels of another label (so some chunks are mixed)."""
    rng = np.random.default_rng(seed)
    pal = palette(dtype)
    cz, cy, cx = (-(-s // 8) for s in shape)
    coarse = pal[rng.integers(0, pal.size, size=(cz, cy, cx))]
    vol = np.repeat(np.repeat(np.repeat(coarse, 8, 0), 8, 1), 8, 2)[
        : shape[0], : shape[1], : shape[2]
    ]
    vol = np.ascontiguousarray(vol)
    n = max(1, vol.size // 500)
    idx = rng.integers(0, vol.size, size=n)
    vol.reshape(-1)[idx] = pal[rng.integers(0, pal.size, size=n)]
    return vol


# --------------------------------------------------------------------------- the reference itself


def test_vote_ref_hand_examples() -> None:
    assert vote_ref([1, 1, 2, 2, 0, 0, 0, 0], "labelmap") == 1
    assert vote_ref([1, 1, 2, 2, 0, 0, 0, 0], "labelblk") == 0
    assert vote_ref([5, 5, 5, 5, 7, 7, 7, 7], "labelmap") == 5
    assert vote_ref([5, 5, 5, 5, 7, 7, 7, 7], "labelblk") == 7
    assert vote_ref([0] * 8, "labelmap") == 0
    assert vote_ref([0] * 8, "labelblk") == 0
    assert vote_ref([0, 0, 0, 0, 0, 0, 0, 9], "labelmap") == 9
    assert vote_ref([0, 0, 0, 0, 0, 0, 0, 9], "labelblk") == 0
    assert vote_ref([3, 4], "labelmap") == 3
    assert vote_ref([3, 4], "labelblk") == 4
    with pytest.raises(ValueError, match="nope"):
        vote_ref([1], "nope")


# --------------------------------------------------------------------------- labels


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("dtype", LABEL_DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_labels_random_equals_reference(shape: tuple[int, int, int], dtype: Any, rule: str) -> None:
    vol = random_labels(shape, dtype, seed=hash((shape, rule)) % 2**32)
    got = downsample_labels(vol, rule)
    assert got.dtype == vol.dtype
    assert got.shape == downsampled_shape(shape)
    assert got.flags.c_contiguous
    np.testing.assert_array_equal(got, downsample_labels_ref(vol, rule))


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint64])
@pytest.mark.parametrize("shape", [(64, 64, 64), (33, 17, 71)])
def test_labels_blocky_equals_reference(shape: tuple[int, int, int], dtype: Any, rule: str) -> None:
    vol = blocky_labels(shape, dtype, seed=1)
    np.testing.assert_array_equal(downsample_labels(vol, rule), downsample_labels_ref(vol, rule))


@pytest.mark.parametrize("dtype", LABEL_DTYPES)
def test_labels_ties_and_zero(dtype: Any) -> None:
    top = int(np.iinfo(dtype).max)
    big = top - 1
    groups = {
        # (group values in z, y, x order): (labelmap, labelblk)
        (1, 1, 2, 2, 0, 0, 0, 0): (1, 0),
        (big, big, big, big, 1, 1, 1, 1): (1, big),
        (top, top, big, big, big, top, 0, 0): (big, top),
        (0, 0, 0, 0, 0, 0, 0, 0): (0, 0),
        (0, 0, 0, 0, 0, 0, 0, top): (top, 0),
        (0, 0, 0, 0, 0, 0, top, big): (big, 0),
        (1, 2, 3, 0, 0, 3, 2, 1): (1, 3),
        (2, 2, 2, 2, 2, 2, 2, 2): (2, 2),
        (2, 2, 2, 2, 2, 2, 2, 1): (2, 2),
        (top, 1, 1, 1, top, top, top, top): (top, top),
    }
    # put the groups side by side along x inside one (2, 2, 2n) volume
    vol = np.zeros((2, 2, 2 * len(groups)), dtype=dtype)
    for i, g in enumerate(groups):
        vol[:, :, 2 * i : 2 * i + 2] = np.array(g, dtype=dtype).reshape(2, 2, 2)
    for r, rule in enumerate(("labelmap", "labelblk")):
        got = downsample_labels(vol, rule).reshape(-1).tolist()
        want = [expected[r] for expected in groups.values()]
        assert got == want, rule


@pytest.mark.parametrize("rule", RULES)
def test_labels_every_group_of_three_values(rule: str) -> None:
    # all 3**8 groups over {0, 5, 2**64 - 1}, side by side along x (plus one
    # extra uniform group, so that the last chunk is partial)
    values = np.array([0, 5, 2**64 - 1], dtype=np.uint64)
    idx = np.indices((3,) * 8).reshape(8, -1).T  # (6561, 8)
    groups = values[idx].reshape(-1, 2, 2, 2)  # (g, z, y, x)
    vol = np.concatenate(
        [groups.transpose(1, 2, 0, 3).reshape(2, 2, -1), np.full((2, 2, 2), 5, np.uint64)], axis=2
    )
    got = downsample_labels(vol, rule).reshape(-1)
    want = [vote_ref([int(v) for v in g.ravel()], rule) for g in groups] + [5]
    assert got.tolist() == want


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("dtype", LABEL_DTYPES)
def test_labels_far_edge_partial_groups(dtype: Any, rule: str) -> None:
    top = int(np.iinfo(dtype).max)
    # shape (3, 3, 3): the last group along every axis has a single voxel
    vol = np.full((3, 3, 3), 1, dtype=dtype)
    vol[2, 2, 2] = top
    vol[2, 0:2, 0:2] = [[0, 0], [5, 5]]  # z-edge group of 4: tie 0 vs 5
    vol[0:2, 0:2, 2] = [[top, 7], [7, top]]  # x-edge group of 4: tie top vs 7
    got = downsample_labels(vol, rule)
    assert got[1, 1, 1] == top  # alone: always wins
    if rule == "labelmap":
        assert got[1, 0, 0] == 5
        assert got[0, 0, 1] == 7
    else:
        assert got[1, 0, 0] == 5
        assert got[0, 0, 1] == top
    np.testing.assert_array_equal(got, downsample_labels_ref(vol, rule))


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("dtype", LABEL_DTYPES)
def test_labels_all_zero_and_single_label(dtype: Any, rule: str) -> None:
    zero = np.zeros((5, 6, 7), dtype=dtype)
    np.testing.assert_array_equal(downsample_labels(zero, rule), np.zeros((3, 3, 4), dtype=dtype))
    top = np.iinfo(dtype).max
    single = np.full((5, 6, 7), top, dtype=dtype)
    np.testing.assert_array_equal(
        downsample_labels(single, rule), np.full((3, 3, 4), top, dtype=dtype)
    )


def test_labels_one_mixed_group_in_uniform_chunk() -> None:
    # a single differing voxel among 63 uniform groups in a row must be voted
    vol = np.full((2, 2, 128), 2**63 + 11, dtype=np.uint64)
    vol[1, 1, 77] = 3
    vol[0, 0, 76] = 3
    vol[0, 1, 76] = 3
    vol[1, 0, 77] = 3
    for rule in RULES:
        got = downsample_labels(vol, rule)
        want = downsample_labels_ref(vol, rule)
        np.testing.assert_array_equal(got, want)
        assert got[0, 0, 38] == (3 if rule == "labelmap" else 2**63 + 11)


@pytest.mark.parametrize("rule", RULES)
def test_labels_non_contiguous_input(rule: str) -> None:
    base = random_labels((9, 10, 22), np.uint64, seed=3)
    for view in (base[:, ::-1, :], base[::2, 1:, ::2], np.asfortranarray(base)):
        np.testing.assert_array_equal(
            downsample_labels(view, rule), downsample_labels_ref(np.ascontiguousarray(view), rule)
        )


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("dtype", [np.uint16, np.uint64])
def test_labels_into_octant_view(dtype: Any, rule: str) -> None:
    parent = np.full((8, 8, 8), 99, dtype=dtype)
    vol = random_labels((7, 8, 5), dtype, seed=5)
    octant = parent[4:8, 0:4, 4:7]
    res = downsample_labels_into(vol, octant, rule)
    assert res is octant
    want = downsample_labels_ref(vol, rule)
    np.testing.assert_array_equal(parent[4:8, 0:4, 4:7], want)
    untouched = np.ones(parent.shape, dtype=bool)
    untouched[4:8, 0:4, 4:7] = False
    assert (parent[untouched] == 99).all()
    out = np.empty((4, 4, 3), dtype=dtype)
    downsample_labels_into(vol, out, rule)
    np.testing.assert_array_equal(out, want)


def test_labels_errors() -> None:
    vol = np.zeros((4, 4, 4), dtype=np.uint64)
    with pytest.raises(ValueError, match="'mode'"):
        downsample_labels(vol, "mode")
    with pytest.raises(TypeError, match="vol"):
        downsample_labels(vol.astype(np.int64))  # type: ignore[type-var]
    with pytest.raises(TypeError, match="vol"):
        downsample_labels(vol.astype(np.float64))  # type: ignore[type-var]
    with pytest.raises(TypeError, match="vol"):
        downsample_labels(vol.tolist())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="3D"):
        downsample_labels(np.zeros((4, 4), dtype=np.uint64))
    with pytest.raises(ValueError, match="empty"):
        downsample_labels(np.zeros((0, 4, 4), dtype=np.uint64))
    with pytest.raises(ValueError, match="out must have shape"):
        downsample_labels_into(vol, np.zeros((2, 2, 3), dtype=np.uint64))
    with pytest.raises(TypeError, match="out must have dtype"):
        downsample_labels_into(vol, np.zeros((2, 2, 2), dtype=np.uint32))
    with pytest.raises(ValueError, match="'x'"):
        downsample_labels_into(vol, np.zeros((2, 2, 2), dtype=np.uint64), "x")
    ro = np.zeros((2, 2, 2), dtype=np.uint64)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        downsample_labels_into(vol, ro)


label_values = st.sampled_from([0, 1, 2, 2**63 + 1, 2**64 - 1])


@settings(max_examples=150, deadline=None)
@given(
    vol=arrays(
        np.uint64,
        st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 40)),
        elements=label_values,
    ),
    rule=st.sampled_from(RULES),
)
def test_labels_hypothesis(vol: NDArray[np.uint64], rule: str) -> None:
    np.testing.assert_array_equal(downsample_labels(vol, rule), downsample_labels_ref(vol, rule))


@settings(max_examples=100, deadline=None)
@given(
    vol=arrays(np.uint8, (2, 2, 2), elements=st.integers(0, 3)),
    rule=st.sampled_from(RULES),
)
def test_single_group_hypothesis(vol: NDArray[np.uint8], rule: str) -> None:
    got = int(downsample_labels(vol, rule)[0, 0, 0])
    assert got == vote_ref([int(v) for v in vol.ravel()], rule)


# --------------------------------------------------------------------------- image


def test_image_rounding_hand_examples() -> None:
    vol = np.zeros((2, 2, 6), dtype=np.uint8)
    vol[0, :, 0:2] = 1  # sum 4 over 8 -> 0.5 -> 1 (half up)
    vol[0, 0, 2:4] = 1  # sum 3 over 8 -> 0.375 -> 0
    vol[0, 1, 2] = 1
    vol[:, :, 4:6] = 255  # 255
    np.testing.assert_array_equal(downsample_image(vol).ravel(), [1, 0, 255])
    edge = np.array([[[0, 1, 3]]], dtype=np.uint16)  # groups (0, 1) and (3,)
    np.testing.assert_array_equal(downsample_image(edge).ravel(), [1, 3])
    np.testing.assert_array_equal(downsample_image_ref(edge).ravel(), [1, 3])


@pytest.mark.parametrize("dtype", IMAGE_DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_image_random_equals_reference(shape: tuple[int, int, int], dtype: Any) -> None:
    rng = np.random.default_rng(7)
    top = int(np.iinfo(dtype).max)
    vol = rng.integers(0, top, size=shape, dtype=dtype, endpoint=True)
    vol.reshape(-1)[: vol.size // 3] = top  # saturated region: no overflow allowed
    got = downsample_image(vol)
    assert got.dtype == vol.dtype
    np.testing.assert_array_equal(got, downsample_image_ref(vol))


@pytest.mark.parametrize("dtype", IMAGE_DTYPES)
def test_image_into_view_and_errors(dtype: Any) -> None:
    rng = np.random.default_rng(8)
    vol = rng.integers(0, 200, size=(5, 6, 7), dtype=dtype)
    parent = np.zeros((6, 6, 8), dtype=dtype)
    view = parent[1:4, 3:6, ::2]
    downsample_image_into(vol[:, ::-1], view)
    np.testing.assert_array_equal(view, downsample_image_ref(np.ascontiguousarray(vol[:, ::-1])))
    with pytest.raises(TypeError, match="vol"):
        downsample_image(vol.astype(np.uint32))
    with pytest.raises(ValueError, match="out must have shape"):
        downsample_image_into(vol, np.zeros((3, 3, 3), dtype=dtype))


@settings(max_examples=60, deadline=None)
@given(
    vol=arrays(
        np.uint16,
        st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 9)),
        elements=st.integers(0, 2**16 - 1),
    )
)
def test_image_hypothesis(vol: NDArray[np.uint16]) -> None:
    np.testing.assert_array_equal(downsample_image(vol), downsample_image_ref(vol))
