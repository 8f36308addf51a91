"""OME-Zarr pyramids open read-only: the store, the dataset, ``info``, ``verify``,
refused edits and bad stores.

The fixtures are written with zarr-python directly from the real crop: a Zarr v3
NGFF 0.5 image (sharded, grayscale root, ``labels/cells``) and a Zarr v2 NGFF
0.4 label image at the root (``t, c, z, y, x`` axes); their levels are
computed with segmend's own downsample kernels, so ``verify`` finds them clean.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from numpy.typing import NDArray

from app.kernels import downsample_image, downsample_labels
from app.model.dataset import open_dataset, open_editable
from app.model.errors import FormatError
from app.model.storage.ome_zarr_read import holds_ome_zarr_pyramid, is_zarr_path
from app.model.storage.store import IMAGE, LABELS, PyramidStore

LEVELS = 4
"""Scales of the fixtures: the crop (37, 70, 101) until it fits in 16-voxel blocks."""


def pyramid(
    volume: NDArray[Any], levels: int = LEVELS, rule: str = "labelmap"
) -> list[NDArray[Any]]:
    """``volume`` and its downsamples by segmend's kernels (labels by ``rule``,
    grayscale by the rounded mean), scale 0 first."""
    out = [volume]
    for _ in range(levels - 1):
        last = out[-1]
        out.append(downsample_image(last) if last.dtype == np.uint8 else
                   downsample_labels(last, rule))
    return out


def multiscales(
    version: str, names: list[str], units: list[str | None], voxel: list[float], n: int
) -> list[dict[str, Any]]:
    """An NGFF ``multiscales`` of ``n`` levels named "0".."n-1", each twice the
    voxel size of the one before (the spatial axes are the last three)."""
    axes = [
        {"name": name, "type": "space" if name in "zyx" else ("time" if name == "t"
                                                           else "channel"),
         **({"unit": unit} if unit else {})}
        for name, unit in zip(names, units, strict=True)
    ]
    lead = [1.0] * (len(names) - 3)
    datasets = [
        {"path": str(i), "coordinateTransformations": [
            {"type": "scale", "scale": lead + [v * 2**i for v in voxel]}]}
        for i in range(n)
    ]
    entry: dict[str, Any] = {"name": "pyramid", "axes": axes, "datasets": datasets}
    if version == "0.4":
        entry["version"] = "0.4"
    return [entry]


def write_levels(
    group: zarr.Group, levels: list[NDArray[Any]], chunks: tuple[int, ...],
    shards: tuple[int, ...] | None, lead: int = 0,
) -> None:
    """Write ``levels`` as arrays "0".."n-1" of ``group`` (with ``lead`` leading
    axes of length 1; named z, y, x in Zarr v3)."""
    one = (1,) * lead
    v3 = group.metadata.zarr_format == 3
    for i, level in enumerate(levels):
        array = group.create_array(
            str(i), shape=one + level.shape, dtype=level.dtype, chunks=one + chunks,
            shards=one + shards if shards else None, fill_value=0,
            dimension_names=("z", "y", "x") if v3 else None,
        )
        array[...] = level.reshape(one + level.shape)


def write_v3_image(path: Path, labels: NDArray[Any], image: NDArray[Any]) -> Path:
    """A Zarr v3 NGFF 0.5 image (sharded, 32³ shards of 16³ chunks): grayscale at
    the root, labels in ``labels/cells``, voxels of 0.008 x 0.004 x 0.004 µm."""
    zyx = ["z", "y", "x"]
    root = zarr.open_group(path, mode="w", zarr_format=3)
    root.attrs["ome"] = {"version": "0.5", "multiscales": multiscales(
        "0.5", zyx, ["micrometer"] * 3, [0.008, 0.004, 0.004], LEVELS)}
    write_levels(root, pyramid(image), (16, 16, 16), (32, 32, 32))
    label_root = root.create_group("labels")
    label_root.attrs["ome"] = {"version": "0.5", "labels": ["cells"]}
    cells = label_root.create_group("cells")
    cells.attrs["ome"] = {
        "version": "0.5",
        "image-label": {"source": {"image": "../../"}},
        "multiscales": multiscales("0.5", zyx, ["micrometer"] * 3, [0.008, 0.004, 0.004],
                                   LEVELS),
    }
    write_levels(cells, pyramid(labels), (16, 16, 16), (32, 32, 32))
    return path


def write_v2_label_image(path: Path, labels: NDArray[Any]) -> Path:
    """A Zarr v2 NGFF 0.4 label image at the root (uint32, ``t, c, z, y, x``,
    chunks 8 x 32 x 32, voxels of 8 x 4 x 4 nm), no grayscale."""
    root = zarr.open_group(path, mode="w", zarr_format=2)
    root.attrs.update({
        "multiscales": multiscales("0.4", ["t", "c", "z", "y", "x"],
                                   [None, None, "nanometer", "nanometer", "nanometer"],
                                   [8.0, 4.0, 4.0], LEVELS),
        "image-label": {"version": "0.4", "colors": []},
    })
    write_levels(root, pyramid(labels.astype(np.uint32)), (8, 32, 32), None, lead=2)
    return path


@pytest.fixture(scope="module")
def v3_master(tmp_path_factory: pytest.TempPathFactory, real_labels: NDArray[np.uint64],
              real_image: NDArray[np.uint8]) -> Path:
    return write_v3_image(tmp_path_factory.mktemp("v3") / "image.zarr", real_labels,
                          real_image)


@pytest.fixture(scope="module")
def v2_master(tmp_path_factory: pytest.TempPathFactory,
              real_labels: NDArray[np.uint64]) -> Path:
    return write_v2_label_image(tmp_path_factory.mktemp("v2") / "labels.zarr", real_labels)


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under (and beside) ``folder``: path -> (size, mtime)."""
    out = {}
    for root, dirs, files in os.walk(folder.parent):
        for name in dirs + files:
            p = Path(root, name)
            st = p.stat()
            out[str(p.relative_to(folder.parent))] = (st.st_size, st.st_mtime_ns)
    return out


