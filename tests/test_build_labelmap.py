"""``build --mapping``: a labelmap-mode pyramid of the shipped cube's automated
supervoxels and their mapping, from every kind of mapping file; its counters
cover the mapping's ids; a bad mapping or an OME-Zarr output is refused in one
line before any work; ``info`` shows the mode."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from numpy.typing import NDArray

from app.model.bulk.build import build_pyramid
from app.model.bulk.cluster import Cluster
from app.model.errors import FormatError
from app.model.info import dataset_info
from app.model.labelmap import Mapping
from tests.conftest import run_cli as run

BLOCK = (16, 16, 16)


def listing(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def supervoxels(cube_path: Path) -> NDArray[np.uint64]:
    """An odd-shaped crop (37, 70, 101) of the cube's automated supervoxels."""
    with h5py.File(cube_path, "r") as f:
        return f["automated/supervoxels"][100:137, 40:110, 20:121]


@pytest.fixture(scope="module")
def rows(cube_path: Path) -> NDArray[np.uint64]:
    """The cube's automated mapping: 3,337 (supervoxel, body) rows, as shipped."""
    with h5py.File(cube_path, "r") as f:
        return f["automated/mapping"][...]


@pytest.fixture(scope="module")
def sources(
    tmp_path_factory: pytest.TempPathFactory,
    supervoxels: NDArray[np.uint64],
    rows: NDArray[np.uint64],
) -> dict[str, str]:
    """The supervoxels as a plain HDF5 dataset, and the mapping in every form."""
    folder = tmp_path_factory.mktemp("labelmap-sources")
    with h5py.File(folder / "plain.h5", "w") as f:
        f.create_dataset("sv", data=supervoxels, chunks=(16, 16, 16), compression="gzip")
        f.create_dataset("agglo/mapping", data=rows)
    np.save(folder / "mapping.npy", rows)
    (folder / "mapping.txt").write_text("".join(f"{sv} {body}\n" for sv, body in rows.tolist()))
    return {
        "src": f"{folder}/plain.h5:/sv",
        "h5": f"{folder}/plain.h5:/agglo/mapping",
        "npy": str(folder / "mapping.npy"),
        "text": str(folder / "mapping.txt"),
    }


@pytest.fixture(scope="module")
def voxel_pyramid(tmp_path_factory: pytest.TempPathFactory, sources: dict[str, str]) -> Path:
    """The supervoxels built without a mapping (voxel mode)."""
    return build_pyramid(
        sources["src"], tmp_path_factory.mktemp("voxel") / "voxel.h5", block_size=BLOCK
    )


def file_mapping(path: Path) -> tuple[str | None, NDArray[np.uint64], int, int]:
    """A pyramid file's mode attribute, /mapping, max_label and next_label."""
    with h5py.File(path, "r") as f:
        mode = f.attrs.get("mode")
        return (
            None if mode is None else str(mode), f["mapping"][...],
            int(f.attrs["max_label"]), int(f.attrs["next_label"]),
        )


def test_every_kind_of_mapping_builds_the_same_labelmap_pyramid(
    tmp_path: Path,
    sources: dict[str, str],
    supervoxels: NDArray[np.uint64],
    rows: NDArray[np.uint64],
) -> None:
    sorted_rows = rows[np.argsort(rows[:, 0])]
    assert not np.isin(rows[:, 0], supervoxels).all()  # (mapped supervoxels the crop lacks)
    built = {
        kind: build_pyramid(
            sources["src"], tmp_path / f"{kind}.h5", mapping=sources[kind], block_size=BLOCK
        )
        for kind in ("h5", "npy", "text")
    }
    built["object"] = build_pyramid(
        sources["src"], tmp_path / "object.h5", mapping=Mapping.from_pairs(rows),
        block_size=BLOCK,
    )
    top = max(int(rows.max()), int(supervoxels.max()))
    for kind, path in built.items():
        mode, mapping, max_label, next_label = file_mapping(path)
        assert mode == "labelmap", kind
        assert mapping.dtype == np.uint64 and np.array_equal(mapping, sorted_rows), kind
        assert (max_label, next_label) == (top, top + 1), kind
        with h5py.File(path, "r") as f:
            assert np.array_equal(f["labels/s0"][...], supervoxels), kind


def test_a_build_on_dask_writes_the_same_mapping_and_counters(
    tmp_path: Path, sources: dict[str, str]
) -> None:
    threaded = build_pyramid(
        sources["src"], tmp_path / "threads.h5", mapping=sources["npy"], block_size=BLOCK
    )
    on_dask = build_pyramid(
        sources["src"], tmp_path / "dask.h5", mapping=sources["npy"], block_size=BLOCK,
        cluster=Cluster(threads=2), task_blocks=2,
    )
    mode, mapping, *counters = file_mapping(threaded)
    dask_mode, dask_mapping, *dask_counters = file_mapping(on_dask)
    assert mode == dask_mode == "labelmap" and counters == dask_counters
    assert np.array_equal(mapping, dask_mapping)


def test_without_a_mapping_the_file_has_no_mode_and_no_mapping(voxel_pyramid: Path) -> None:
    with h5py.File(voxel_pyramid, "r") as f:
        assert "mode" not in f.attrs and "mapping" not in f


