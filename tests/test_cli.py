"""The command line as a contract: exit codes, one-line errors, JSON results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from app.cli import main
from app.kernels import encode_rles, mask_to_rles
from app.model.demo import demo_is_current
from tests.conftest import run_cli


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_build_info_verify_odd_shapes_both_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rule: str
) -> None:
    rng = np.random.default_rng(11)
    vol = rng.integers(0, 6, (23, 17, 41)).astype(np.uint64) * (2**63 // 3)
    np.save(tmp_path / "v.npy", vol)
    out = tmp_path / "v.h5"
    code, text, _ = run(
        capsys, "build", tmp_path / "v.npy", out, "--block-size", "8", "--rule", rule, "--json"
    )
    assert code == 0
    info = json.loads(text)
    assert info["shape"] == [23, 17, 41] and info["downres_rule"] == rule
    assert info["levels"][-1] == [3, 3, 6] and info["max_label"] == int(vol.max())
    code, text, _ = run(capsys, "verify", out, "--json")
    assert code == 0 and json.loads(text)["ok"]
    with h5py.File(out, "r+") as f:
        f["labels/s1"][0, 0, 0] = 12345
    code, text, _ = run(capsys, "verify", out)
    assert code == 1 and "labels/s1 block (0, 0, 0): 1 voxels differ" in text


def test_edit_commands_and_log_apply(
    small_pyramid: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "base.h5"
    base.write_bytes(small_pyramid.read_bytes())
    with h5py.File(small_pyramid, "r") as f:
        s0 = f["labels/s0"][...]
    a, b = int(s0[18, 35, 50]), int(s0[36, 69, 100])

    def ok(*args: object) -> str:
        code, text, err = run(capsys, *(str(v) for v in args))
        assert code == 0, err
        return text

    assert json.loads(ok("merge", small_pyramid, a, b)) == {"MutationID": 1}
    rle = tmp_path / "split.rle"
    rle.write_bytes(encode_rles(mask_to_rles(np.ones((10, 20, 30), bool), (14, 30, 40))))
    split = json.loads(ok("split", small_pyramid, a, "--rles", rle))
    assert split["MutationID"] == 2 and split["label"] > int(s0.max())
    assert json.loads(ok("split-coarse", small_pyramid, a, "--block", "1,2,3"))["MutationID"] == 3
    assert json.loads(ok("nextlabel", small_pyramid, 3))["end"] == split["label"] + 4
    assert json.loads(ok("maxlabel", small_pyramid))["maxlabel"] == split["label"] + 4
    ok("undo", small_pyramid)
    ok("redo", small_pyramid)
    text = ok("log", small_pyramid)
    lines = text.splitlines()
    assert [json.loads(t)["Action"] for t in lines] == [
        "merge",
        "split",
        "splitcoarse",
        "post-nextlabel",
        "undo",
        "redo",
    ]
    (tmp_path / "ops.jsonl").write_text(text)
    code, text, _ = run(capsys, "apply", base, tmp_path / "ops.jsonl")
    assert code == 0 and len(text.splitlines()) == 6
    with (
        h5py.File(small_pyramid, "r", locking=False) as f1,
        h5py.File(base, "r", locking=False) as f2,
    ):
        for k in range(len(f1["labels"])):
            assert np.array_equal(f1[f"labels/s{k}"][...], f2[f"labels/s{k}"][...])
    assert json.loads(run(capsys, "reindex", small_pyramid, "--json")[1])["labels"] > 50
    info = json.loads(run(capsys, "info", small_pyramid, "--json")[1])
    assert info["mutations"] == 6 and info["outbox_pending"] > 0
    assert run(capsys, "verify", small_pyramid)[0] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["merge", "{ds}", "0", "5"], "label 0 is background"),
        (["merge", "{ds}", "7", "7"], "also among the labels"),
        (["merge", "{missing}", "1", "2"], "no such file"),
        (["split", "{ds}", "164", "--rles", "{missing}"], "cannot read RLE file"),
        (["split", "{ds}", "164", "--rles", "{garbage}"], "malformed RLEs"),
        (["split-coarse", "{ds}", "164", "--block", "99,0,0"], "outside the block grid"),
        (["nextlabel", "{ds}", "0"], ">= 1"),
        (["maxlabel", "{ds}", "1"], "below the current max label"),
        (["undo", "{ds}"], "nothing to undo"),
        (["apply", "{ds}", "{garbage}"], "line 1: not JSON"),
        (["info", "{garbage}"], "not an HDF5 file"),
        (["build", "{garbage}", "{out}"], "neither an HDF5 file nor a .npy file"),
        (["merge", "{plain}", "1", "2"], "not a segmend pyramid"),
    ],
)
def test_errors_are_one_line_and_change_nothing(
    small_pyramid: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x07 not anything useful")
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f.create_dataset("s0", data=np.zeros((4, 4, 4), np.uint64))
    names = {
        "ds": small_pyramid,
        "missing": tmp_path / "missing.h5",
        "garbage": garbage,
        "out": tmp_path / "out.h5",
        "plain": plain,
    }
    before = small_pyramid.read_bytes()
    code, out, err = run(capsys, *[a.format(**names) for a in args])
    assert code != 0 and out == ""
    assert err.count("\n") == 1 and err.startswith("segmend: error: ") and message in err
    assert small_pyramid.read_bytes() == before
    assert not (tmp_path / "out.h5").exists()


def test_an_edit_with_its_broker_down_says_once_that_events_wait(
    small_pyramid: Path, tmp_path: Path
) -> None:
    from tests.kafka_fixtures import free_port

    with h5py.File(small_pyramid, "r") as f:
        s0 = f["labels/s0"][...]
    a, b, c = int(s0[18, 35, 50]), int(s0[36, 69, 100]), int(s0[5, 5, 5])
    dead = f"127.0.0.1:{free_port()}"

    def segmend(*args: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app", *(str(a) for a in args)], capture_output=True,
            text=True, timeout=600, env={"HOME": str(tmp_path)},  # (no config file)
        )

    for n, (target, label) in enumerate([(a, b), (a, c)], start=1):
        proc = segmend("merge", small_pyramid, target, label, "--kafka", dead)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == {"MutationID": n}
        assert proc.stderr.splitlines() == [  # the events of both edits
            f"segmend: {2 * n} events wait in the outbox ('segmend events flush' sends them "
            "later)"
        ]
    # a refused edit says only why, even with events waiting
    refused = segmend("merge", small_pyramid, a, 999999999, "--kafka", dead)
    assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1
    assert refused.stderr.startswith("segmend: error: ")
    # Kafka off: events wait in the outbox as always, unannounced
    quiet = segmend("maxlabel", small_pyramid, 99999999)
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_console_script_and_demo_headless(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("segmend")
    env = {"PATH": str(exe.parent), "HOME": str(tmp_path)}
    proc = subprocess.run(
        [str(exe), "demo", "--no-gui", "--out", str(tmp_path / "d.h5"), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["shape"] == [250, 250, 250] and len(info["image_levels"]) == 3
    assert "neuroproof_examples" in h5py.File(tmp_path / "d.h5", "r").attrs["created_by"]
    bad = subprocess.run(
        [str(exe), "verify", str(tmp_path / "nope.h5")],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert bad.returncode == 1 and bad.stderr.strip() == (
        f"segmend: error: {tmp_path / 'nope.h5'}: no such file"
    )


def test_the_desktop_app_is_what_the_program_hands_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``app.cli`` never imports the app: ``segmend [FILE]`` and ``segmend demo`` run the
    one :func:`app.launcher.main` hands in, and say so without one."""
    calls: list[tuple[str | None, dict[str, object]]] = []

    def fake_app(file: str | None = None, **kwargs: object) -> int:
        calls.append((file, kwargs))
        return 7

    monkeypatch.setenv("DISPLAY", ":99")
    assert main(["some.h5", "--select", "3", "4"], run_app=fake_app) == 7
    assert calls == [("some.h5", {"screenshot": None, "select": [3, 4], "seeds": []})]
    demo = tmp_path / "d.h5"
    assert main(["demo", "--out", str(demo)], run_app=fake_app) == 7
    assert calls[-1] == (str(demo), {"demo": True})  # the window builds the labelmap demo
    assert not demo.exists()
    assert main(["demo", "--labelmap", "--out", str(demo)], run_app=fake_app) == 7
    assert calls[-1] == (str(demo), {"demo": True})
    voxel = tmp_path / "v.h5"
    assert main(["demo", "--voxel", "--out", str(voxel)], run_app=fake_app) == 7
    assert calls[-1] == (str(voxel), {})  # built here first, then opened as a file
    assert demo_is_current(voxel, labelmap=False)
    code, out, err = run_cli(capsys, "demo", "--voxel", "--labelmap", "--no-gui")
    assert code == 2 and out == "" and "not allowed with argument" in err
    code, out, err = run(capsys, "some.h5")
    assert code == 1 and out == ""
    assert err.startswith("segmend: error: the desktop app is not available")

    import app.launcher
    import app.ui.main

    monkeypatch.setattr(app.ui.main, "run_app", fake_app)
    assert app.launcher.main(["other.h5"]) == 7
    assert calls[-1] == ("other.h5", {"demo": False, "screenshot": None, "select": [], "seeds": []})
