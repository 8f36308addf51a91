"""Tests of app.kernels.rle against app.kernels.reference and DVID's byte format."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.typing import NDArray

from app.kernels import (
    canonical_rles,
    check_rles_in_bounds,
    encode_rles,
    mask_to_rles,
    parse_rles,
    rles_by_block,
    rles_cover_box,
    rles_to_mask,
    rles_voxel_count,
)
from app.kernels.reference import (
    canonical_rles_ref,
    encode_rles_ref,
    mask_to_rles_ref,
    parse_rles_ref,
    rles_by_block_ref,
    rles_cover_box_ref,
    rles_to_mask_ref,
    rles_voxel_count_ref,
)

SPANS = np.array([[1, 2, 3, 4], [0, 0, 0, 1], [60, 5, 70, 10]], dtype=np.int32)


def dvid_bytes(spans: list[tuple[int, int, int, int]], headered: bool = True) -> bytes:
    """Bytes written by hand following DVID's layout."""
    body = b"".join(struct.pack("<iiii", *s) for s in spans)
    if not headered:
        return body
    voxels = sum(s[3] for s in spans)
    return b"\x00\x03\x00\x00" + struct.pack("<I", voxels) + struct.pack("<I", len(spans)) + body


# --------------------------------------------------------------------------- binary format


def test_encode_matches_dvid_layout() -> None:
    rows = [tuple(int(v) for v in r) for r in SPANS]
    assert encode_rles(SPANS) == dvid_bytes(rows)  # type: ignore[arg-type]
    assert encode_rles(SPANS, headered=False) == dvid_bytes(rows, headered=False)  # type: ignore[arg-type]
    assert encode_rles(SPANS) == encode_rles_ref(SPANS)
    assert encode_rles(SPANS)[4:8] == struct.pack("<I", 15)
    empty = np.zeros((0, 4), dtype=np.int32)
    assert encode_rles(empty) == b"\x00\x03\x00\x00" + bytes(8)
    assert encode_rles(empty, headered=False) == b""


def test_parse_roundtrip_and_reference() -> None:
    data = encode_rles(SPANS)
    got = parse_rles(data)
    assert got.dtype == np.int32
    assert got.shape == (3, 4)
    np.testing.assert_array_equal(got, SPANS)
    np.testing.assert_array_equal(got, parse_rles_ref(data))
    np.testing.assert_array_equal(parse_rles(encode_rles(SPANS, False), headered=False), SPANS)
    np.testing.assert_array_equal(parse_rles(bytearray(data)), SPANS)
    np.testing.assert_array_equal(parse_rles(memoryview(data)), SPANS)
    # the header's voxel count is ignored on read
    bad_count = data[:4] + struct.pack("<I", 999) + data[8:]
    np.testing.assert_array_equal(parse_rles(bad_count), SPANS)
    assert parse_rles(b"", headered=False).shape == (0, 4)


