"""Undo maps: compact per-block undo data of merges."""

from __future__ import annotations

import numpy as np
import pytest

from app.kernels import relabel_indexed
from app.model.errors import FormatError
from app.model.mutations.undo_maps import decode_undo_map, encode_undo_map
from app.model.storage.memory import recycle_block_memory


@pytest.mark.parametrize("n_labels", [1, 255, 256, 70000])
def test_round_trip_for_every_index_width(n_labels: int) -> None:
    rng = np.random.default_rng(n_labels)
    labels = np.arange(1, n_labels + 1, dtype=np.uint64) * np.uint64(3)
    block = rng.choice(np.concatenate([labels, [np.uint64(1), np.uint64(2)]]), size=(5, 6, 7))
    _new, index, n = relabel_indexed(block.astype(np.uint64), labels, 1)
    back = decode_undo_map(encode_undo_map(index), block.shape, n_labels)
    assert back.dtype == index.dtype and n == int((index != 0).sum())
    np.testing.assert_array_equal(back, index)


def test_real_block_undo_map_is_small(real_labels: np.ndarray) -> None:
    block = np.ascontiguousarray(real_labels[:64, :64, :64])
    labels = np.unique(block)[1:41]
    _new, index, _n = relabel_indexed(block, labels, int(block.max()) + 1)
    assert len(encode_undo_map(index)) < block.nbytes // 16


def test_corrupt_or_mis_sized_maps_are_named() -> None:
    payload = encode_undo_map(np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(FormatError, match="undo map is corrupt"):
        decode_undo_map(b"not blosc at all", (4, 4, 4), 3)
    with pytest.raises(FormatError, match="holds 64 bytes, expected 128"):
        decode_undo_map(payload, (4, 4, 4), 300)


def test_allocator_tuning_takes_on_glibc() -> None:
    assert recycle_block_memory() is True
    assert recycle_block_memory() is True  # once per process, idempotent
