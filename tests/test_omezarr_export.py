"""``segmend export``: OME-Zarr (NGFF 0.5, Zarr v3, sharded) read back by zarr-python,
ome-zarr's reader and ome-zarr-models, on the real cube; edits journaled but not
checkpointed included; cancelled or refused exports leave nothing."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import zarr
from numpy.typing import NDArray
from ome_zarr.io import parse_url
from ome_zarr.reader import Label, Multiscales, Reader
from ome_zarr_models.v05.image import Image
from ome_zarr_models.v05.image_label import ImageLabel
from zarr.codecs import BloscCodec, GzipCodec

from app.kernels import reference
from app.model.bulk.build import build_pyramid
from app.model.bulk.partials import hold_partial, partial_path
from app.model.dataset import open_dataset
from app.model.errors import CancelledError, FormatError, SegmendError
from app.model.omezarr.export import export_ome_zarr, export_summary
from app.model.omezarr.writer import LevelsSpec, building_ome_zarr
from app.model.storage.layout import COMPRESSIONS
from app.model.storage.store import IMAGE, LABELS
from tests.conftest import fill_disk

REPO = Path(__file__).resolve().parents[1]


def segmend(*args: object) -> subprocess.CompletedProcess[str]:
    """``segmend ARGS`` in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "app", *(str(a) for a in args)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )


def tree(folder: Path) -> dict[str, int]:
    """Every path under ``folder`` (relative) → its size (0 for folders)."""
    return {
        str(p.relative_to(folder)): 0 if p.is_dir() else p.stat().st_size
        for p in sorted(folder.rglob("*"))
    }


def h5_levels(path: Path, kind: str) -> list[NDArray[Any]]:
    with h5py.File(path, "r") as f:
        return [f[f"{kind}/s{k}"][...] for k in range(len(f[kind]))]


def zarr_levels(out: Path, paths: list[str]) -> list[NDArray[Any]]:
    return [zarr.open_array(str(out), path=p, mode="r")[...] for p in paths]


