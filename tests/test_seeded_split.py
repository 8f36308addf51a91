"""Seeded split (issue 18, item 5): a seeded watershed restricted to one body,
committed as ordinary splits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from app.cli import main
from app.model.bulk.build import build_pyramid
from app.model.dataset import Dataset, open_dataset
from app.model.errors import CancelledError, InvalidMutationError, ReadOnlyError
from app.model.mutations.split import Split
from app.model.seeded_split import MARGIN, SeededSplit, Voxel, seeded_split
from tests.conftest import assert_matches_model, biggest

BAR = 1
"""The body of the bar volume."""
WALL_X = 100
"""x of the dark wall across the bar."""


def bar_volume() -> tuple[NDArray[np.uint64], NDArray[np.uint8]]:
    """A bar (body 1) along x, bright, crossed by a dark one-voxel wall at
    x = 100; the rest is body 2 (mid grey)."""
    labels = np.full((24, 24, 200), 2, np.uint64)
    labels[4:20, 4:20, 2:198] = BAR
    image = np.full(labels.shape, 90, np.uint8)
    image[labels == BAR] = 200
    image[4:20, 4:20, WALL_X] = 20
    return labels, image


def neck_volume() -> NDArray[np.uint64]:
    """Two balls (radius 10, centres x = 15 and 45) joined by a neck (radius 2),
    all body 1, in body 2."""
    z, y, x = np.ogrid[:32, :32, :60]
    ball_a = (z - 16) ** 2 + (y - 16) ** 2 + (x - 15) ** 2 <= 100
    ball_b = (z - 16) ** 2 + (y - 16) ** 2 + (x - 45) ** 2 <= 100
    neck = ((z - 16) ** 2 + (y - 16) ** 2 <= 4) & (x >= 15) & (x <= 45)
    labels = np.full((32, 32, 60), 2, np.uint64)
    labels[ball_a | ball_b | neck] = 1
    return labels


def build(tmp_path: Path, labels: NDArray[np.uint64], image: NDArray[np.uint8] | None) -> Path:
    """A pyramid of ``labels`` (and ``image``) with 16³ blocks, its index built."""
    np.save(tmp_path / "labels.npy", labels)
    image_spec = None
    if image is not None:
        np.save(tmp_path / "image.npy", image)
        image_spec = str(tmp_path / "image.npy")
    path = build_pyramid(str(tmp_path / "labels.npy"), tmp_path / "v.h5", image=image_spec,
                         block_size=(16, 16, 16))
    open_dataset(path, "r+").close()  # (builds the label index)
    return path


def whole(split: SeededSplit, shape: tuple[int, ...]) -> NDArray[np.uint8]:
    """The parts placed in a volume of ``shape`` (0 outside the crop)."""
    out = np.zeros(shape, np.uint8)
    out[box(split)] = split.parts
    return out


def box(split: SeededSplit) -> tuple[slice, ...]:
    """The split's crop, as slices of s0."""
    return tuple(slice(o, o + n) for o, n in zip(split.origin, split.parts.shape, strict=True))


def crop(split: SeededSplit, shape: tuple[int, ...]) -> NDArray[np.bool_]:
    """True in the split's crop, in a volume of ``shape``."""
    out = np.zeros(shape, bool)
    out[box(split)] = True
    return out


@pytest.fixture
def bar(tmp_path: Path) -> Path:
    labels, image = bar_volume()
    return build(tmp_path, labels, image)


def test_parts_meet_on_the_dark_wall(bar: Path) -> None:
    labels, _ = bar_volume()
    with open_dataset(bar, "r") as ds:
        split = seeded_split(ds, BAR, [[(12, 12, 80)], [(12, 12, 120), (5, 5, 110)]])
    parts = whole(split, labels.shape)
    body = labels == BAR
    x = np.arange(labels.shape[2])
    assert split.parts.dtype == np.uint8 and split.body == BAR
    assert np.array_equal(parts > 0, body & crop(split, labels.shape))
    assert np.all(parts[body & (x < WALL_X) & (parts > 0)] == 1)
    assert np.all(parts[body & (x > WALL_X) & (parts > 0)] == 2)
    assert np.array_equal(split.mask(1), split.parts == 1)


