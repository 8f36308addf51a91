"""Split regions made from masks: the slabs encoded on a pool join into the
same spans as one pass."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from app.kernels import mask_to_rles
from app.model.errors import InvalidMutationError
from app.model.mutations.regions import SplitRegion


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as executor:
        yield executor


@pytest.mark.parametrize(("depth", "width"), [(2, 300), (5, 296), (67, 300)])
def test_a_large_mask_encoded_in_slabs_equals_one_pass(
    pool: ThreadPoolExecutor, depth: int, width: int
) -> None:
    rng = np.random.default_rng(depth)
    rows = -(-(1 << 22) // (depth * width))  # (large enough to be encoded in slabs)
    mask = np.repeat(rng.random((depth, rows, width // 4)) < 0.4, 4, axis=2)
    offset = (3, 0, 70)
    got = SplitRegion.from_mask(mask, offset, pool)
    np.testing.assert_array_equal(got.spans, mask_to_rles(mask, offset))
    np.testing.assert_array_equal(SplitRegion.from_mask(mask, offset).spans, got.spans)


def test_a_bad_mask_is_refused_before_the_pool_is_used(pool: ThreadPoolExecutor) -> None:
    with pytest.raises(InvalidMutationError, match="3D boolean"):
        SplitRegion.from_mask(np.ones((4, 4), bool), (0, 0, 0), pool)
    with pytest.raises(InvalidMutationError, match="negative"):
        SplitRegion.from_mask(np.ones((4, 4, 4), bool), (0, -1, 0), pool)