def test_every_level_reads_back_equal_with_zarr_python(
    small_pyramid: Path, tmp_path: Path, rule: str
) -> None:
    """The real crop (37, 70, 101), 16³ blocks (not dividing it), both rules."""
    seen: list[tuple[int, int]] = []
    out = export_ome_zarr(
        small_pyramid, tmp_path / "out.zarr", workers=2, progress=lambda d, t: seen.append((d, t))
    )
    labels, image = h5_levels(small_pyramid, LABELS), h5_levels(small_pyramid, IMAGE)
    assert len(labels) == len(image) == 4
    label_paths = [f"labels/segmentation/{k}" for k in range(4)]
    for k, (want, got) in enumerate(zip(labels, zarr_levels(out, label_paths), strict=True)):
        assert got.dtype == np.uint64 and np.array_equal(got, want), f"labels s{k}"
    image_paths = ["0", "1", "2", "3"]
    for k, (want, got) in enumerate(zip(image, zarr_levels(out, image_paths), strict=True)):
        assert got.dtype == np.uint8 and np.array_equal(got, want), f"image s{k}"
    s0 = zarr.open_array(str(out), path=label_paths[0], mode="r")
    assert s0.metadata.zarr_format == 3 and s0.chunks == (16, 16, 16)
    assert s0.shards == (48, 64, 64)  # 4 blocks a side, cut to the grid (3 blocks in z)
    assert s0.metadata.dimension_names == ("z", "y", "x") and s0.fill_value == 0
    assert s0.compressors == (BloscCodec(cname="lz4", clevel=5, shuffle="noshuffle", typesize=8),)
    top = zarr.open_array(str(out), path=label_paths[3], mode="r")
    assert top.chunks == top.shards == (5, 9, 13)  # a level smaller than one block
    blocks = sum(int(np.prod([-(-s // 16) for s in a.shape])) for a in labels + image)
    assert seen[-1] == (blocks, blocks) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr", "small.h5"]
    mark = zarr.open_group(str(out), mode="r").attrs["segmend"]
    with h5py.File(small_pyramid, "r") as f:
        expected = dict(downres_rule=f.attrs["downres_rule"], compression=f.attrs["compression"],
                        max_label=int(f.attrs["max_label"]))
    assert mark == {"format": "segmend-ome-zarr", "format_version": 1,
                    "created_by": "segmend export", **expected}


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_odd_blocks_and_every_compression(tmp_path: Path, compression: str, rule: str) -> None:
    """Blocks (4, 6, 8) that divide no axis of (9, 13, 31); the dataset's codec
    becomes the shards' inner codec."""
    rng = np.random.default_rng(3)
    vol = rng.integers(0, 5, (9, 13, 31)).astype(np.uint64) * (2**62)
    np.save(tmp_path / "v.npy", vol)
    built = build_pyramid(tmp_path / "v.npy", tmp_path / "v.h5", block_size=(4, 6, 8),
                          rule=rule, compression=compression)
    out = export_ome_zarr(built, tmp_path / "v.zarr")
    labels = h5_levels(built, LABELS)
    paths = [f"labels/segmentation/{k}" for k in range(len(labels))]
    for want, got in zip(labels, zarr_levels(out, paths), strict=True):
        assert np.array_equal(got, want)
    assert np.array_equal(labels[0], vol)
    s0 = zarr.open_array(str(out), path=paths[0], mode="r")
    assert s0.chunks == (4, 6, 8) and s0.shards == (12, 18, 32)
    expected = {
        "blosc-lz4": (BloscCodec(cname="lz4", clevel=5, shuffle="noshuffle", typesize=8),),
        "blosc-zstd": (BloscCodec(cname="zstd", clevel=3, shuffle="noshuffle", typesize=8),),
        "gzip": (GzipCodec(level=1),),
        "none": (),
    }
    assert s0.compressors == expected[compression]


def test_ome_zarr_reader_and_models_read_image_and_label(
    tmp_path: Path, real_sources: tuple[str, str], real_image: NDArray[np.uint8]
) -> None:
    labels_src, image_src = real_sources
    built = build_pyramid(labels_src, tmp_path / "p.h5", image=image_src, block_size=(16, 16, 16),
                          voxel_size_nm=(30.0, 8.0, 8.0))
    out = export_ome_zarr(built, tmp_path / "p.zarr")

    nodes = list(Reader(parse_url(str(out)))())
    image_node, label_node = nodes[0], next(n for n in nodes if n.load(Label))
    assert image_node.load(Multiscales) and not image_node.load(Label)
    assert [d.shape for d in image_node.data] == [lv.shape for lv in h5_levels(built, IMAGE)]
    assert np.array_equal(np.asarray(image_node.data[0]), real_image)
    assert label_node.zarr.basename() == "segmentation"
    assert np.array_equal(np.asarray(label_node.data[1]), h5_levels(built, LABELS)[1])
    transforms = label_node.metadata["coordinateTransformations"]
    assert transforms[2] == [
        {"type": "scale", "scale": [120.0, 32.0, 32.0]},
        {"type": "translation", "translation": [45.0, 12.0, 12.0]},  # (4 - 1) / 2 voxels
    ]
    assert image_node.metadata["coordinateTransformations"] == transforms
    assert image_node.metadata["axes"] == [
        {"name": a, "type": "space", "unit": "nanometer"} for a in "zyx"
    ]

    group = zarr.open_group(str(out), mode="r")
    model = Image.from_zarr(group)
    assert model.labels is not None and model.labels.label_paths == ["segmentation"]
    label_model = ImageLabel.from_zarr(group["labels/segmentation"])
    assert label_model.ome_attributes.image_label is not None
    assert label_model.ome_attributes.image_label.source is not None
    assert label_model.ome_attributes.image_label.source.image == "../../"
    summary = export_summary(out)
    assert summary["voxel_size_nm"] == [30.0, 8.0, 8.0] and len(summary["image_levels"]) == 4


def test_without_grayscale_the_root_image_names_the_label_arrays(
    tmp_path: Path, real_labels: NDArray[np.uint64]
) -> None:
    np.save(tmp_path / "l.npy", real_labels)
    built = build_pyramid(tmp_path / "l.npy", tmp_path / "l.h5", block_size=(8, 12, 14))
    out = export_ome_zarr(built, tmp_path / "l.zarr")
    group = zarr.open_group(str(out), mode="r")
    datasets = group.attrs["ome"]["multiscales"][0]["datasets"]  # type: ignore[index,call-overload]
    n = len(h5_levels(built, LABELS))
    assert [d["path"] for d in datasets] == [f"labels/segmentation/{k}" for k in range(n)]
    assert sorted(group.array_keys()) == []  # no copy of the labels at the root
    model = Image.from_zarr(group)
    assert model.labels is not None and model.labels.label_paths == ["segmentation"]
    nodes = list(Reader(parse_url(str(out)))())
    label_node = next(node for node in nodes if node.load(Label))
    for got, want in zip(label_node.data, h5_levels(built, LABELS), strict=True):
        assert np.array_equal(np.asarray(got), want)
    assert export_summary(out)["image_levels"] == []


def test_a_foreign_pyramid_exports_the_scales_both_pyramids_have(
    tmp_path: Path, real_labels: NDArray[np.uint64], real_image: NDArray[np.uint8]
) -> None:
    """Another tool's pyramid (uint32 labels ``0..2``, grayscale ``0..1``, no
    attributes): two scales of each, 1 nm voxels, chunks as blocks."""
    seg = [real_labels.astype(np.uint32)]
    for _ in range(2):
        seg.append(reference.downsample_labels_ref(seg[-1], "labelmap"))
    raw = [real_image, reference.downsample_image_ref(real_image)]
    path = tmp_path / "foreign.h5"
    with h5py.File(path, "w") as f:
        for k, a in enumerate(seg):
            f.create_dataset(f"volumes/seg/{k}", data=a, chunks=(8, 16, 16))
        for k, a in enumerate(raw):
            f.create_dataset(f"volumes/raw/{k}", data=a, chunks=(8, 16, 16))
    out = export_ome_zarr(path, tmp_path / "foreign.zarr")
    labels = zarr_levels(out, ["labels/segmentation/0", "labels/segmentation/1"])
    assert [a.dtype for a in labels] == [np.uint32, np.uint32]
    assert all(np.array_equal(a, b) for a, b in zip(labels, seg, strict=False))
    assert all(np.array_equal(a, b) for a, b in zip(zarr_levels(out, ["0", "1"]), raw,
                                                    strict=True))
    summary = export_summary(out)
    assert len(summary["levels"]) == len(summary["image_levels"]) == 2
    assert summary["voxel_size_nm"] == [1.0, 1.0, 1.0]
    assert zarr.open_array(str(out), path="0", mode="r").chunks == (8, 16, 16)
    Image.from_zarr(zarr.open_group(str(out), mode="r"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign.h5", "foreign.zarr"]


def test_edits_journaled_not_checkpointed_are_exported(
    small_pyramid: Path, tmp_path: Path, real_labels: NDArray[np.uint64], rule: str
) -> None:
    """A writer holds two merges in its journal, the HDF5 file none: ``segmend
    export`` in another process writes the merged labels, at every scale."""
    model = real_labels.copy()
    with open_dataset(small_pyramid, "r+", checkpoint_interval=3600.0) as writer:
        ids, counts = np.unique(model[model > 0], return_counts=True)
        a, b, c = (int(v) for v in ids[np.argsort(-counts)][:3])
        writer.merge(a, [b])
        writer.merge(c, [a])
        model[np.isin(model, [a, b])] = c
        info = json.loads(segmend("info", small_pyramid, "--json").stdout)
        assert info["journaled_mutation"] - info["checkpointed_mutation"] == 2
        run = segmend("export", small_pyramid, tmp_path / "e.zarr", "--json")
        assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["out"] == str(tmp_path / "e.zarr") and result["shape"] == [37, 70, 101]
    assert len(result["levels"]) == len(result["image_levels"]) == 4
    want = model
    for k in range(4):
        got = zarr.open_array(str(tmp_path / "e.zarr"), path=f"labels/segmentation/{k}", mode="r")
        assert np.array_equal(got[...], want), f"labels s{k}"
        want = reference.downsample_labels_ref(want, rule)


def test_cli_prints_a_summary_and_replaces_its_own_export(
    small_pyramid: Path, tmp_path: Path
) -> None:
    out = tmp_path / "s.zarr"
    first = segmend("export", small_pyramid, out)
    assert first.returncode == 0, first.stderr
    assert f"wrote:       {out} (OME-Zarr 0.5)" in first.stdout
    assert "levels:      4  37x70x101 19x35x51 10x18x26 5x9x13" in first.stdout
    with open_dataset(small_pyramid, "r+") as ds:
        target = int(ds.labels(0)[18, 35, 50])
        other = int(ds.labels(0)[36, 69, 100])
        ds.merge(target, [other])
    second = segmend("export", small_pyramid, out, "--threads", "1")
    assert second.returncode == 0, second.stderr
    s0 = zarr.open_array(str(out), path="labels/segmentation/0", mode="r")[...]
    assert np.array_equal(s0, h5_levels(small_pyramid, LABELS)[0])
    assert other not in np.unique(s0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr", "small.h5", "small.h5.segmend"]


def test_cancel_leaves_nothing(small_pyramid: Path, tmp_path: Path) -> None:
    cancel = threading.Event()
    before = tree(tmp_path)
    with pytest.raises(CancelledError):
        export_ome_zarr(small_pyramid, tmp_path / "c.zarr", workers=1,
                        progress=lambda _d, _t: cancel.set(), cancel=cancel)
    assert tree(tmp_path) == before


def test_refused_exports_change_nothing(
    small_pyramid: Path, tmp_path: Path, real_sources: tuple[str, str]
) -> None:
    plain = tmp_path / "plain.h5"
    plain.write_bytes(Path(real_sources[0].partition(":")[0]).read_bytes())
    (tmp_path / "folder.zarr").mkdir()
    (tmp_path / "folder.zarr" / "notes.txt").write_text("mine")
    zarr.create_group(str(tmp_path / "theirs.zarr"), attributes={"ome": {"version": "0.5"}})
    (tmp_path / "file.zarr").write_text("not a folder")
    before = tree(tmp_path)
    cases = [
        (plain, tmp_path / "a.zarr", f"{plain}: no label pyramid found"),
        (tmp_path / "missing.h5", tmp_path / "a.zarr", f"{tmp_path / 'missing.h5'}: no such file"),
        (small_pyramid, tmp_path / "folder.zarr",
         f"{tmp_path / 'folder.zarr'} exists and is not an OME-Zarr written by segmend"),
        (small_pyramid, tmp_path / "theirs.zarr",
         f"{tmp_path / 'theirs.zarr'} exists and is not an OME-Zarr written by segmend"),
        (small_pyramid, tmp_path / "file.zarr",
         f"{tmp_path / 'file.zarr'} exists and is not an OME-Zarr written by segmend"),
        (small_pyramid, tmp_path / "no" / "such" / "dir.zarr",
         f"cannot write {tmp_path / 'no' / 'such' / 'dir.zarr'}: No such file or directory"),
    ]
    for src, out, message in cases:
        run = segmend("export", src, out)
        assert run.returncode == 1, (src, out, run.stdout)
        assert run.stderr.startswith(f"segmend: error: {message}"), run.stderr
        assert run.stderr.count("\n") == 1 and run.stdout == ""
        assert tree(tmp_path) == before, (src, out)


def test_a_dead_exports_partial_folder_is_removed_a_live_ones_kept(
    small_pyramid: Path, tmp_path: Path
) -> None:
    out = tmp_path / "p.zarr"
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()  # its id names no process now
    dead = partial_path(out, child.pid)
    (dead / "labels").mkdir(parents=True)
    (dead / "labels" / "zarr.json").write_text("{}")
    replaced = dead.with_name(dead.name + ".old")  # killed between the two renames
    replaced.mkdir()
    live = partial_path(out, 2**22 + 7)  # an id no process has here, but held
    held = hold_partial(live, folder=True)
    try:
        export_ome_zarr(small_pyramid, out)
        assert not dead.exists() and not replaced.exists() and live.is_dir()
    finally:
        os.close(held)
    export_ome_zarr(small_pyramid, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.zarr", "small.h5"]


def test_the_writer_builds_under_a_partial_name_and_picklable_paths(tmp_path: Path) -> None:
    """``building_ome_zarr`` alone: arrays opened by path from an unpickled copy,
    shard sizes per scale, an error inside leaves nothing, bad specs create nothing."""
    out = tmp_path / "w.zarr"
    labels = LevelsSpec(((10, 20, 30), (5, 10, 15)), "uint64", (4, 4, 4))
    image = LevelsSpec(((10, 20, 30), (5, 10, 15)), "uint16", (4, 4, 4))
    vol = np.arange(10 * 20 * 30, dtype=np.uint64).reshape(10, 20, 30)
    with building_ome_zarr(out, labels=labels, image=image, voxel_size_nm=(2.0, 1.0, 1.0),
                           rule="labelmap", compression="gzip", shard_blocks=[2, 8]) as pyramid:
        assert pyramid.root == partial_path(out) and pyramid.root.is_dir() and not out.exists()
        copy = pickle.loads(pickle.dumps(pyramid))
        arr = copy.open_array(LABELS, 0)
        assert arr.shards == (8, 8, 8) and copy.open_array(IMAGE, 1).shards == (8, 12, 16)
        arr[...] = vol
        assert copy.open_array(IMAGE, 1, mode="r").dtype == np.uint16
    assert np.array_equal(zarr.open_array(str(out), path=pyramid.label_paths[0], mode="r")[...],
                          vol)
    before = tree(tmp_path)
    with pytest.raises(RuntimeError, match="boom"), building_ome_zarr(
        out, labels=labels, image=None, voxel_size_nm=(1.0, 1.0, 1.0), compression="none",
        rule="labelmap",
    ):
        raise RuntimeError("boom")
    assert tree(tmp_path) == before
    bad = [
        dict(labels=labels, image=LevelsSpec(((10, 20, 30),), "uint8", (4, 4, 4))),
        dict(labels=labels, image=None, shard_blocks=[1]),
        dict(labels=LevelsSpec(((0, 2, 2),), "uint64", (4, 4, 4)), image=None),
    ]
    for kwargs in bad:
        with pytest.raises(ValueError), building_ome_zarr(
            tmp_path / "x.zarr", voxel_size_nm=(1.0, 1.0, 1.0), compression="gzip",
            rule="labelmap", **kwargs,  # type: ignore[arg-type]
        ):
            pass
    with pytest.raises(ValueError, match="unknown compression"), building_ome_zarr(
        tmp_path / "x.zarr", labels=labels, image=None, voxel_size_nm=(1.0, 1.0, 1.0),
        compression="lzw", rule="labelmap",
    ):
        pass
    with pytest.raises(FormatError, match="not an OME-Zarr written by segmend"), building_ome_zarr(
        tmp_path, labels=labels, image=None, voxel_size_nm=(1.0, 1.0, 1.0), compression="gzip",
        rule="labelmap",
    ):
        pass
    assert tree(tmp_path) == before


@pytest.mark.parametrize("leave", [0, 64 << 10], ids=["from the start", "during the export"])
def test_an_export_on_a_full_disk_fails_in_one_line_and_leaves_nothing(
    small_pyramid: Path, small_disk: Path, leave: int
) -> None:
    filler = fill_disk(small_disk, leave=leave)
    out = small_disk / "x.zarr"
    with pytest.raises(SegmendError, match=f"^cannot write {out}: No space left on device$"):
        export_ome_zarr(small_pyramid, out)
    assert list(small_disk.iterdir()) == [filler]
    filler.unlink()
    export_ome_zarr(small_pyramid, out)  # the space back, it goes through
    assert sorted(p.name for p in small_disk.iterdir()) == ["x.zarr"]
