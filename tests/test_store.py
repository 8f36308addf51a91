"""The pyramid store: layout, block I/O, overlay, foreign files, bad files."""

from __future__ import annotations

from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
import pytest

from app.model.errors import FormatError, ReadOnlyError
from app.model.storage.arrays import LevelArray
from app.model.storage.layout import COMPRESSIONS, level_shapes
from app.model.storage.palette_block import PaletteBlock
from app.model.storage.store import IMAGE, LABELS, PyramidStore


def test_level_shapes_halve_until_one_block() -> None:
    assert level_shapes((250, 250, 250), (64, 64, 64)) == [
        (250, 250, 250),
        (125, 125, 125),
        (63, 63, 63),
    ]
    assert level_shapes((5, 1, 300), (4, 4, 4)) == [
        (5, 1, 300),
        (3, 1, 150),
        (2, 1, 75),
        (1, 1, 38),
        (1, 1, 19),
        (1, 1, 10),
        (1, 1, 5),
        (1, 1, 3),
    ]
    assert level_shapes((100, 100, 100), (64, 64, 64), levels=4)[-1] == (13, 13, 13)
    with pytest.raises(ValueError, match="levels must be"):
        level_shapes((10, 10, 10), (4, 4, 4), levels=0)


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_blocks_round_trip_through_any_hdf5_reader(tmp_path: Path, compression: str) -> None:
    rng = np.random.default_rng(1)
    store = PyramidStore.create(
        tmp_path / "p.h5",
        (21, 35, 18),
        block_size=(8, 16, 8),
        compression=compression,
        image_dtype="uint16",
    )
    truth = rng.integers(0, 2**64 - 1, (21, 35, 18), dtype=np.uint64, endpoint=True)
    gray = rng.integers(0, 65535, (21, 35, 18), dtype=np.uint16)
    lv = store.level(LABELS, 0)
    for coord in lv.coords():
        sl = lv.block_slices(coord)
        store.write_block(LABELS, 0, coord, truth[sl])
        store.write_block(IMAGE, 0, coord, gray[sl])
    assert np.array_equal(store.read_region(LABELS, 0, (0, 0, 0), (21, 35, 18)), truth)
    assert np.array_equal(LevelArray(store, IMAGE, 0)[3:20:2, -5, 1:], gray[3:20:2, -5, 1:])
    store.close()
    with h5py.File(tmp_path / "p.h5", "r") as f:  # plain h5py + hdf5plugin decodes our chunks
        assert np.array_equal(f["labels/s0"][:], truth)
        assert np.array_equal(f["image/s0"][:], gray)


def test_unencoded_blocks_are_held_until_written(tmp_path: Path) -> None:
    store = PyramidStore.create(tmp_path / "p.h5", (8, 8, 8), block_size=(4, 4, 4))
    key = (LABELS, 1, 0, 0, 0)
    new = np.full((4, 4, 4), 9, np.uint64)
    store.stage(key, new, None, gen=1)
    store.cache.clear()
    assert store.read_block(LABELS, 1, (0, 0, 0)) is new  # held by the overlay, not the cache
    assert store.unencoded_nbytes == new.nbytes
    [(_, staged)] = store.staged_items()
    assert staged.payload is None and staged.block is new
    store.stage(key, np.full((4, 4, 4), 3, np.uint64), b"encoded", gen=2)
    assert store.unencoded_nbytes == 0
    store.restore(key, staged)  # a refused edit puts the held block back
    assert store.unencoded_nbytes == new.nbytes and store.read_block(LABELS, 1, (0, 0, 0)) is new
    store.unstage([(key, 1)])
    assert store.staged_count == 0 and store.unencoded_nbytes == 0
    assert store.cache.get(key) is new
    store.close()


def test_palette_blocks_are_held_until_written(tmp_path: Path) -> None:
    store = PyramidStore.create(tmp_path / "p.h5", (8, 8, 8), block_size=(4, 4, 4))
    key = (LABELS, 0, 1, 1, 0)
    voxels = np.arange(64, dtype=np.uint64).reshape(4, 4, 4) // 20
    palette = PaletteBlock.of(voxels)
    store.stage(key, palette, None, gen=1)
    assert store.unencoded_nbytes == palette.nbytes
    assert store.read_palette(LABELS, (1, 1, 0)) is palette
    assert store.staged_palette(LABELS, 0, (1, 1, 0)) is palette
    held = store.block_in_memory(LABELS, 0, (1, 1, 0))  # a GUI may decode a palette
    assert held is not None
    np.testing.assert_array_equal(held, voxels)
    assert store.block_in_memory(LABELS, 0, (0, 1, 0)) is None  # in the file: not read
    np.testing.assert_array_equal(store.read_block(LABELS, 0, (1, 1, 0)), voxels)
    assert store.staged_palette(LABELS, 0, (0, 0, 0)) is None
    fresh = store.read_palette(LABELS, (0, 0, 0))  # not staged: made from the voxels
    assert fresh.labels.tolist() == [0] and fresh.counts.tolist() == [64]
    [(_, staged)] = store.staged_items()
    block = staged.unencoded()
    assert staged.payload is None and block is not None
    store.write_payload(LABELS, 0, (1, 1, 0), store.encode_block(LABELS, 0, (1, 1, 0), block))
    store.unstage([(key, 1)])
    assert store.staged_count == 0 and store.unencoded_nbytes == 0
    assert store.read_palette(LABELS, (1, 1, 0)) is palette  # kept after it was written
    rewritten = voxels[::-1].copy()
    store.write_block(LABELS, 0, (1, 1, 0), rewritten)  # (a bulk job's write)
    store.cache.clear()
    for _ in range(2):  # from the file, through this thread's scratch block, not cached
        again = store.read_palette(LABELS, (1, 1, 0))
        np.testing.assert_array_equal(again.decoded(), rewritten)
        assert store.cache.get(key) is None
    store.close()
    with h5py.File(tmp_path / "p.h5", "r") as f:
        np.testing.assert_array_equal(f["labels/s0"][4:8, 4:8, 0:4], rewritten)