@pytest.mark.parametrize(
    "extra", [[[2**40, 7]], [[5, 2**50]], [[2**64 - 1, 3]]],
    ids=["supervoxel", "body", "uint64-max"],
)
def test_the_counters_cover_mapping_ids_beyond_the_voxels(
    tmp_path: Path,
    sources: dict[str, str],
    supervoxels: NDArray[np.uint64],
    rows: NDArray[np.uint64],
    extra: list[list[int]],
) -> None:
    pairs = np.concatenate([rows[~np.isin(rows[:, 0], [5])], np.array(extra, np.uint64)])
    np.save(tmp_path / "m.npy", pairs)
    out = build_pyramid(
        sources["src"], tmp_path / "out.h5", mapping=tmp_path / "m.npy", block_size=BLOCK
    )
    top = max(extra[0])
    assert top > int(supervoxels.max())
    _mode, _mapping, max_label, next_label = file_mapping(out)
    assert max_label == top and next_label == min(top + 1, 2**64 - 1)
    info = dataset_info(out)
    assert info["max_label"] == top
    assert info["next_label"] == (None if top == 2**64 - 1 else top + 1)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("odd.txt", "1 2\n3\n", "odd number of ids"),
        ("negative.txt", "1 2\n3 -4\n", "negative ids"),
        ("twice.txt", "1 2\n1 3\n", "supervoxel 1 is mapped twice"),
        ("words.txt", "1 2\n3 x\n", "expected lines of two integers"),
        ("missing.txt", None, "no such mapping file"),
        ("m.h5:/nope", None, "no dataset /nope"),
    ],
)
def test_a_bad_mapping_is_refused_in_one_line_and_nothing_is_written(
    tmp_path: Path,
    sources: dict[str, str],
    voxel_pyramid: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: str | None,
    message: str,
) -> None:
    maps = tmp_path / "maps"
    maps.mkdir()
    if content is not None:
        (maps / name).write_text(content)
    with h5py.File(maps / "m.h5", "w") as f:
        f["mapping"] = np.array([[1, 2]], np.uint64)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(FormatError, match=message) as caught:
        build_pyramid(sources["src"], out_dir / "new.h5", mapping=maps / name)
    assert "\n" not in str(caught.value)
    assert list(out_dir.iterdir()) == []

    existing = out_dir / "existing.h5"
    existing.write_bytes(voxel_pyramid.read_bytes())
    before = listing(out_dir)
    code, out, err = run(capsys, "build", sources["src"], existing, "--mapping", maps / name)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("segmend: error: ") and message in err, err
    assert listing(out_dir) == before


def test_a_mapping_with_an_ome_zarr_output_is_refused_before_any_work(
    tmp_path: Path, sources: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match="needs an editable HDF5 pyramid, not an OME-Zarr"):
        build_pyramid(sources["src"], tmp_path / "out.zarr", mapping=sources["npy"])
    code, out, err = run(
        capsys, "build", sources["src"], tmp_path / "out.zarr", "--mapping", "no-such-file.txt"
    )
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "not an OME-Zarr" in err, err
    assert list(tmp_path.iterdir()) == []


def test_info_shows_the_mode_both_ways(
    tmp_path: Path,
    sources: dict[str, str],
    voxel_pyramid: Path,
    rows: NDArray[np.uint64],
    capsys: pytest.CaptureFixture[str],
) -> None:
    info = dataset_info(voxel_pyramid)
    assert info["mode"] == "voxel" and "mapped_supervoxels" not in info
    code, text, _ = run(capsys, "info", voxel_pyramid)
    assert code == 0 and "\nmode:        voxel\n" in text

    labelmap = build_pyramid(
        sources["src"], tmp_path / "lm.h5", mapping=sources["h5"], block_size=BLOCK
    )
    info = dataset_info(labelmap)
    assert info["mode"] == "labelmap" and info["mapped_supervoxels"] == len(rows)
    code, text, _ = run(capsys, "info", labelmap)
    assert code == 0 and f"\nmode:        labelmap ({len(rows)} mapped supervoxels)\n" in text
    code, text, _ = run(capsys, "info", labelmap, "--json")
    assert code == 0 and json.loads(text)["mode"] == "labelmap"


def test_cli_build_with_a_text_mapping(
    tmp_path: Path,
    sources: dict[str, str],
    rows: NDArray[np.uint64],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, text, _ = run(capsys, "build", "--help")
    help_text = " ".join(text.split())  # (as wrapped to any terminal width)
    assert code == 0 and "--mapping MAP" in help_text and "(DVID's GET /mappings)" in help_text
    out = tmp_path / "lm.h5"
    code, text, err = run(
        capsys, "build", sources["src"], out, "--mapping", sources["text"],
        "--block-size", "16", "--json",
    )
    assert code == 0, err
    info = json.loads(text)
    assert info["mode"] == "labelmap" and info["mapped_supervoxels"] == len(rows)
    assert info["max_label"] == int(rows.max())
    _mode, mapping, _max, _next = file_mapping(out)
    assert np.array_equal(mapping, rows[np.argsort(rows[:, 0])])
    code, text, err = run(capsys, "verify", out, "--json")
    assert code == 0 and json.loads(text)["ok"], err