@pytest.mark.parametrize(
    ("data", "headered", "match"),
    [
        (b"\x00\x03\x00", True, "too short"),
        (b"\x01\x03\x00\x00" + bytes(8), True, "header"),
        (b"\x00\x02\x00\x00" + bytes(8), True, "header"),
        (dvid_bytes([(1, 2, 3, 4)])[:-1], True, "payload"),
        (dvid_bytes([(1, 2, 3, 4)]) + bytes(16), True, "payload"),
        (bytes(17), False, "multiple of 16"),
        (dvid_bytes([(1, 2, 3, 0)]), True, "length"),
        (dvid_bytes([(1, 2, 3, 4), (1, 2, 3, -2)], headered=False), False, "span 1 has length"),
        (dvid_bytes([(-1, 2, 3, 4)]), True, "negative"),
        (dvid_bytes([(1, 2, -3, 4)]), True, "negative"),
    ],
)
def test_parse_errors(data: bytes, headered: bool, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_rles(data, headered=headered)


def test_encode_errors() -> None:
    with pytest.raises(ValueError, match=r"\(n, 4\)"):
        encode_rles(np.zeros((2, 3), dtype=np.int32))
    with pytest.raises(TypeError, match="integer"):
        encode_rles(np.zeros((2, 4), dtype=np.float64))
    with pytest.raises(ValueError, match="length"):
        encode_rles(np.array([[0, 0, 0, 0]]))
    with pytest.raises(ValueError, match="int32"):
        encode_rles(np.array([[2**31, 0, 0, 1]], dtype=np.int64))


# --------------------------------------------------------------------------- geometry


def test_check_in_bounds() -> None:
    check_rles_in_bounds(np.array([[0, 0, 0, 5], [2, 3, 4, 3]]), (5, 4, 5))
    check_rles_in_bounds(np.zeros((0, 4), dtype=np.int32), (1, 1, 1))
    with pytest.raises(ValueError, match=r"span 1 \(x=2, y=3, z=4, length=4\)"):
        check_rles_in_bounds(np.array([[0, 0, 0, 5], [2, 3, 4, 4], [9, 9, 9, 9]]), (5, 4, 5))
    with pytest.raises(ValueError, match="span 0"):
        check_rles_in_bounds(np.array([[0, 4, 0, 1]]), (5, 4, 5))
    with pytest.raises(ValueError, match="span 0"):
        check_rles_in_bounds(np.array([[0, 0, 5, 1]]), (5, 4, 5))
    with pytest.raises(ValueError, match="span 0"):
        check_rles_in_bounds(np.array([[-1, 0, 0, 1]]), (5, 4, 5))


def test_rles_to_mask_clips_to_box() -> None:
    spans = np.array(
        [
            [0, 5, 3, 20],  # crosses both x-bounds of the box
            [12, 6, 4, 3],  # crosses the high x-bound
            [2, 6, 4, 2],  # ends right before the box
            [4, 7, 3, 1],  # inside
            [5, 9, 3, 1],  # y outside
            [5, 6, 2, 1],  # z outside
        ],
        dtype=np.int32,
    )
    offset, shape = (3, 5, 4), (2, 3, 10)
    mask = rles_to_mask(spans, offset, shape)
    assert mask.dtype == np.bool_ and mask.shape == shape
    np.testing.assert_array_equal(mask, rles_to_mask_ref(spans, offset, shape))
    assert mask[0, 0].all()  # z=3, y=5: x 4..13 all inside the 20-long span
    assert mask[1, 1].tolist() == [False] * 8 + [True] * 2
    assert mask[0, 2].tolist() == [True] + [False] * 9
    assert int(mask.sum()) == 13


def test_mask_to_rles_order_and_offset() -> None:
    mask = np.zeros((2, 2, 6), dtype=bool)
    mask[1, 0, 1:3] = True
    mask[1, 0, 4:6] = True
    mask[0, 1, :] = True
    got = mask_to_rles(mask, (10, 20, 30))
    assert got.dtype == np.int32
    assert got.tolist() == [[30, 21, 10, 6], [31, 20, 11, 2], [34, 20, 11, 2]]
    np.testing.assert_array_equal(got, mask_to_rles_ref(mask, (10, 20, 30)))
    assert mask_to_rles(np.zeros((3, 3, 3), dtype=bool)).shape == (0, 4)
    np.testing.assert_array_equal(
        mask_to_rles(mask[:, :, ::-1]), mask_to_rles_ref(mask[:, :, ::-1])
    )
    with pytest.raises(TypeError, match="mask"):
        mask_to_rles(mask.astype(np.uint8))
    with pytest.raises(ValueError, match="3D"):
        mask_to_rles(mask[0])
    with pytest.raises(ValueError, match="int32"):
        mask_to_rles(mask, (0, 0, 2**31 - 3))


def _box_cases() -> list[tuple[str, NDArray[np.int64]]]:
    """Span sets against the box of shape (3, 4, 5) at (10, 20, 30)."""
    rows = [[30, y, z, 5] for z in range(10, 13) for y in range(20, 24)]
    whole = np.array(rows, np.int64)
    halves = np.array(
        [[30, y, z, 2] for z in range(10, 13) for y in range(20, 24)]
        + [[32, y, z, 3] for z in range(10, 13) for y in range(20, 24)],
        np.int64,
    )
    wider = whole + np.array([-7, 0, 0, 20])  # spans running past both faces
    hole = halves[1:]  # one row is two voxels short
    return [
        ("whole", whole),
        ("reversed", whole[::-1]),
        ("two spans per row", halves),
        ("past the faces", wider),
        ("overlapping, one row short", np.concatenate([hole, hole[:5]])),
        ("a row short", whole[1:]),
        ("outside only", whole + np.array([0, 0, 3, 0])),
        ("none", np.zeros((0, 4), np.int64)),
    ]


@pytest.mark.parametrize(("name", "spans"), _box_cases(), ids=[c[0] for c in _box_cases()])
def test_rles_cover_box_equals_reference(name: str, spans: NDArray[np.int64]) -> None:
    want = rles_cover_box_ref(spans, (10, 20, 30), (3, 4, 5))
    assert rles_cover_box(spans, (10, 20, 30), (3, 4, 5)) is want
    assert want == (name in ("whole", "reversed", "two spans per row", "past the faces"))
    assert rles_cover_box(spans.astype(np.int32), (10, 20, 30), (3, 4, 5)) is want


@settings(max_examples=60, deadline=None)
@given(
    mask=arrays(np.bool_, st.tuples(*[st.integers(1, 5)] * 3), elements=st.booleans()),
    extra=st.integers(0, 3),
)
def test_rles_cover_box_hypothesis(mask: NDArray[np.bool_], extra: int) -> None:
    spans = mask_to_rles_ref(mask, (1, 2, 3)).astype(np.int64)
    spans = np.concatenate([spans, spans[:extra]])  # overlaps
    box = (1, 2, 3), mask.shape
    assert rles_cover_box(spans, *box) is rles_cover_box_ref(spans, *box)
    assert rles_cover_box(spans, *box) is bool(mask.all())


def test_rles_cover_box_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="positive"):
        rles_cover_box(SPANS, (0, 0, 0), (0, 1, 1))
    with pytest.raises(ValueError, match="length"):
        rles_cover_box(np.array([[0, 0, 0, 0]]), (0, 0, 0), (1, 1, 1))


