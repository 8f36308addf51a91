"""A first run that just works: the system packages (tools/system_deps.sh), the
probe of the libraries the window needs, the headless fallback of ``segmend
demo``, and the demo pyramid in the user's data folder (labelmap mode, the
voxel-mode one beside it; built once, reused, edits kept, rebuilt fresh on
request).

tools/system_deps.sh runs against stub ``id``, ``sudo``, ``dpkg-query``,
``apt-get`` and ``python3`` commands (first on PATH) that log their calls: it
never touches this machine's packages.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import app.display
from app.display import XCB_LIBRARIES, display_problem, missing_libraries
from app.model.bulk.output import EditedOutputError
from app.model.dataset import open_dataset
from app.model.demo import build_demo, default_demo_path, demo_is_current, ensure_demo
from app.model.info import dataset_info
from app.model.journal.sidecar import journal_path

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_DEPS = ROOT / "tools" / "system_deps.sh"
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


# -- the probe ---------------------------------------------------------------------------------


@pytest.fixture
def x11(monkeypatch: pytest.MonkeyPatch) -> None:
    """An X11 session as Qt's xcb platform sees it."""
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


def fake_loader(monkeypatch: pytest.MonkeyPatch, missing: set[str]) -> list[str]:
    """Make the probe's loader fail on ``missing``; returns the sonames it was asked for."""
    asked: list[str] = []

    def load(name: str) -> object:
        asked.append(name)
        if name in missing:
            raise OSError(f"{name}: cannot open shared object file: No such file or directory")
        return object()

    monkeypatch.setattr(app.display, "CDLL", load)
    return asked


@pytest.mark.usefixtures("x11")
def test_the_probe_names_the_missing_libraries_and_their_packages(
        monkeypatch: pytest.MonkeyPatch) -> None:
    asked = fake_loader(monkeypatch, {"libxcb-keysyms.so.1", "libxcb-icccm.so.4"})
    assert missing_libraries() == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert display_problem() == (
        "the window cannot start: missing libxcb-icccm.so.4, libxcb-keysyms.so.1 "
        "(Debian/Ubuntu: apt-get install libxcb-icccm4 libxcb-keysyms1)"
    )
    assert set(asked) == set(XCB_LIBRARIES)


@pytest.mark.usefixtures("x11")
def test_the_probe_passes_when_every_library_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_loader(monkeypatch, set())
    assert missing_libraries() == []
    assert display_problem() is None


@pytest.mark.usefixtures("x11")
def test_no_display_or_another_platform_is_decided_before_the_probe(
        monkeypatch: pytest.MonkeyPatch) -> None:
    asked = fake_loader(monkeypatch, set(XCB_LIBRARIES))
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert display_problem() is None
    monkeypatch.delenv("QT_QPA_PLATFORM")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert display_problem() is None
    monkeypatch.delenv("WAYLAND_DISPLAY")
    monkeypatch.delenv("DISPLAY")
    problem = display_problem()
    assert problem is not None and problem.startswith("no display found")
    assert asked == []
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    problem = display_problem()
    assert problem is not None
    assert problem.startswith("the window cannot start: missing libxcb.so.1")


@pytest.mark.usefixtures("x11")
def test_without_the_gui_extra_the_problem_says_how_to_install_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app.display, "find_spec", lambda name: None if name == "napari" else name)
    assert display_problem() == (
        "the desktop app is not installed (no napari): pip install 'segmend[gui]'"
    )


@linux_only
def test_the_probe_loads_the_real_libraries_here() -> None:
    """The sonames are real ones: this machine runs the window tests, so all load."""
    assert missing_libraries() == []


# -- the headless fallback, end to end ---------------------------------------------------------


def shadowed_env(tmp_path: Path) -> dict[str, str]:
    """An X11 environment whose loader finds a broken ``libxcb-icccm.so.4`` first
    (LD_LIBRARY_PATH), as on a machine without the package; the user's data
    folder in ``tmp_path``."""
    libs = tmp_path / "lib"
    libs.mkdir()
    (libs / "libxcb-icccm.so.4").write_bytes(b"")
    env = {k: v for k, v in os.environ.items()
           if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env["DISPLAY"] = ":99"  # no server: the probe must decide before Qt connects
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(libs),
                                                          env.get("LD_LIBRARY_PATH")]))
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    return env


def segmend(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True,
                          timeout=600, env=env, stdin=subprocess.DEVNULL, check=False)


