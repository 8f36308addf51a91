"""The napari plugin's sample data is the user's demo pyramid (the one ``segmend
demo`` opens, in labelmap mode): built once in the user data folder, reused, its edits kept, and
built again without them by the "fresh copy" sample; nothing is left in the
temporary folder."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.model.errors import WriterLockedError
from app.model.info import dataset_info
from app.model.journal.sidecar import journal_path
from app.ui import registry

pytestmark = pytest.mark.gui


@pytest.fixture(autouse=True)
def _close_reader_datasets() -> Iterator[None]:
    yield
    registry.close_all()


def temporary_demos() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("segmend-demo-*")}


def test_the_sample_is_the_users_demo_and_keeps_its_edits(
        make_napari_viewer: Callable[..., Any], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    demo = tmp_path / "data" / "segmend" / "demo-labelmap.h5"
    temporary = temporary_demos()
    viewer = make_napari_viewer()

    viewer.open_sample("segmend", "demo")  # built here, the first time
    assert [layer.name for layer in viewer.layers] == ["grayscale", "segmentation: bodies"]
    assert viewer.layers["segmentation: bodies"].data[0].shape == (250, 250, 250)
    assert demo.exists() and temporary_demos() == temporary
    dataset = registry.take(demo)
    assert dataset is not None and dataset.labelmap
    ids = np.unique(np.asarray(dataset.labels(0)[125]))
    dataset.merge(int(ids[1]), [int(ids[2])])
    dataset.close()
    edited = demo.stat().st_mtime_ns

    viewer.layers.clear()
    viewer.open_sample("segmend", "demo")  # reused, with the edit
    assert demo.stat().st_mtime_ns == edited
    with pytest.raises(WriterLockedError, match="close it to replace it"):
        viewer.open_sample("segmend", "demo_fresh")  # refused while open here
    assert demo.stat().st_mtime_ns == edited and journal_path(demo).exists()
    viewer.layers.clear()
    registry.close_all()
    assert dataset_info(demo)["mutations"] == 1

    viewer.open_sample("segmend", "demo_fresh")
    assert [layer.name for layer in viewer.layers] == ["grayscale", "segmentation: bodies"]
    registry.close_all()
    assert dataset_info(demo)["mutations"] == 0
    assert temporary_demos() == temporary
