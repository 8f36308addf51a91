"""``build`` from Zarr v2 and v3 arrays, OME-Zarr groups (written by ome-zarr-py)
and N5 datasets (written by TensorStore): the pyramid's s0 equals the source."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import zarr
from numpy.typing import NDArray

from app.model.bulk.build import build_pyramid
from app.model.errors import FormatError
from app.model.storage.sources import open_source, split_spec

with warnings.catch_warnings():  # ome-zarr 0.18 warns of its deprecated Scaler when imported
    warnings.simplefilter("ignore", DeprecationWarning)
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image, write_labels


def built_s0(spec: str, out: Path, image: str | None = None) -> tuple[NDArray[Any], ...]:
    """Build a pyramid from ``spec`` (16³ blocks); its label (and image) s0."""
    build_pyramid(spec, out, image=image, block_size=(16, 16, 16))
    with h5py.File(out, "r") as f:
        return (f["labels/s0"][...],) + ((f["image/s0"][...],) if image else ())


def test_split_spec() -> None:
    assert split_spec("a/b.h5:/seg") == ("a/b.h5", "/seg")
    assert split_spec("a/b.zarr:/labels/seg") == ("a/b.zarr", "/labels/seg")
    assert split_spec("a/c.n5:/vol/s0") == ("a/c.n5", "/vol/s0")
    assert split_spec("a/c.n5") == ("a/c.n5", "")
    assert split_spec("x.zarr/y.h5:/d") == ("x.zarr/y.h5", "/d")


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_build_from_a_zarr_array(
    tmp_path: Path, real_labels: NDArray[np.uint64], zarr_format: int
) -> None:
    """A uint32 array with chunks that divide nothing, at the root and in a group."""
    data = real_labels.astype(np.uint32)
    root = tmp_path / "vol.zarr"
    arr = zarr.create_array(str(root), shape=data.shape, chunks=(10, 24, 33), dtype="uint32",
                            zarr_format=zarr_format)  # type: ignore[arg-type]
    arr[...] = data
    (s0,) = built_s0(str(root), tmp_path / "a.h5")
    assert s0.dtype == np.uint64 and np.array_equal(s0, real_labels)
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w", zarr_format=zarr_format)  # type: ignore[arg-type]
    group.create_array("seg/raw", shape=data.shape, chunks=(37, 8, 8), dtype="uint32")[...] = data
    (s0,) = built_s0(f"{tmp_path / 'g.zarr'}:/seg/raw", tmp_path / "b.h5")
    assert np.array_equal(s0, real_labels)


@pytest.mark.parametrize(
    "fmt", [FormatV04(), FormatV05()], ids=["ngff-0.4-zarr-v2", "ngff-0.5-zarr-v3"]
)
def test_build_from_ome_zarr_groups(
    tmp_path: Path, real_labels: NDArray[np.uint64], real_image: NDArray[np.uint8], fmt: Any
) -> None:
    """An OME-Zarr image with a 3D label image and a (1, 1, z, y, x) one: each
    group gives its scale 0, the leading axes of size 1 dropped."""
    path = tmp_path / "ome.zarr"
    root = zarr.open_group(str(path), mode="w", zarr_format=fmt.zarr_format)
    write_image(real_image, root, axes="zyx", fmt=fmt, scale_factors=(2, 4))
    labels = real_labels.astype(np.uint32)
    write_labels(labels, root, name="cells", axes="zyx", fmt=fmt, scale_factors=(2, 4),
                 scaler=None)
    write_labels(labels[None, None], root, name="tc", axes="tczyx", fmt=fmt, scale_factors=(2,),
                 scaler=None)
    s0, image = built_s0(f"{path}:/labels/cells", tmp_path / "a.h5", image=str(path))
    assert np.array_equal(s0, real_labels) and np.array_equal(image, real_image)
    (s0,) = built_s0(f"{path}:/labels/tc", tmp_path / "b.h5")
    assert np.array_equal(s0, real_labels)
    with open_source(f"{path}:/labels/tc") as src:
        assert src.shape == real_labels.shape
        assert np.array_equal(src[3:5, ..., 7], labels[3:5, :, 7])


def test_zarr_errors_name_the_source(tmp_path: Path) -> None:
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("flat", shape=(4, 5), dtype="uint16")
    group.create_array("floats", shape=(4, 5, 6), dtype="float32")
    group.create_group("empty")
    (tmp_path / "plain").mkdir()
    cases = {
        f"{tmp_path}/g.zarr:/nope": "no readable Zarr array there",
        f"{tmp_path}/g.zarr:/empty": "is a Zarr group, not a volume",
        f"{tmp_path}/g.zarr:/flat": "expected a 3D volume (z, y, x), got shape (4, 5)",
        f"{tmp_path}/g.zarr:/floats": "expected integer voxels, got float32",
        f"{tmp_path}/plain": "a folder that is neither a Zarr store nor an N5 container",
    }
    for spec, message in cases.items():
        with pytest.raises(FormatError) as info, open_source(spec):
            pass
        text = str(info.value)
        assert message in text and "\n" not in text
        assert text.startswith(spec.partition(":")[0]), text


# ------------------------------------------------------------------------ N5


@pytest.fixture
def tensorstore() -> Any:
    """TensorStore, the independent N5 writer of these tests (a dev dependency)."""
    return pytest.importorskip("tensorstore")


def write_n5(ts: Any, root: Path, path: str, data: NDArray[Any], block: tuple[int, int, int],
             compression: dict[str, Any], region: tuple[slice, ...] | None = None) -> None:
    """``data`` (z, y, x) as the N5 dataset ``root/path`` (x, y, z order on disk),
    only ``region`` of it written if given (the other blocks absent)."""
    store = ts.open({
        "driver": "n5",
        "kvstore": {"driver": "file", "path": str(root)},
        "path": path,
        "metadata": {
            "dimensions": list(data.shape[::-1]),
            "blockSize": list(block[::-1]),
            "dataType": str(data.dtype),
            "compression": compression,
        },
    }, create=True).result()
    region = region or (slice(None),) * 3
    store[region[::-1]] = data[region].transpose(2, 1, 0)


@pytest.mark.parametrize("compression", [
    {"type": "gzip"},
    {"type": "gzip", "useZlib": True},
    {"type": "raw"},
    {"type": "zstd"},
    {"type": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1},
    {"type": "xz"},
    {"type": "bzip2"},
], ids=["gzip", "zlib", "raw", "zstd", "blosc", "xz", "bzip2"])
def test_build_from_an_n5_dataset(
    tensorstore: Any, tmp_path: Path, real_labels: NDArray[np.uint64], compression: dict[str, Any]
) -> None:
    root = tmp_path / "vol.n5"
    data = real_labels.astype(np.uint32)
    write_n5(tensorstore, root, "seg/raw", data, (10, 24, 33), compression)  # divides no axis
    (s0,) = built_s0(f"{root}:/seg/raw", tmp_path / "a.h5")
    assert np.array_equal(s0, real_labels)


def test_n5_missing_blocks_read_as_zero_and_groups_give_s0(
    tensorstore: Any, tmp_path: Path, real_labels: NDArray[np.uint64]
) -> None:
    root = tmp_path / "multi.n5"
    part = (slice(0, 20), slice(24, 70), slice(0, 101))
    write_n5(tensorstore, root, "pyr/s0", real_labels, (10, 24, 33), {"type": "gzip"}, part)
    want = np.zeros_like(real_labels)
    want[part] = real_labels[part]
    blocks = root / "pyr" / "s0"  # x/y/z: the part's blocks only
    assert (blocks / "0" / "1" / "0").exists() and (blocks / "3" / "2" / "1").exists()
    assert not (blocks / "0" / "0" / "0").exists() and not (blocks / "0" / "1" / "2").exists()
    (s0,) = built_s0(f"{root}:/pyr", tmp_path / "a.h5")
    assert np.array_equal(s0, want)
    with open_source(f"{root}:/pyr/s0") as src:
        assert src.shape == real_labels.shape and src.dtype == np.uint64
        assert np.array_equal(src[5, 30:40, -3:], want[5, 30:40, -3:])
        assert np.array_equal(src[-1], want[-1])


def n5_block(mode: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    """An N5 block by the format: big-endian mode, ndim, sizes (x first), data."""
    return struct.pack(f">HH{len(dims)}I", mode, len(dims), *dims) + payload


def test_n5_blocks_written_by_the_spec_and_refused_ones(tmp_path: Path) -> None:
    """Blocks written here by the format's description (TensorStore writes edge
    blocks whole; N5's Java writer clips them): clipped edge blocks read, a
    varlength block and a damaged one are refused naming the block."""
    root = tmp_path / "spec.n5"
    dataset = root / "vol"
    dataset.mkdir(parents=True)
    (dataset / "attributes.json").write_text(
        '{"dimensions": [5, 3, 2], "blockSize": [4, 2, 2], "dataType": "uint16",'
        ' "compression": {"type": "gzip", "level": -1}}'
    )
    vol = np.arange(2 * 3 * 5, dtype=np.uint16).reshape(2, 3, 5) + 1
    for gx, gy in [(0, 0), (1, 0), (0, 1), (1, 1)]:
        block = vol[:, gy * 2 : gy * 2 + 2, gx * 4 : gx * 4 + 4]  # clipped at the edges
        payload = zlib.compress(block.astype(">u2").tobytes())
        path = dataset / str(gx) / str(gy) / "0"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(n5_block(0, block.shape[::-1], payload))
    with open_source(f"{root}:/vol") as src:
        assert src.shape == (2, 3, 5) and src.dtype == np.uint16
        assert np.array_equal(src[...], vol)
    bad = dataset / "1" / "1" / "0"
    bad.write_bytes(n5_block(1, (1, 1, 2), struct.pack(">I", 2) + b"\x00" * 4))
    with pytest.raises(FormatError, match=f"^{bad}: varlength N5 blocks are not supported$"), \
            open_source(f"{root}:/vol") as src:
        src[...]
    bad.write_bytes(n5_block(0, (1, 1, 2), b"not gzip"))
    with pytest.raises(FormatError, match=f"^{bad}: damaged N5 block"), \
            open_source(f"{root}:/vol") as src:
        src[...]


def test_n5_refuses_unknown_types_and_codecs(tmp_path: Path) -> None:
    root = tmp_path / "x.n5"
    for name, attrs in {
        "lz4": '{"dimensions": [2, 2, 2], "blockSize": [2, 2, 2], "dataType": "uint8",'
               ' "compression": {"type": "lz4"}}',
        "obj": '{"dimensions": [2, 2, 2], "blockSize": [2, 2, 2], "dataType": "object"}',
        "broken": '{"dimensions": [2, 2, 2]',
    }.items():
        (root / name).mkdir(parents=True)
        (root / name / "attributes.json").write_text(attrs)
    messages = {
        "lz4": "N5 compression 'lz4' is not supported "
               "(supported: raw, gzip, bzip2, xz, zstd, blosc)",
        "obj": "N5 data type 'object' is not supported",
        "broken": "no N5 dataset there",
    }
    for name, message in messages.items():
        with pytest.raises(FormatError) as info, open_source(f"{root}:/{name}"):
            pass
        assert message in str(info.value) and str(info.value).startswith(str(root))