@linux_only
def test_demo_without_a_library_says_which_and_runs_headless(tmp_path: Path) -> None:
    env = shadowed_env(tmp_path)
    demo = tmp_path / "data" / "segmend" / "demo-labelmap.h5"
    proc = segmend(env, "demo", "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines()[0] == (
        "segmend: the window cannot start: missing libxcb-icccm.so.4 "
        "(Debian/Ubuntu: apt-get install libxcb-icccm4); running headless (--no-gui)"
    )
    info = json.loads(proc.stdout)
    assert info["file"] == str(demo) and info["shape"] == [250, 250, 250]
    assert info["mode"] == "labelmap" and demo_is_current(demo)
    built = demo.stat().st_mtime_ns
    again = segmend(env, "demo", "--no-gui")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"file:        {demo}\n")
    assert demo.stat().st_mtime_ns == built  # reused, not rebuilt

    opened = segmend(env, str(demo))
    assert opened.returncode == 1 and opened.stdout == ""
    assert opened.stderr.strip() == (
        "segmend: error: the window cannot start: missing libxcb-icccm.so.4 "
        "(Debian/Ubuntu: apt-get install libxcb-icccm4)"
    )


# -- the demo pyramid in the user's data folder ------------------------------------------------


def test_the_demo_lives_in_the_user_data_folder(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_demo_path() == tmp_path / "xdg" / "segmend" / "demo-labelmap.h5"
    assert default_demo_path(labelmap=False) == tmp_path / "xdg" / "segmend" / "demo.h5"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    data = tmp_path / "home" / ".local" / "share" / "segmend"
    assert default_demo_path() == data / "demo-labelmap.h5"
    assert default_demo_path(labelmap=False) == data / "demo.h5"


def test_the_demo_is_built_once_keeps_its_edits_and_is_rebuilt_on_request(
        tmp_path: Path) -> None:
    demo = tmp_path / "data" / "segmend" / "demo-labelmap.h5"
    assert ensure_demo(demo) == demo  # builds it, and its folder
    assert dataset_info(demo)["mode"] == "labelmap"
    with open_dataset(demo, "r+") as ds:
        ids = np.unique(ds.labels(0)[125])
        ds.merge(int(ids[1]), [int(ids[2])])
    edited = demo.stat().st_mtime_ns
    assert ensure_demo(demo) == demo
    assert demo.stat().st_mtime_ns == edited
    assert dataset_info(demo)["mutations"] == 1

    with pytest.raises(EditedOutputError):
        build_demo(demo)
    assert demo.stat().st_mtime_ns == edited and journal_path(demo).exists()

    assert build_demo(demo, discard_journal=True) == demo  # (a fresh copy: its synapses only)
    assert dataset_info(demo)["mutations"] == 0
    with open_dataset(demo, "r") as ds:
        assert ds.annotations.names() == ["synapses"]
        assert len(ds.annotations.export("synapses")) == 1056
    assert sorted(p.name for p in demo.parent.iterdir()) == [
        "demo-labelmap.h5", "demo-labelmap.h5.segmend"]


def test_an_older_voxel_demo_is_the_voxel_one_never_the_default(tmp_path: Path) -> None:
    """``segmend demo`` opens the labelmap demo; ``--voxel`` the voxel one: the file
    an older segmend built (``demo.h5``, voxel mode), reused with its edits."""
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    old = tmp_path / "data" / "segmend" / "demo.h5"
    ensure_demo(old, labelmap=False)  # an older segmend's demo, edited
    with open_dataset(old, "r+") as ds:
        ids = np.unique(ds.labels(0)[125])
        ds.merge(int(ids[1]), [int(ids[2])])
    edited = old.stat().st_mtime_ns

    built = segmend(env, "demo", "--no-gui", "--json")
    assert built.returncode == 0, built.stderr
    info = json.loads(built.stdout)
    assert info["file"] == str(tmp_path / "data" / "segmend" / "demo-labelmap.h5")
    assert info["mode"] == "labelmap"
    assert old.stat().st_mtime_ns == edited

    voxel = segmend(env, "demo", "--no-gui", "--voxel", "--json")
    assert voxel.returncode == 0, voxel.stderr
    info = json.loads(voxel.stdout)
    assert info["file"] == str(old) and info["mode"] == "voxel" and info["mutations"] == 1
    assert old.stat().st_mtime_ns == edited  # reused, not rebuilt

    # given by --out, the edited voxel demo is not rebuilt as the labelmap one
    refused = segmend(env, "demo", "--no-gui", "--out", str(old))
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.strip() == (
        f"segmend: error: {old} is the voxel-mode demo, with edits: open it with --voxel, "
        "or give --out a new path"
    )
    assert old.stat().st_mtime_ns == edited and dataset_info(old)["mode"] == "voxel"


# -- tools/system_deps.sh ----------------------------------------------------------------------


def listed(*args: str) -> list[str]:
    out = subprocess.run(["bash", str(SYSTEM_DEPS), "--list", *args], capture_output=True,
                         text=True, check=True, timeout=60, stdin=subprocess.DEVNULL).stdout
    return out.split()


def test_the_package_list_holds_every_library_the_probe_names() -> None:
    packages = listed()
    assert set(XCB_LIBRARIES.values()) <= set(packages)
    assert "xvfb" not in packages and {"xvfb", "xauth"} <= set(listed("--tests"))


def stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def stubbed(tmp_path: Path, *, uid: int, sudo: str, installed: list[str],
            ensurepip: bool) -> dict[str, str]:
    """An environment whose PATH holds only stub ``id``, ``sudo``, ``dpkg-query``,
    ``apt-get`` and ``python3`` logging to ``tmp_path/calls``, and the real tools
    the script uses.

    ``sudo``: "none" (no sudo), "password" (``sudo -n`` refuses: a password is
    needed) or "free" (runs the command).  ``installed``: dpkg-query's lines.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("uname", "awk", "tr", "env", "cat", "true"):
        real = shutil.which(tool)
        assert real is not None, tool
        (bin_dir / tool).symlink_to(real)
    log = tmp_path / "calls"
    log.touch()
    (tmp_path / "installed").write_text("".join(f"{line}\n" for line in installed))
    stub(bin_dir, "id", f"echo {uid}")
    stub(bin_dir, "dpkg-query", f'cat "{tmp_path / "installed"}"')
    stub(bin_dir, "apt-get", f'echo "apt-get $*" >> "{log}"')
    stub(bin_dir, "python3", f"exit {0 if ensurepip else 1}")
    if sudo == "password":
        stub(bin_dir, "sudo", f'echo "sudo $*" >> "{log}"; exit 1')
    elif sudo == "free":
        stub(bin_dir, "sudo", f'echo "sudo $*" >> "{log}"; [ "$1" = -n ] || exit 2; shift; '
                              'exec "$@"')
    return {**os.environ, "PATH": str(bin_dir)}


def system_deps(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash")
    assert bash is not None
    return subprocess.run([bash, str(SYSTEM_DEPS), *args], capture_output=True, text=True,
                          env=env, timeout=60, stdin=subprocess.DEVNULL, check=False)


def calls(tmp_path: Path) -> list[str]:
    return (tmp_path / "calls").read_text().splitlines()


@linux_only
def test_without_root_or_sudo_it_prints_the_command_and_fails(tmp_path: Path) -> None:
    env = stubbed(tmp_path, uid=1000, sudo="password", installed=[], ensurepip=False)
    proc = system_deps(env)
    packages = " ".join(listed())
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"system_deps: missing Debian packages: {packages}; install them with",
        f"  sudo apt-get update && sudo apt-get install -y --no-install-recommends {packages}",
    ]
    assert calls(tmp_path) == ["sudo -n true"]  # asked without waiting for a password


@linux_only
def test_without_sudo_at_all_the_command_is_for_root(tmp_path: Path) -> None:
    installed = [f"ii |{p}|" for p in listed() if p != "libxcb-icccm4"]
    env = stubbed(tmp_path, uid=1000, sudo="none", installed=installed, ensurepip=False)
    proc = system_deps(env)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[1] == (
        "  apt-get update && apt-get install -y --no-install-recommends libxcb-icccm4"
    )
    assert calls(tmp_path) == []


@linux_only
def test_with_a_passwordless_sudo_it_installs_only_the_missing(tmp_path: Path) -> None:
    installed = [f"ii |{p}|" for p in listed("--tests")
                 if p not in ("libxcb-keysyms1", "xvfb", "libglib2.0-0")]
    installed += ["ii |libglib2.0-0t64|libglib2.0-0 (= 2.80.0-6ubuntu3), libglib2.0-data",
                  "rc |xvfb|"]  # removed, its configuration left: not installed
    env = stubbed(tmp_path, uid=1000, sudo="free", installed=installed, ensurepip=False)
    proc = system_deps(env, "--tests")
    assert proc.returncode == 0, proc.stderr
    assert calls(tmp_path) == [
        "sudo -n true",
        "sudo -n apt-get update -qq",
        "apt-get update -qq",
        "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
        "--no-install-recommends libxcb-keysyms1 xvfb",
        "apt-get install -y -qq --no-install-recommends libxcb-keysyms1 xvfb",
    ]


@linux_only
def test_as_root_with_everything_installed_it_does_nothing(tmp_path: Path) -> None:
    # python3 has ensurepip: python3 and python3-venv are not needed
    installed = [f"ii |{p}|" for p in listed() if p not in ("python3", "python3-venv")]
    env = stubbed(tmp_path, uid=0, sudo="none", installed=installed, ensurepip=True)
    proc = system_deps(env)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert calls(tmp_path) == []
    root = stubbed(tmp_path / "root", uid=0, sudo="none", installed=installed[1:],
                   ensurepip=True)
    assert system_deps(root).returncode == 0
    assert calls(tmp_path / "root") == [
        "apt-get update -qq",
        f"apt-get install -y -qq --no-install-recommends {listed()[2]}",
    ]