def segmend(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True,
                          text=True, check=False)


# ------------------------------------------------------------------- reading
def test_fixtures_are_valid_ngff(v3_master: Path, v2_master: Path) -> None:
    from ome_zarr_models.v04 import ImageLabel
    from ome_zarr_models.v05 import Image

    image = Image.from_zarr(zarr.open_group(v3_master, mode="r"))
    assert len(image.attributes.ome.multiscales[0].datasets) == LEVELS
    ImageLabel.from_zarr(zarr.open_group(v2_master, mode="r"))


def test_v3_sharded_image_with_labels_opens_read_only(
        v3_master: Path, real_labels: NDArray[np.uint64],
        real_image: NDArray[np.uint8]) -> None:
    before = tree(v3_master)
    with open_dataset(v3_master) as ds:
        assert not ds.native and ds.mode == "r"
        assert ds.shape == real_labels.shape and ds.n_scales == LEVELS
        assert ds.block_size == (16, 16, 16)  # the inner chunk of a 32³ shard
        for scale, want in enumerate(pyramid(real_labels)):
            got = ds.labels(scale)[...]
            assert got.dtype == np.uint64 and np.array_equal(got, want)
        assert ds.has_image and ds.image_dtype == np.uint8 and ds.n_image_scales == LEVELS
        for scale, want in enumerate(pyramid(real_image)):
            assert np.array_equal(ds.image(scale)[...], want)
        assert np.array_equal(ds.labels(1)[3:9, 5, 7:40], pyramid(real_labels)[1][3:9, 5, 7:40])
        assert ds.max_label == 0 and ds.mutation_count() == 0 and ds.history() == []
    assert tree(v3_master) == before  # nothing written, nothing made beside it


