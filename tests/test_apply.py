"""``segmend apply`` and ``segmend log`` say exactly what happened (issue 14, item 7 and
the one-line errors): undo/redo lines take the mutation they name, each result is
printed once durable, Ctrl-C stops between edits, bad numbers are one-line errors,
reservations reproduce their labels, and a refused edit leaves no folder behind."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest
from numpy.typing import NDArray

from app.cli import main
from app.kernels import reference
from app.model.dataset import Dataset, open_dataset
from app.model.errors import InvalidMutationError, JournalWriteError, ReadOnlyError, SegmendError
from app.model.journal.journal import Journal
from app.model.journal.replay import ApplyError, apply_lines, log_lines
from app.model.journal.sidecar import sidecar_dir
from tests.conftest import assert_matches_model, biggest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def rule() -> str:
    """One downres rule: nothing here depends on it."""
    return "labelmap"


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def merge_line(target: int, *labels: int) -> str:
    return json.dumps({"Action": "merge", "Target": target, "Labels": list(labels)})


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def segmend(*args: object) -> subprocess.CompletedProcess[str]:
    """The command line in its own process (as a user runs it)."""
    return subprocess.run(
        [sys.executable, "-m", "app", *(str(a) for a in args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


# ------------------------------------------------------------------ 1. Undoes, Redoes
def test_undo_and_redo_lines_take_the_mutation_they_name(
    ds: Dataset, model: NDArray[np.uint64]
) -> None:
    a, b, c = biggest(model, 3)
    assert apply_lines(ds, [merge_line(a, b), merge_line(a, c)]) == [
        {"MutationID": 1},
        {"MutationID": 2},
    ]
    merged = model.copy()
    merged[np.isin(merged, [b, c])] = a
    undo_1 = json.dumps({"Action": "undo", "Undoes": 1})
    with pytest.raises(ApplyError, match=r"^line 2: Undoes 1, but undo would now undo mutation 2$"):
        apply_lines(ds, ["", undo_1])
    assert ds.mutation_count() == 2
    assert_matches_model(ds, merged)

    apply_lines(ds, [json.dumps({"Action": "undo", "Undoes": 2})])
    with pytest.raises(ApplyError, match=r"^line 1: Redoes 1, but redo would now redo mutation 2$"):
        apply_lines(ds, [json.dumps({"Action": "redo", "Redoes": 1})])
    assert ds.mutation_count() == 3
    apply_lines(ds, [json.dumps({"Action": "redo", "Redoes": 2})])
    assert_matches_model(ds, merged)


def test_a_log_replays_its_undo_and_redo_on_a_dataset_with_other_ids(
    small_pyramid: Path, tmp_path: Path, model: NDArray[np.uint64]
) -> None:
    """The ids a log's undo and redo lines name are those of the log's own lines,
    wherever these land in the target's history."""
    copy = tmp_path / "copy.h5"
    shutil.copy(small_pyramid, copy)
    a, b, c = biggest(model, 3)
    with open_dataset(small_pyramid, "r+") as src:
        src.merge(a, [b])
        src.merge(a, [c])
        src.undo()
        src.undo()
        src.redo()
        lines = [json.dumps(line) for line in log_lines(src)]
        final = src.labels(0)[...]
    assert [json.loads(t).get("Undoes", json.loads(t).get("Redoes")) for t in lines[2:]] == [
        2,
        1,
        1,
    ]
    with open_dataset(copy, "r+") as dst:
        dst.set_max_label(dst.max_label + 1)  # mutation 1 here: the log's ids are one lower
        stale = json.dumps({"Action": "undo", "Undoes": 1})  # the log's redo is on top
        with pytest.raises(
            ApplyError,
            match=r"^line 6: Undoes 1 \(mutation 2 here\), but undo would now undo mutation 6$",
        ):
            apply_lines(dst, [*lines, stale])
        assert [r["MutationID"] for r in dst.mutations()] == [1, 2, 3, 4, 5, 6]
        assert np.array_equal(dst.labels(0)[...], final)