def test_the_crop_grows_while_a_leaving_part_reaches_its_face(bar: Path) -> None:
    labels, _ = bar_volume()
    body = labels == BAR
    x = np.arange(labels.shape[2])
    with open_dataset(bar, "r") as ds:
        beyond = seeded_split(ds, BAR, [[(12, 12, 150)], [(12, 12, 60)]])
        before = seeded_split(ds, BAR, [[(12, 12, 60)], [(12, 12, 150)]])
    # group 1 beyond the wall: it reaches the bar's end, so the crop does too
    parts = whole(beyond, labels.shape)
    assert beyond.origin[2] + beyond.parts.shape[2] == labels.shape[2]
    assert np.array_equal(parts == 1, body & (x >= WALL_X + 1) | (parts == 1) & (x == WALL_X))
    # group 1 before the wall: the crop grows down to x = 2, not up to the end
    parts = whole(before, labels.shape)
    assert before.origin[2] <= 2
    assert before.origin[2] + before.parts.shape[2] == 150 + MARGIN + 1
    assert np.array_equal(parts == 1, body & (x < WALL_X) | (parts == 1) & (x == WALL_X))


def test_the_last_group_keeps_the_body_outside_the_crop(bar: Path) -> None:
    labels, _ = bar_volume()
    with open_dataset(bar, "r+") as ds:
        split = seeded_split(ds, BAR, [[(12, 12, 60)], [(12, 12, 150)]])
        (result,) = ds.split_by_seeds(BAR, [[(12, 12, 60)], [(12, 12, 150)]])
        want = labels.copy()
        want[whole(split, labels.shape) == 1] = result.label
        assert np.array_equal(ds.labels(0)[...], want)
        assert np.all(want[4:20, 4:20, WALL_X + 1 : 198] == BAR)


def test_without_grayscale_the_parts_meet_at_the_neck(tmp_path: Path) -> None:
    labels = neck_volume()
    path = build(tmp_path, labels, None)
    z, y, x = np.ogrid[:32, :32, :60]
    ball_a = (z - 16) ** 2 + (y - 16) ** 2 + (x - 15) ** 2 <= 100
    ball_b = (z - 16) ** 2 + (y - 16) ** 2 + (x - 45) ** 2 <= 100
    with open_dataset(path, "r") as ds:
        assert not ds.has_image
        split = seeded_split(ds, 1, [[(16, 16, 15)], [(16, 16, 45)]])
    parts = whole(split, labels.shape)
    assert np.array_equal(parts > 0, labels == 1)
    assert np.all(parts[ball_a] == 1)
    assert np.all(parts[ball_b] == 2)


