"""The seeded split in labelmap mode (labelmap plan, item 1): whole supervoxels given
to the seed groups by the watershed's vote, committed as cleaves, on a crop of the
real cube's automated supervoxels and their agglomeration mapping."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from app.cli import main
from app.model.dataset import Dataset, open_dataset
from app.model.dataset_reads import DatasetReads
from app.model.errors import InvalidMutationError, SegmendError
from app.model.labelmap.seeded_cleave import assign, seeded_supervoxels
from app.model.labelmap.seeded_split import seeded_cleave
from app.model.seeded_split import Voxel, crop_of, seeded_split
from tests import test_labelmap_edits as edits
from tests.test_labelmap_edits import state
from tests.test_refused_edits import saved_state

crop, built, ds = edits.crop, edits.built, edits.ds
"""The labelmap crop's fixtures (its supervoxels; built; open for editing)."""


def vote(parts: NDArray[np.uint8], svs: NDArray[np.uint64], n: int,
         seeded: dict[int, int]) -> dict[int, int]:
    """The reference: each supervoxel's group by a plain count, one supervoxel at a
    time (ties: the highest group), the seeded ones forced."""
    out = {}
    for sv in np.unique(svs[parts > 0]).tolist():
        counts = [int(np.sum((svs == sv) & (parts == k))) for k in range(1, n + 1)]
        out[sv] = max(k for k in range(1, n + 1) if counts[k - 1] == max(counts))
    return {**out, **seeded}


@pytest.mark.parametrize("n", [2, 3, 5])
def test_the_vote_equals_a_plain_count(n: int) -> None:
    rng = np.random.default_rng(n)
    svs = rng.integers(1, 40, (12, 14, 16)).astype(np.uint64) * 1000
    parts = rng.integers(0, n + 1, svs.shape).astype(np.uint8)
    parts[svs == 7000] = 0  # (a supervoxel off the body)
    seeded = {3000: 1, 5000: n}
    got = assign(parts, svs, n, seeded)
    want = vote(parts, svs, n, seeded)
    assert got.supervoxels.dtype == np.uint64 and got.groups.dtype == np.uint8
    assert dict(zip(got.supervoxels.tolist(), got.groups.tolist(), strict=True)) == want
    painted = got.paint(svs, parts > 0)
    expected = np.vectorize(lambda v: want.get(int(v), n))(svs)
    np.testing.assert_array_equal(painted, np.where(parts > 0, expected, 0))


def test_ties_go_to_the_highest_tied_group_and_empty_groups_are_refused() -> None:
    svs = np.array([[[5, 5, 5, 5, 6, 6, 9]]], np.uint64)
    parts = np.array([[[1, 1, 2, 2, 3, 1, 1]]], np.uint8)
    got = assign(parts, svs, 3, {})
    assert got.supervoxels.tolist() == [5, 6, 9] and got.groups.tolist() == [2, 3, 1]
    two = assign(parts[..., [0, 1, 2, 3, 6]], svs[..., [0, 1, 2, 3, 6]], 2, {})
    assert two.groups.tolist() == [2, 1]  # 2 voxels to 2: the last group
    with pytest.raises(InvalidMutationError, match="seed group 1 gets no supervoxel"):
        assign(parts[..., :4], svs[..., :4], 2, {})
    with pytest.raises(InvalidMutationError, match="supervoxel 6 holds seeds of groups 1 and 3"):
        seeded_supervoxels([[5, 6], [9], [6]])


def voxel(row: NDArray[np.intp]) -> Voxel:
    """A row of ``np.argwhere`` as a voxel (z, y, x)."""
    return int(row[0]), int(row[1]), int(row[2])