# ------------------------------------------------------------ 2. results as they come
def test_results_are_printed_as_lines_are_applied_and_the_failing_line_is_named(
    small_pyramid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with h5py.File(small_pyramid, "r") as f:
        a, b, c = biggest(f["labels/s0"][...], 3)
    ops = tmp_path / "ops.jsonl"
    ops.write_text("\n".join([merge_line(a, b), "", merge_line(a, c), merge_line(a, b)]) + "\n")
    code, out, err = run(capsys, "apply", small_pyramid, ops)
    assert code == 1
    assert [json.loads(t) for t in out.splitlines()] == [{"MutationID": 1}, {"MutationID": 2}]
    assert err == f"segmend: error: line 4: label {b} has no voxels\n"


def test_apply_prints_each_growing_group_once_it_is_synced(
    small_pyramid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with h5py.File(small_pyramid, "r") as f:
        labels = biggest(f["labels/s0"][...], 12)
    ops = tmp_path / "ops.jsonl"
    ops.write_text("\n".join(merge_line(labels[0], v) for v in labels[1:]) + "\n")
    printed_at_sync: list[int] = []  # (lines printed since the last sync, at each sync)
    sync = Journal.sync

    def watched(journal: Journal) -> None:
        if threading.current_thread() is threading.main_thread():  # (not a checkpoint's)
            printed_at_sync.append(capsys.readouterr().out.count("\n"))
        sync(journal)

    monkeypatch.setattr(Journal, "sync", watched)
    code, out, _ = run(capsys, "apply", small_pyramid, ops)
    assert code == 0
    assert printed_at_sync == [0, 1, 2, 4, 4]  # (groups of 1, 2, 4, 4, each printed after
    assert out == ""  # its sync; then an empty one: the end of the lines)
    with open_dataset(small_pyramid, "r") as ds:
        left = set(np.unique(ds.labels(0)[...]).tolist())
        assert int(labels[0]) in left and not left & {int(v) for v in labels[1:]}
        with pytest.raises(ReadOnlyError, match="read-only"), ds.batched():
            pass


def test_a_group_whose_sync_fails_is_not_printed_nor_sent(
    small_pyramid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with h5py.File(small_pyramid, "r") as f:
        a, b, c = biggest(f["labels/s0"][...], 3)
    ops = tmp_path / "ops.jsonl"
    ops.write_text(merge_line(a, b) + "\n" + merge_line(a, c) + "\n")

    def failing(journal: Journal) -> None:
        raise JournalWriteError("journal: disk I/O error")

    monkeypatch.setattr(Journal, "sync", failing)
    code, out, err = run(capsys, "apply", small_pyramid, ops)
    assert (code, out) == (1, "") and "disk I/O error" in err
    monkeypatch.undo()
    with open_dataset(small_pyramid, "r+") as ds:
        with ds.batched():
            ds.merge(a, [c])
            with pytest.raises(SegmendError, match="do not nest"), ds.batched():
                pass
        assert ds.sender is not None and ds.sender._held_after is None  # (synced: released)
        monkeypatch.setattr(Journal, "sync", failing)
        with pytest.raises(JournalWriteError), ds.batched():
            ds.undo()
        assert ds.sender._held_after is not None  # (not durable: held back)
        monkeypatch.undo()


# ---------------------------------------------------------------------- 3. Ctrl-C
def levels_consistent(path: Path) -> tuple[NDArray[np.uint64], int]:
    """s0 and the checkpointed MutationID of the file as a plain HDF5 reader sees
    it; every level must equal its recompute from the level below."""
    with h5py.File(path, "r") as f:
        rule = str(f.attrs["downres_rule"])
        s0 = f["labels/s0"][...]
        want = s0
        for scale in range(1, len(f["labels"])):
            want = reference.downsample_labels_ref(want, rule)
            assert np.array_equal(f[f"labels/s{scale}"][...], want), f"labels/s{scale} is stale"
        return s0, int(f.attrs["checkpoint_mutation_id"])


def test_ctrl_c_stops_apply_between_edits_and_leaves_every_level_right(
    small_pyramid: Path, tmp_path: Path, real_labels: NDArray[np.uint64]
) -> None:
    """SIGINT while a long op file is applied: the edit in flight completes, the
    command says after which line it stopped, and the file as plain readers see it
    holds exactly the printed edits, every level consistent (no writer in between)."""
    target = biggest(real_labels, 1)[0]
    others = [int(v) for v in np.unique(real_labels) if v not in (0, target)]
    groups = [others[k : k + 3] for k in range(0, len(others), 3)]  # edits of many blocks
    ops = tmp_path / "ops.jsonl"
    ops.write_text("".join(merge_line(target, *group) + "\n" for group in groups))
    for stop_after in (1, 4, 9):
        victim = tmp_path / f"victim-{stop_after}.h5"
        shutil.copy(small_pyramid, victim)
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "apply", str(victim), str(ops)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and proc.stderr is not None
        printed = [proc.stdout.readline() for _ in range(stop_after)]
        proc.send_signal(signal.SIGINT)
        printed += proc.stdout.readlines()
        err = proc.stderr.read()
        assert proc.wait() == 130, err
        proc.stdout.close()
        proc.stderr.close()
        results = [json.loads(t) for t in printed]
        done = len(results)
        assert stop_after <= done < len(groups), "the interrupt did not land during the run"
        assert results == [{"MutationID": k} for k in range(1, done + 1)]
        assert err == f"segmend: interrupted after line {done}\n"
        s0, checkpointed = levels_consistent(victim)
        assert checkpointed == done
        want = real_labels.copy()
        want[np.isin(want, [label for group in groups[:done] for label in group])] = target
        assert np.array_equal(s0, want)


# ------------------------------------------------------------- 4. one-line errors
@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            json.dumps({"Action": "split", "Target": 7, "RLEs": [[2**70, 0, 0, 3]]}),
            "RLEs holds 1180591620717411303424, out of the 64-bit range",
        ),
        ("[" * 100_000, "not JSON (nested too deeply)"),
        ('{"Action": "merge", "Target": 7, "Labels": [' + "9" * 5000 + "]}", "a number has too"),
        (
            json.dumps({"Action": "merge", "Target": 7, "Labels": [8, 1e3]}),
            "Labels holds 1000.0, which is not an integer",
        ),
    ],
)
def test_bad_numbers_in_apply_lines_are_one_line_errors(
    small_pyramid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, message: str
) -> None:
    ops = tmp_path / "ops.jsonl"
    ops.write_text("\n\n" + line)
    code, out, err = run(capsys, "apply", small_pyramid, ops)
    assert (code, out) == (1, "") and err.count("\n") == 1
    assert err.startswith(f"segmend: error: line 3: {message}")
    assert not sidecar_dir(small_pyramid).exists()