def some_seeds(model: NDArray[np.uint64], body: int) -> list[list[Voxel]]:
    """Three seed groups on ``body``: its voxels of least x, of greatest x, and
    its middle voxel in scan order."""
    where = np.argwhere(model == body)
    picks = [where[np.argmin(where[:, 2])], where[np.argmax(where[:, 2])], where[len(where) // 2]]
    return [[(int(v[0]), int(v[1]), int(v[2]))] for v in picks]


def test_a_seeded_split_commits_ordinary_splits(ds: Dataset, model: NDArray[np.uint64]) -> None:
    body = biggest(model, 1)[0]
    seeds = some_seeds(model, body)
    split = seeded_split(ds, body, seeds)
    parts = whole(split, model.shape)
    assert np.array_equal(parts > 0, (model == body) & crop(split, model.shape))
    for k, group in enumerate(seeds, start=1):
        assert all(parts[v] == k for v in group)
    before = ds.mutation_count()
    free = ds.next_free_label
    results = ds.split_by_seeds(body, seeds, new_labels=[free + 5, free + 3])
    assert [r.label for r in results] == [free + 5, free + 3]
    assert [r.mutation_id for r in results] == sorted(r.mutation_id for r in results)
    edited = model.copy()
    edited[parts == 1] = free + 5
    edited[parts == 2] = free + 3
    assert_matches_model(ds, edited)
    records = ds.history(before)
    assert [type(r) for r in records] == [Split, Split]
    assert [(r.target, r.new_label) for r in records] == [(body, free + 5), (body, free + 3)]
    assert [m["Action"] for m in ds.mutations(before)] == ["split", "split"]
    ds.undo()
    ds.undo()
    assert_matches_model(ds, model)


def test_a_preview_on_a_reader_equals_the_writers(small_pyramid: Path,
                                                  model: NDArray[np.uint64]) -> None:
    body = biggest(model, 2)[1]
    seeds = some_seeds(model, body)[:2]
    with open_dataset(small_pyramid, "r+") as ds:
        written = seeded_split(ds, body, seeds)
    with open_dataset(small_pyramid, "r") as reader:
        read = seeded_split(reader, body, seeds)
        with pytest.raises(ReadOnlyError, match="read-only"):
            reader.split_by_seeds(body, seeds)
    assert read.origin == written.origin
    assert np.array_equal(read.parts, written.parts)


def test_a_cancelled_split_stops(ds: Dataset, model: NDArray[np.uint64]) -> None:
    body = biggest(model, 1)[0]
    with pytest.raises(CancelledError, match=f"body {body} cancelled"):
        seeded_split(ds, body, some_seeds(model, body), cancelled=lambda: True)


@pytest.mark.parametrize(
    ("seeds", "new_labels", "message"),
    [
        ([[(0, 0, 0)]], None, "at least 2 seed groups, got 1"),
        ([[(1, 2, 3)], []], None, "seed group 2 is empty"),
        ([[(1, 2, 3)], [(1, 2)]], None, r"three integer voxel coordinates, got \(1, 2\)"),
        ([[(1, 2, 3)], [(1, 2, 1000)]], None, "seed 1000,2,1 is outside the volume"),
        ([[(1, 2, 3)], [(-1, 2, 3)]], None, "seed 3,2,-1 is outside the volume"),
        ([[(1, 2, 3)], [(4, 5, 6), (1, 2, 3)]], None, "seed 3,2,1 is in seed groups 1 and 2"),
        ("OTHER", None, "is on label {other}, not on body {body}"),
        ("GOOD", [7], "3 seed groups need 2 new labels, got 1"),
        ("GOOD", [0, 9], "new label is 0"),
        ("GOOD", ["BODY", 9], "new label {body} is the target itself"),
        ("GOOD", ["OTHER", 9], "new label {other} is in use"),
        ("GOOD", [9, 9], r"new labels \[\d+, \d+\] repeat a label"),
    ],
)
def test_refused_seeded_splits_change_nothing(
    ds: Dataset, model: NDArray[np.uint64], seeds: object, new_labels: list[object] | None,
    message: str,
) -> None:
    body, other = biggest(model, 2)
    good = some_seeds(model, body)
    if seeds == "OTHER":
        seeds = [good[0], [tuple(int(v) for v in np.argwhere(model == other)[0])]]
        message = message.format(other=other, body=body)
    elif seeds == "GOOD":
        seeds = good
        message = message.format(other=other, body=body)
    if new_labels is not None:
        free = ds.next_free_label
        new_labels = [body if v == "BODY" else other if v == "OTHER" else
                      free + int(str(v)) if v else 0 for v in new_labels]
    with pytest.raises(InvalidMutationError, match=message):
        ds.split_by_seeds(body, seeds, new_labels=new_labels)  # type: ignore[arg-type]
    assert ds.mutation_count() == 0
    assert np.array_equal(ds.labels(0)[...], model)


def test_the_command_line_prints_one_result_per_new_body(
    bar: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    two = ["--seeds", "80,12,12", "--seeds", "120,12,12", "130,5,5"]
    assert main(["split", str(bar), str(BAR), *two, "--new-label", "7"]) == 0
    assert json.loads(capsys.readouterr().out) == {"label": 7, "MutationID": 1}
    three = ["--seeds", "130,12,12", "--seeds", "180,12,12", "--seeds", "150,12,12"]
    assert main(["split", str(bar), str(BAR), *three]) == 0
    made = json.loads(capsys.readouterr().out)
    assert [m["MutationID"] for m in made] == [2, 3]
    with open_dataset(bar, "r") as ds:
        assert [r.new_label for r in ds.history()] == [7, made[0]["label"], made[1]["label"]]
        s0 = ds.labels(0)[...]
    assert np.all(s0[4:20, 4:20, 2:WALL_X] == 7)
    assert s0[12, 12, 130] == made[0]["label"] and s0[12, 12, 180] == made[1]["label"]
    assert s0[12, 12, 150] == BAR
