"""build + verify: every level equals a full recompute from s0, on real odd-shaped data."""

from __future__ import annotations

import threading
from pathlib import Path

import h5py
import numpy as np
import pytest
from numpy.typing import NDArray

from app.kernels import reference
from app.model.bulk.build import build_pyramid
from app.model.bulk.verify import verify_levels
from app.model.errors import CancelledError, FormatError
from app.model.storage.store import IMAGE, LABELS, PyramidStore


def full_recompute(s0: NDArray[np.generic], n: int, fn) -> list[NDArray[np.generic]]:  # type: ignore[no-untyped-def]
    levels = [s0]
    for _ in range(n - 1):
        levels.append(fn(levels[-1]))
    return levels


def test_built_levels_equal_reference_recompute(
    small_pyramid: Path, real_labels: NDArray[np.uint64], real_image: NDArray[np.uint8], rule: str
) -> None:
    with h5py.File(small_pyramid, "r") as f:
        n = len(f["labels"])
        assert n == 4  # (37,70,101) -> ... -> (5,9,13) fits one 16^3 block
        want = full_recompute(real_labels, n, lambda a: reference.downsample_labels_ref(a, rule))
        for k in range(n):
            assert np.array_equal(f[f"labels/s{k}"][:], want[k]), f"labels s{k}"
        gray = full_recompute(real_image, n, reference.downsample_image_ref)
        for k in range(n):
            assert np.array_equal(f[f"image/s{k}"][:], gray[k]), f"image s{k}"
        assert f.attrs["downres_rule"] == rule
        assert f.attrs["max_label"] == real_labels.max()
        assert f.attrs["next_label"] == real_labels.max() + 1


def test_verify_passes_then_finds_a_corrupted_voxel(small_pyramid: Path) -> None:
    store = PyramidStore.open(small_pyramid, "r+")
    assert verify_levels(store).ok
    block = np.array(store.read_block(LABELS, 2, (0, 0, 1)))
    block[3, 4, 5] += 1
    store.write_block(LABELS, 2, (0, 0, 1), block)
    report = verify_levels(store)
    assert not report.ok and report.mismatched_blocks == 1
    m = report.mismatches[0]
    assert (m.kind, m.scale, m.block, m.voxels) == (LABELS, 2, (0, 0, 1), 1)
    assert m.first_voxel == (3, 4, 21) and m.found == m.expected + 1
    store.close()


def test_npy_source_odd_shape_partial_blocks(tmp_path: Path, rule: str) -> None:
    rng = np.random.default_rng(5)
    vol = rng.integers(0, 4, (9, 13, 31)).astype(np.int32)
    vol[vol == 3] = 2**31 - 1
    np.save(tmp_path / "v.npy", vol)
    out = build_pyramid(tmp_path / "v.npy", tmp_path / "v.h5", block_size=(4, 6, 8), rule=rule)
    with h5py.File(out, "r") as f:
        want = full_recompute(
            vol.astype(np.uint64),
            len(f["labels"]),
            lambda a: reference.downsample_labels_ref(a, rule),
        )
        for k, w in enumerate(want):
            assert np.array_equal(f[f"labels/s{k}"][:], w)
    store = PyramidStore.open(out)
    assert verify_levels(store).ok
    store.close()


def test_progress_and_block_observer_see_every_block(
    tmp_path: Path, real_sources: tuple[str, str]
) -> None:
    seen: list[tuple[int, int]] = []
    blocks: dict[tuple[int, int, int], NDArray[np.uint64]] = {}
    lock = threading.Lock()

    def observe(coord: tuple[int, int, int], block: NDArray[np.uint64]) -> None:
        with lock:
            blocks[coord] = block

    out = build_pyramid(
        real_sources[0],
        tmp_path / "o.h5",
        image=real_sources[1],
        block_size=(16, 16, 16),
        progress=lambda d, t: seen.append((d, t)),
        block_observer=observe,
    )
    store = PyramidStore.open(out)
    total = sum(int(np.prod(lv.grid)) for k in (LABELS, IMAGE) for lv in store.levels(k))
    assert sorted(d for d, _ in seen) == list(range(1, total + 1))
    assert set(blocks) == set(store.level(LABELS, 0).coords())
    for coord, block in blocks.items():
        assert np.array_equal(block, store.read_block(LABELS, 0, coord))
    store.close()


def test_bad_sources_leave_nothing(tmp_path: Path, real_sources: tuple[str, str]) -> None:
    out = tmp_path / "out.h5"
    np.save(tmp_path / "neg.npy", np.array([[[1, -3], [0, 2]]], dtype=np.int64))
    with pytest.raises(FormatError, match="non-negative; found -3"):
        build_pyramid(tmp_path / "neg.npy", out)
    np.save(tmp_path / "flat.npy", np.zeros((4, 4), np.uint64))
    with pytest.raises(FormatError, match="expected a 3D volume"):
        build_pyramid(tmp_path / "flat.npy", out)
    np.save(tmp_path / "float.npy", np.zeros((4, 4, 4), np.float32))
    with pytest.raises(FormatError, match="expected integer voxels"):
        build_pyramid(tmp_path / "float.npy", out)
    np.save(tmp_path / "small.npy", np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(FormatError, match="differs from labels shape"):
        build_pyramid(real_sources[0], out, image=tmp_path / "small.npy")
    with pytest.raises(FormatError, match="no dataset"):
        build_pyramid(real_sources[0].replace(":/seg", ":/nope"), out)
    assert list(tmp_path.glob("*out.h5*")) == []


def test_cancel_leaves_no_file(tmp_path: Path, real_sources: tuple[str, str]) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        build_pyramid(real_sources[0], tmp_path / "c.h5", cancel=cancel)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"levels": 5}, r"levels must be between 1 and 4 for shape \(37, 70, 101\)"),
        ({"levels": 0}, "levels must be between 1 and 4"),
        ({"voxel_size_nm": (4.0, float("nan"), 4.0)}, "finite positive"),
        ({"voxel_size_nm": (float("inf"),) * 3}, "finite positive"),
        ({"block_size": (16, 15, 16)}, "even"),
    ],
)
def test_bad_arguments_are_refused_before_any_file(
    tmp_path: Path, real_sources: tuple[str, str], kwargs: dict[str, object], match: str
) -> None:
    kwargs = {"block_size": (16, 16, 16), **kwargs}
    with pytest.raises(ValueError, match=match):
        build_pyramid(real_sources[0], tmp_path / "out.h5", **kwargs)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