def test_unwritten_blocks_read_as_background(tmp_path: Path) -> None:
    store = PyramidStore.create(tmp_path / "p.h5", (10, 10, 10), block_size=(4, 4, 4))
    block = store.read_block(LABELS, 0, (2, 2, 2))
    assert block.shape == (2, 2, 2) and not block.any()
    with pytest.raises(IndexError, match="outside labels/s0"):
        store.read_block(LABELS, 0, (3, 0, 0))
    store.close()


def test_staged_blocks_are_seen_at_once_and_written_later(tmp_path: Path) -> None:
    store = PyramidStore.create(tmp_path / "p.h5", (8, 8, 8), block_size=(4, 4, 4))
    new = np.full((4, 4, 4), 7, np.uint64)
    key = (LABELS, 0, 1, 0, 1)
    payload = store.encode_block(LABELS, 0, (1, 0, 1), new)
    store.stage(key, new, payload, gen=2)
    store.stage(key, np.zeros((4, 4, 4), np.uint64), payload, gen=1)  # older: ignored
    assert store.read_block(LABELS, 0, (1, 0, 1))[0, 0, 0] == 7
    assert [(k, st.gen, st.payload) for k, st in store.staged_items()] == [(key, 2, payload)]
    assert not new.flags.writeable
    with h5py.File(tmp_path / "p.h5", "r", locking=False) as f:
        assert f["labels/s0"][4, 0, 4] == 0
    store.write_payload(LABELS, 0, (1, 0, 1), payload)
    store.unstage([(key, 1)])
    assert store.staged_count == 1
    store.unstage([(key, 2)])
    assert store.staged_count == 0
    store.cache.clear()
    assert store.read_block(LABELS, 0, (1, 0, 1))[0, 0, 0] == 7
    store.close()
    with h5py.File(tmp_path / "p.h5", "r") as f:
        assert f["labels/s0"][4, 0, 4] == 7


def test_read_only_store_refuses_writes(small_pyramid: Path) -> None:
    store = PyramidStore.open(small_pyramid, "r")
    with pytest.raises(ReadOnlyError, match="read-only"):
        store.write_block(LABELS, 0, (0, 0, 0), np.zeros((16, 16, 16), np.uint64))
    store.close()


@pytest.mark.parametrize("names", [("s0", "s1"), ("0", "1")])
def test_foreign_pyramids_open(tmp_path: Path, names: tuple[str, str]) -> None:
    rng = np.random.default_rng(2)
    s0 = rng.integers(0, 5, (20, 20, 20), dtype=np.uint32)
    with h5py.File(tmp_path / "f.h5", "w") as f:
        g = f.create_group("volumes/segmentation")
        g.create_dataset(names[0], data=s0, chunks=(10, 10, 10), **hdf5plugin.LZ4())
        g.create_dataset(names[1], data=s0[::2, ::2, ::2])
        f.create_dataset("raw/0", data=rng.integers(0, 255, (20, 20, 20), dtype=np.uint8))
    store = PyramidStore.open(tmp_path / "f.h5")
    assert not store.native and len(store.levels(LABELS)) == 2
    assert np.array_equal(store.read_region(LABELS, 0, (0, 0, 0), (20, 20, 20)), s0)
    assert np.array_equal(LevelArray(store, LABELS, 1)[...], s0[::2, ::2, ::2])
    assert store.has_image
    store.close()


def test_bad_files_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="no such file"):
        PyramidStore.open(tmp_path / "missing.h5")
    (tmp_path / "text.h5").write_text("not hdf5 at all")
    with pytest.raises(FormatError, match="not an HDF5 file"):
        PyramidStore.open(tmp_path / "text.h5")
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f.create_dataset("seg", data=np.zeros((4, 4, 4), np.uint64))
    with pytest.raises(FormatError, match="segmend build"):
        PyramidStore.open(tmp_path / "plain.h5")
    with h5py.File(tmp_path / "future.h5", "w") as f:
        f.attrs["format"] = "segmend-pyramid"
        f.attrs["format_version"] = 99
    with pytest.raises(FormatError, match="version 99"):
        PyramidStore.open(tmp_path / "future.h5")


def test_truncated_file_is_reported_not_crashed(small_pyramid: Path, tmp_path: Path) -> None:
    data = small_pyramid.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError):
        store = PyramidStore.open(cut)
        store.read_region(LABELS, 0, (0, 0, 0), store.shape)


def test_corrupt_chunk_is_named(small_pyramid: Path) -> None:
    store = PyramidStore.open(small_pyramid, "r+")
    store.write_payload(LABELS, 0, (1, 1, 1), b"\x02\x01garbage-not-a-blosc-frame")
    store.cache.clear()
    with pytest.raises(FormatError, match=r"labels/s0 block \(1, 1, 1\) is corrupt"):
        store.read_block(LABELS, 0, (1, 1, 1))
    store.close()