def body_and_seeds(ds: DatasetReads, n: int) -> tuple[int, list[list[Voxel]], list[int]]:
    """The body of the most supervoxels, and one seed group in each of ``n`` of its
    supervoxels (a middle voxel of each, largest supervoxels first)."""
    body = max((b.label for b in ds.bodies()), key=lambda b: ds.supervoxels_of(b).size)
    raw = np.asarray(ds.supervoxels(0))
    svs = sorted(ds.supervoxels_of(body).tolist(), key=lambda sv: -int(np.sum(raw == sv)))
    seeds = []
    for sv in svs[:n]:
        where = np.argwhere(raw == sv)
        seeds.append([voxel(where[len(where) // 2])])
    return body, seeds, svs[:n]


@pytest.mark.parametrize("n", [2, 3])
def test_whole_supervoxels_go_by_the_vote_and_commit_as_cleaves(ds: Dataset, n: int) -> None:
    body, seeds, seeded = body_and_seeds(ds, n)
    raw = np.asarray(ds.supervoxels(0)).copy()
    before, was_body = ds.mapping_pairs(), np.asarray(ds.labels(0)) == body
    body_svs = set(ds.supervoxels_of(body).tolist())
    watershed = seeded_split(ds, body, seeds)
    want = vote(watershed.parts, raw[crop_of(watershed)], n,
                {sv: k for k, sv in enumerate(seeded, start=1)})
    plan = seeded_cleave(ds, body, seeds)
    assert dict(zip(plan.assignment.supervoxels.tolist(), plan.assignment.groups.tolist(),
                    strict=True)) == want
    assert plan.split.parts.shape != watershed.parts.shape  # (it grew to whole supervoxels)
    free = ds.next_free_label
    new = [free + 4, free + 2][: n - 1]
    results = ds.split_by_seeds(body, seeds, new_labels=new)
    assert [r.label for r in results] == new
    assert [m["Action"] for m in ds.mutations()] == ["cleave"] * (n - 1)
    assert [r.mutation_id for r in results] == list(range(1, n))
    for k, label in enumerate(new, start=1):
        assert ds.supervoxels_of(label).tolist() == sorted(s for s, g in want.items() if g == k)
    assert set(ds.supervoxels_of(body).tolist()) == body_svs - {s for s, g in want.items()
                                                                if g < n}
    np.testing.assert_array_equal(np.asarray(ds.supervoxels(0)), raw)  # no voxel changed
    # the preview is what was committed: the groups as voxels, every moved one in its box
    whole = np.zeros(raw.shape, np.uint8)
    whole[was_body] = n
    whole[crop_of(plan.split)] = plan.split.parts
    bodies = np.asarray(ds.labels(0))
    for k, label in enumerate([*new, body], start=1):
        np.testing.assert_array_equal(whole == k, bodies == label)
        assert plan.sizes[k - 1] == ds.label_size(label)
    for _ in new:
        ds.undo()
    np.testing.assert_array_equal(ds.mapping_pairs(), before)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("same supervoxel", r"supervoxel {sv} holds seeds of groups 1 and 2: .*split-supervoxel"),
        ("supervoxel id", "new label {label} is in use"),
        ("other body", "is on label {other}, not on body {body}"),
    ],
)
def test_refused_seeded_cleaves_change_nothing(built: Path, case: str, message: str) -> None:
    with open_dataset(built, "r+", workers=2) as ds:
        ds.checkpoint()
    saved = saved_state(built)
    with open_dataset(built, "r+", workers=2) as ds:
        body, seeds, seeded = body_and_seeds(ds, 2)
        other = next(b.label for b in ds.bodies() if b.label != body)
        raw = np.asarray(ds.supervoxels(0))
        labels = None
        if case == "same supervoxel":
            where = np.argwhere(raw == seeded[0])
            seeds = [seeds[0], [voxel(where[0])]]
        elif case == "supervoxel id":
            labels = [int(ds.supervoxels_of(other)[0])]
        else:
            seeds[1] = [voxel(np.argwhere(np.asarray(ds.labels(0)) == other)[0])]
        before = state(ds)
        with pytest.raises(InvalidMutationError,
                           match=message.format(sv=seeded[0], label=labels and labels[0],
                                                other=other, body=body)) as err:
            ds.split_by_seeds(body, seeds, new_labels=labels)
        assert "\n" not in str(err.value)
        assert state(ds) == before
        np.testing.assert_array_equal(np.asarray(ds.supervoxels(0)), raw)
    assert saved_state(built) == saved


def test_a_failed_cleave_undoes_those_made_before(
    ds: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    body, seeds, _ = body_and_seeds(ds, 3)
    before = ds.mapping_pairs()
    cleave, calls = ds.cleave, []

    def second_fails(*args: object, **kwargs: object) -> tuple[int, int]:
        calls.append(args)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return cleave(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ds, "cleave", second_fails)
    with pytest.raises(OSError, match="No space left"):
        ds.split_by_seeds(body, seeds)
    np.testing.assert_array_equal(ds.mapping_pairs(), before)
    assert [(m["Action"], m.get("Undoes")) for m in ds.mutations()] == [("cleave", None),
                                                                        ("undo", 1)]
    # an undo that fails too says which bodies stay cleaved off
    def undo_fails() -> int:
        raise SegmendError("journal gone")

    calls.clear()
    monkeypatch.setattr(ds, "undo", undo_fails)
    with pytest.raises(SegmendError, match=r"failed \(\[Errno 28\] No space left on device\) and "
                                           r"undoing its cleaves failed too \(journal gone\): "
                                           r"body \d+ stays cleaved off"):
        ds.split_by_seeds(body, seeds)


def test_the_command_line_cleaves_in_labelmap_mode(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_dataset(built, "r") as reader:
        body, seeds, _ = body_and_seeds(reader, 2)
        plan = seeded_cleave(reader, body, seeds)
    xyz = [",".join(str(v) for v in group[0][::-1]) for group in seeds]
    assert main(["split", str(built), str(body), "--seeds", xyz[0], "--seeds", xyz[1]]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["MutationID"] == 1
    with open_dataset(built, "r") as reader:
        assert reader.mutations()[0]["Action"] == "cleave"
        np.testing.assert_array_equal(reader.supervoxels_of(made["label"]), plan.moved(1))