def test_v2_root_label_image_with_five_axes(v2_master: Path,
                                            real_labels: NDArray[np.uint64]) -> None:
    store = PyramidStore.open(v2_master)
    try:
        assert not store.native and not store.writable and not store.has_image
        assert store.block_size == (8, 32, 32) and store.rule == "labelmap"
        assert [lv.shape for lv in store.levels(LABELS)] == [p.shape for p in pyramid(real_labels)]
        assert store.levels(IMAGE) == []
        region = store.read_region(LABELS, 0, (5, 10, 20), (30, 60, 90))
        assert region.dtype == np.uint32
        assert np.array_equal(region, real_labels[5:30, 10:60, 20:90])
        assert store.attr("voxel_size_nm") == [8.0, 4.0, 4.0]
    finally:
        store.close()


def test_info_and_verify_from_the_command_line(v3_master: Path, v2_master: Path) -> None:
    before = tree(v3_master)
    result = segmend("info", str(v3_master), "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["format"] == "foreign pyramid (read-only)"
    assert info["shape"] == [37, 70, 101] and info["block_size"] == [16, 16, 16]
    assert info["levels"] == info["image_levels"] == [
        [37, 70, 101], [19, 35, 51], [10, 18, 26], [5, 9, 13]]
    assert info["voxel_size_nm"] == [8.0, 4.0, 4.0]
    assert info["downres_rule"] == "labelmap" and info["mutations"] == 0
    assert info["file_note"] is None
    assert "foreign pyramid (read-only)" in segmend("info", str(v2_master)).stdout
    for path in (v3_master, v2_master):
        result = segmend("verify", str(path), "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        report = json.loads(result.stdout)
        assert report["ok"] and report["blocks_checked"] > 0
    assert tree(v3_master) == before


def test_verify_reports_a_corrupted_level(tmp_path: Path, real_labels: NDArray[np.uint64],
                                          real_image: NDArray[np.uint8]) -> None:
    path = write_v3_image(tmp_path / "bad.zarr", real_labels, real_image)
    s3 = zarr.open_array(path / "labels" / "cells" / "3", mode="r+")  # the coarsest
    wrong = np.asarray(s3[1:3, 2:4, 4:7])
    s3[1:3, 2:4, 4:7] = wrong + 1  # 12 voxels no longer their 2x2x2 vote
    result = segmend("verify", str(path))
    assert result.returncode == 1
    assert result.stdout.startswith("FAILED: ") and ", 1 differ" in result.stdout
    assert "labels/s3 block (0, 0, 0): 12 voxels differ; first at voxel (1, 2, 4)" in result.stdout
    with open_dataset(path) as ds:
        report = ds.verify()
    assert not report.ok and report.mismatched_blocks == 1
    assert report.mismatches[0].found == int(wrong[0, 0, 0]) + 1


def test_foreign_rule_is_the_root_attribute_as_in_hdf5(
        tmp_path: Path, real_labels: NDArray[np.uint64]) -> None:
    path = write_v2_label_image(tmp_path / "blk.zarr", real_labels)
    group = zarr.open_group(path, mode="r+")
    for i, level in enumerate(pyramid(real_labels.astype(np.uint32), rule="labelblk")):
        group[str(i)][...] = level.reshape((1, 1, *level.shape))
    with open_dataset(path) as ds:
        assert not ds.verify().ok  # by labelmap, the default
    group.attrs["downres_rule"] = "labelblk"
    with open_dataset(path) as ds:
        assert ds.store.rule == "labelblk" and ds.verify().ok


# ------------------------------------------------------------------- refusals
def test_editing_is_refused_and_changes_nothing(v3_master: Path) -> None:
    before = tree(v3_master)
    with pytest.raises(FormatError) as refused:
        open_dataset(v3_master, "r+")
    message = str(refused.value)
    assert message.startswith(f"{v3_master}: ") and "read-only" in message
    assert f"segmend build {v3_master} OUT.h5" in message and "\n" not in message
    with pytest.raises(FormatError, match="read-only"):
        PyramidStore.open(v3_master, "r+")
    ds, why = open_editable(v3_master)
    with ds:
        assert ds.mode == "r" and why is not None and "read-only" in str(why)
    result = segmend("merge", str(v3_master), "1", "2")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("segmend: error: ") and result.stderr.count("\n") == 1
    assert "read-only" in result.stderr and "segmend build" in result.stderr
    assert tree(v3_master) == before


def test_bad_zarr_stores_name_the_path(tmp_path: Path, v3_master: Path) -> None:
    missing = tmp_path / "missing.zarr"
    with pytest.raises(FormatError, match=f"^{re.escape(str(missing))}: no such file"):
        open_dataset(missing)
    empty = tmp_path / "empty.zarr"
    empty.mkdir()
    with pytest.raises(FormatError, match=f"^{re.escape(str(empty))}: not a Zarr group"):
        open_dataset(empty)
    plain = tmp_path / "plain.zarr"
    zarr.open_group(plain, mode="w").create_array("0", shape=(4, 4, 4), dtype="uint64")
    with pytest.raises(FormatError, match=f"^{re.escape(str(plain))}: no label image"):
        open_dataset(plain)
    gray = tmp_path / "gray.zarr"
    root = zarr.open_group(gray, mode="w")
    root.attrs["ome"] = {"version": "0.5", "multiscales": multiscales(
        "0.5", ["z", "y", "x"], [None] * 3, [1.0] * 3, 1)}
    root.create_array("0", shape=(4, 4, 4), dtype="uint8")
    with pytest.raises(FormatError, match=f"^{re.escape(str(gray))}: no label image"):
        open_dataset(gray, "r+")  # (what is wrong, not that it is read-only)
    assert not holds_ome_zarr_pyramid(gray) and holds_ome_zarr_pyramid(v3_master)
    flat = tmp_path / "flat.zarr"  # a 2D label image
    root = zarr.open_group(flat, mode="w")
    root.attrs["ome"] = {"version": "0.5", "image-label": {}, "multiscales": multiscales(
        "0.5", ["c", "y", "x"], [None] * 3, [1.0] * 3, 1)}
    root.create_array("0", shape=(2, 4, 4), dtype="uint32")
    with pytest.raises(FormatError, match=r"label image \(the root\) holds no 3D multiscales"):
        open_dataset(flat)
    narrow = tmp_path / "narrow.zarr"  # uint8 labels
    root = zarr.open_group(narrow, mode="w")
    root.attrs["ome"] = {"version": "0.5", "image-label": {}, "multiscales": multiscales(
        "0.5", ["z", "y", "x"], [None] * 3, [1.0] * 3, 1)}
    root.create_array("0", shape=(4, 4, 4), dtype="uint8")
    with pytest.raises(FormatError, match="holds uint8 voxels; labels must be integers"):
        open_dataset(narrow)
    for path in (missing, empty, plain, gray, flat, narrow):
        assert not Path(f"{path}.segmend").exists()
    result = segmend("info", str(plain))
    assert result.returncode == 1 and result.stderr.startswith(f"segmend: error: {plain}: ")


def test_a_damaged_chunk_is_a_format_error(tmp_path: Path, real_labels: NDArray[np.uint64],
                                           real_image: NDArray[np.uint8]) -> None:
    path = write_v3_image(tmp_path / "damaged.zarr", real_labels, real_image)
    (path / "labels" / "cells" / "0" / "c" / "0" / "0" / "0").write_bytes(b"not a shard" * 8)
    with open_dataset(path) as ds, pytest.raises(FormatError, match="cannot read voxels"):
        ds.read_block(LABELS, 0, (0, 0, 0))


def test_zarr_paths_are_recognised(tmp_path: Path, v2_master: Path) -> None:
    assert is_zarr_path(v2_master) and is_zarr_path(tmp_path / "x.ZARR")
    renamed = tmp_path / "store"
    renamed.symlink_to(v2_master)
    assert is_zarr_path(renamed) and not is_zarr_path(tmp_path)
    assert not is_zarr_path(tmp_path / "x.h5")
