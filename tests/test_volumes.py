"""The model's view of any HDF5 file: its 3D volumes, the label rule, lazy block reads,
and the one-line error formatter."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from app.model.error_text import one_line
from app.model.errors import FormatError
from app.model.storage.layout import is_image_dtype, is_label_dtype, labels_first
from app.model.storage.volumes import (
    VolumeArray,
    holds_pyramid,
    image_volumes,
    is_hdf5_file,
    label_volumes,
    list_volumes,
)

LABELS = np.arange(5 * 6 * 7, dtype=np.uint32).reshape(5, 6, 7)


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    """A plain HDF5 file: two label volumes (one named like labels), grayscale, a 2D array."""
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("volume", data=LABELS.astype(np.int64))
        f.create_dataset("seg/labels", data=LABELS, chunks=(2, 4, 3))
        f.create_dataset("raw", data=np.ones((5, 6, 7), np.uint16))
        f.create_dataset("flat", data=np.zeros((6, 7), np.uint64))
    return path


@pytest.mark.parametrize(("dtype", "labels", "image"), [
    (np.uint8, False, True), (np.uint16, True, True), (np.int16, True, False),
    (np.uint32, True, False), (np.int32, True, False), (np.uint64, True, False),
    (np.float32, False, False),
])
def test_one_rule_for_label_and_image_volumes(dtype: type, labels: bool, image: bool) -> None:
    assert is_label_dtype(dtype) is labels and is_image_dtype(dtype) is image


def test_labels_first_prefers_label_names_then_wider_integers() -> None:
    volumes = [("/b", np.int32), ("/raw", np.uint8), ("/my_seg", np.uint32), ("/a", np.uint64),
               ("/small", np.uint16)]
    assert labels_first(volumes, lambda v: v[0], lambda v: v[1]) == [
        ("/my_seg", np.uint32), ("/a", np.uint64), ("/b", np.int32), ("/small", np.uint16)]


def test_list_volumes_and_pick_labels(plain: Path) -> None:
    volumes = list_volumes(plain)
    assert sorted(v.name for v in volumes) == ["/raw", "/seg/labels", "/volume"]
    by_name = {v.name: v for v in volumes}
    assert by_name["/seg/labels"].describe() == "5x6x7 uint32"
    assert by_name["/seg/labels"].block_size == (2, 4, 3)
    labels = label_volumes(volumes)  # named first, then the widest; uint16 last
    assert [v.name for v in labels] == ["/seg/labels", "/volume", "/raw"]
    assert [v.name for v in image_volumes(volumes, labels[0])] == ["/raw"]
    assert image_volumes(volumes, by_name["/raw"]) == []
    assert not holds_pyramid(plain)


def test_hdf5_files_are_recognised(plain: Path, tmp_path: Path) -> None:
    fake = tmp_path / "fake.h5"
    fake.write_text("not hdf5")
    assert is_hdf5_file(plain)
    assert not is_hdf5_file(fake) and not is_hdf5_file(tmp_path / "missing.h5")
    assert not is_hdf5_file(tmp_path)
    with pytest.raises(FormatError, match="not an HDF5 file"):
        list_volumes(fake)


@pytest.mark.parametrize("name", ["/seg/labels", "/volume"])
def test_volume_array_reads_like_numpy_and_keeps_no_file_open(plain: Path, name: str) -> None:
    info = next(v for v in list_volumes(plain) if v.name == name)
    array = VolumeArray(plain, info)
    expected = LABELS.astype(info.dtype)
    assert array.shape == (5, 6, 7) and array.dtype == info.dtype and array.ndim == 3
    np.testing.assert_array_equal(np.asarray(array), expected)
    for key in [(2,), (slice(1, 4), 3), (Ellipsis, slice(None, None, 2)), (4, 5, 6),
                (slice(3, 3),)]:
        np.testing.assert_array_equal(array[key], expected[key])
    with h5py.File(plain, "r+") as f:  # nothing holds the file: a writer can open it
        f.attrs["touched"] = 1


def test_one_line_errors() -> None:
    assert one_line(FormatError("bad file\nmore detail")) == "bad file"
    assert one_line(KeyError("no blob x")) == "'no blob x'"
    assert one_line(OSError()) == "OSError"
    assert one_line(RuntimeError("boom")) == "RuntimeError: boom"
    assert one_line(RuntimeError()) == "RuntimeError"
    assert one_line("  \n first\nsecond") == "first"
    assert one_line("") == "unknown error"