def _row_patterns(width: int) -> dict[str, NDArray[np.bool_]]:
    """Rows that end runs inside, at and across the eight-voxel words."""
    x = np.arange(width)
    rng = np.random.default_rng(width)
    return {
        "all": np.ones(width, bool),
        "none": np.zeros(width, bool),
        "alternating": x % 2 == 0,
        "words shifted by 3": (x + 3) // 8 % 2 == 0,
        "last voxel": x == width - 1,
        "random": rng.random(width) < 0.5,
    }


@pytest.mark.parametrize("width", [1, 7, 8, 9, 16, 63, 64, 65])
def test_mask_to_rles_word_by_word_equals_reference(width: int) -> None:
    rows = np.stack(list(_row_patterns(width).values()))
    mask = np.stack([rows, rows[::-1]])  # (2, 6, width)
    np.testing.assert_array_equal(mask_to_rles(mask, (4, 5, 6)), mask_to_rles_ref(mask, (4, 5, 6)))
    shifted = np.zeros(mask.size + 1, bool)[1:]  # contiguous, not on a word boundary
    shifted[:] = mask.reshape(-1)
    np.testing.assert_array_equal(
        mask_to_rles(shifted.reshape(mask.shape)), mask_to_rles_ref(mask)
    )
    # a bool view of a 0/255 (or 128) image: any non-zero byte is True
    for true_byte in (255, 128, 2):
        image = mask.astype(np.uint8) * np.uint8(true_byte)
        np.testing.assert_array_equal(mask_to_rles(image.view(bool)), mask_to_rles_ref(mask))


def assert_same_buckets(
    got: tuple[NDArray[np.int64], ...], want: tuple[NDArray[np.int64], ...]
) -> None:
    for g, w in zip(got, want, strict=True):
        assert g.dtype == np.int64
        np.testing.assert_array_equal(g, w)


def test_spans_by_block_and_voxel_count() -> None:
    spans = np.array([[60, 5, 70, 10], [0, 0, 0, 1], [63, 64, 0, 1], [0, 0, 0, 200]])
    coords, starts, grouped = rles_by_block(spans, (64, 64, 64))
    assert coords.tolist() == [
        [0, 0, 0],
        [0, 0, 1],
        [0, 0, 2],
        [0, 0, 3],
        [0, 1, 0],
        [1, 0, 0],
        [1, 0, 1],
    ]
    assert starts.tolist() == [0, 2, 3, 4, 5, 6, 7, 8]
    np.testing.assert_array_equal(grouped, spans[[1, 3, 3, 3, 3, 2, 0, 0]])
    assert_same_buckets((coords, starts, grouped), rles_by_block_ref(spans, (64, 64, 64)))
    none = rles_by_block(np.zeros((0, 4), dtype=np.int32), (8, 8, 8))
    assert [a.shape for a in none] == [(0, 3), (1,), (0, 4)]
    assert rles_voxel_count(spans) == 212 == rles_voxel_count_ref(spans)
    assert rles_voxel_count(np.zeros((0, 4), dtype=np.int32)) == 0
    with pytest.raises(ValueError, match="block_size_zyx"):
        rles_by_block(spans, (64, 0, 64))