def test_blocks_are_integers_never_truncated(
    small_pyramid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with h5py.File(small_pyramid, "r") as f:
        target = int(f["labels/s0"][5, 5, 50])  # in s0 block (0, 0, 3), and beyond it
    ops = tmp_path / "ops.jsonl"
    ops.write_text(json.dumps({"Action": "splitcoarse", "Target": target, "Blocks": [[0.5, 0, 3]]}))
    before = sha256(small_pyramid)
    code, out, err = run(capsys, "apply", small_pyramid, ops)
    assert (code, out) == (1, "")
    assert err == "segmend: error: line 1: Blocks holds 0.5, which is not an integer\n"
    assert sha256(small_pyramid) == before and not sidecar_dir(small_pyramid).exists()


def test_log_since_out_of_range_is_a_clear_error(small_pyramid: Path) -> None:
    proc = segmend("log", small_pyramid, "--since", 10**20)
    assert proc.returncode != 0 and proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("segmend: error: ")
    assert "--since" in proc.stderr and "between 0 and 9223372036854775807" in proc.stderr


def test_split_spans_are_integers_never_truncated(ds: Dataset, model: NDArray[np.uint64]) -> None:
    a = biggest(model, 1)[0]
    for spans, message in [
        (np.array([[0.5, 0, 0, 20]]), "split spans must be integers, got float64"),
        (np.array([[2**70, 0, 0, 3]], dtype=object), "out of the int64 range"),
        (np.array([[2**63, 0, 0, 3]], dtype=np.uint64), "out of the int64 range"),
    ]:
        with pytest.raises(InvalidMutationError, match=message):
            ds.split(a, spans)
    assert ds.mutation_count() == 0


# ------------------------------------------------------ 5. post-nextlabel reproduced
def test_a_nextlabel_line_reserves_the_labels_it_names(ds: Dataset) -> None:
    free = ds.max_label + 1
    start = free + 5
    line = {"Action": "post-nextlabel", "Start Label": start, "End Label": start + 2}
    assert apply_lines(ds, [json.dumps(line)]) == [{"start": start, "end": start + 2}]
    assert ds.max_label == start + 2 and ds.next_label() == (start + 3, start + 3)
    count = ds.mutation_count()
    taken = {"Action": "post-nextlabel", "Start Label": start + 1, "End Label": start + 1}
    with pytest.raises(ApplyError, match=f"^line 1: labels {start + 1} to {start + 1} are no "):
        apply_lines(ds, [json.dumps(taken)])
    assert ds.mutation_count() == count and ds.max_label == start + 3


def test_log_then_apply_gives_the_same_labels_after_labels_skipped(
    small_pyramid: Path, tmp_path: Path, model: NDArray[np.uint64]
) -> None:
    """The source skipped labels its log does not show (a reservation made
    elsewhere): the copy still gets the very labels of each line."""
    copy = tmp_path / "copy.h5"
    shutil.copy(small_pyramid, copy)
    a = biggest(model, 1)[0]
    with open_dataset(small_pyramid, "r+") as src:
        src.next_label(4)
        since = src.mutation_count()
        reserved = src.next_label(2)
        src.split_coarse(a, sorted(src.label_blocks(a))[:1])
        lines = [json.dumps(line) for line in log_lines(src, since)]
        final = src.labels(0)[...]
    with open_dataset(copy, "r+") as dst:
        results = apply_lines(dst, lines)
        assert results[0] == {"start": reserved[0], "end": reserved[1]}
        assert np.array_equal(dst.labels(0)[...], final)


# --------------------------------------------------- 6. no folder after a refused edit
@pytest.mark.parametrize(
    "command",
    [
        ["merge", "{ds}", "1", "1"],
        ["apply", "{ds}", "{ops}"],
        ["split-coarse", "{ds}", "7", "--block", "99,0,0"],
    ],
)
def test_a_refused_edit_leaves_no_folder_beside_the_file(
    small_pyramid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    ops = tmp_path / "ops.jsonl"
    ops.write_text(merge_line(7, 7) + "\n")
    before = sha256(small_pyramid)
    assert not sidecar_dir(small_pyramid).exists()
    code, out, err = run(capsys, *(a.format(ds=small_pyramid, ops=ops) for a in command))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("segmend: error: ")
    assert not sidecar_dir(small_pyramid).exists()
    assert sha256(small_pyramid) == before


def test_a_folder_that_holds_edits_or_was_there_stays(
    small_pyramid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with h5py.File(small_pyramid, "r") as f:
        a, b = biggest(f["labels/s0"][...], 2)
    ops = tmp_path / "ops.jsonl"
    ops.write_text(merge_line(a, b) + "\n" + merge_line(a, a) + "\n")
    code, out, _ = run(capsys, "apply", small_pyramid, ops)
    assert code == 1 and json.loads(out) == {"MutationID": 1}
    assert sidecar_dir(small_pyramid).is_dir()
    code, _, _ = run(capsys, "merge", small_pyramid, a, a)
    assert code == 1 and sidecar_dir(small_pyramid).is_dir()
    with open_dataset(small_pyramid, "r") as ds:
        assert ds.mutation_count() == 1
    assert os.path.exists(sidecar_dir(small_pyramid) / "journal.sqlite")