def test_spans_by_block_far_apart() -> None:
    """Blocks far apart (a bounding box of many more blocks than pieces) take the
    sorting path; negative coordinates divide down (floor)."""
    spans = np.array([[10**9, 5, 3, 70], [-5, -1, 10**6, 9], [0, 0, 0, 1], [10**9, 5, 3, 2]])
    got = rles_by_block(spans, (8, 8, 64))
    assert got[0].tolist() == [
        [0, 0, 0], [0, 0, 15625000], [0, 0, 15625001], [125000, -1, -1], [125000, -1, 0]
    ]
    assert_same_buckets(got, rles_by_block_ref(spans, (8, 8, 64)))
    corners = np.array([[2**31 - 2, 2**31 - 1, -(2**31), 1], [-(2**31), -5, 2**31 - 1, 3]])
    for block in ((1, 1, 1), (64, 64, 64)):  # boxes of 2**96 and 2**78 blocks
        assert_same_buckets(rles_by_block(corners, block), rles_by_block_ref(corners, block))
    assert rles_by_block(corners, (64, 64, 64))[0].tolist() == [
        [-(2**25), 2**25 - 1, 2**25 - 1], [2**25 - 1, -1, -(2**25)]
    ]
    with pytest.raises(ValueError, match="int32"):
        rles_by_block(np.array([[2**31, 0, 0, 1]]), (8, 8, 8))


@settings(max_examples=100, deadline=None)
@given(
    mask=arrays(np.bool_, st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 20))),
    offset=st.tuples(st.integers(0, 100), st.integers(0, 100), st.integers(0, 100)),
)
def test_mask_roundtrip_hypothesis(mask: NDArray[np.bool_], offset: tuple[int, int, int]) -> None:
    spans = mask_to_rles(mask, offset)
    np.testing.assert_array_equal(spans, mask_to_rles_ref(mask, offset))
    np.testing.assert_array_equal(rles_to_mask(spans, offset, mask.shape), mask)
    np.testing.assert_array_equal(parse_rles(encode_rles(spans)), spans)
    assert rles_voxel_count(spans) == int(mask.sum())


span_rows = st.tuples(
    st.integers(0, 40), st.integers(0, 12), st.integers(0, 12), st.integers(1, 30)
)


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(span_rows, max_size=12),
    offset=st.tuples(st.integers(0, 10), st.integers(0, 10), st.integers(0, 30)),
    shape=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 16)),
    block=st.tuples(st.integers(1, 8), st.integers(1, 8), st.integers(1, 16)),
)
def test_spans_hypothesis(
    rows: list[tuple[int, int, int, int]],
    offset: tuple[int, int, int],
    shape: tuple[int, int, int],
    block: tuple[int, int, int],
) -> None:
    spans = np.array(rows, dtype=np.int32).reshape(-1, 4)
    np.testing.assert_array_equal(
        rles_to_mask(spans, offset, shape), rles_to_mask_ref(spans, offset, shape)
    )
    assert_same_buckets(rles_by_block(spans, block), rles_by_block_ref(spans, block))
    np.testing.assert_array_equal(canonical_rles(spans), canonical_rles_ref(spans))
    data = encode_rles(spans)
    assert data == encode_rles_ref(spans)
    np.testing.assert_array_equal(parse_rles(data), spans)
    np.testing.assert_array_equal(parse_rles(data[12:], headered=False), spans)


# --------------------------------------------------------------------------- canonical RLE


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint16, np.uint32])
@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([], []),
        ([[5, 1, 1, 3]], [[5, 1, 1, 3]]),
        ([[5, 1, 1, 3], [8, 1, 1, 2]], [[5, 1, 1, 5]]),  # touching
        ([[5, 1, 1, 3], [6, 1, 1, 1]], [[5, 1, 1, 3]]),  # inside
        ([[5, 1, 1, 3], [0, 1, 1, 6]], [[0, 1, 1, 8]]),  # overlapping, out of order
        ([[5, 1, 1, 3], [9, 1, 1, 1]], [[5, 1, 1, 3], [9, 1, 1, 1]]),  # a gap of one
        ([[0, 2, 0, 1], [0, 1, 0, 1], [0, 0, 1, 1]], [[0, 1, 0, 1], [0, 2, 0, 1], [0, 0, 1, 1]]),
        ([[5, 1, 1, 3], [5, 1, 1, 3]], [[5, 1, 1, 3]]),  # repeated
    ],
)
def test_canonical_rles(rows: list[list[int]], expected: list[list[int]], dtype: type) -> None:
    spans = np.array(rows, dtype=dtype).reshape(-1, 4)
    got = canonical_rles(spans)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, np.array(expected, dtype=np.int32).reshape(-1, 4))
    np.testing.assert_array_equal(got, canonical_rles_ref(spans))


def test_canonical_rles_refuses_bad_spans() -> None:
    with pytest.raises(ValueError, match="length 0"):
        canonical_rles(np.array([[0, 0, 0, 0]], dtype=np.int32))
    with pytest.raises(ValueError, match="int32"):
        canonical_rles(np.array([[2**31, 0, 0, 1]], dtype=np.int64))
