"""The campaign's helper processes, run beside the command under test as
``python -m tools.campaign --helper ROLE ...`` (see :meth:`Run.helper`):
an API writer, readers (API, plain h5py, CLI) and a counter of labels."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .classify import first_line, level_problem, plain_levels
from .processes import SEGMEND


def _say(obj: Any) -> None:
    print(json.dumps(obj), flush=True)


def _error_line(exc: BaseException) -> str:
    from app.model.error_text import one_line
    from app.model.errors import SegmendError

    text = one_line(exc)
    return text if isinstance(exc, SegmendError) else f"{type(exc).__name__}: {text}"


def helper_writer(argv: list[str]) -> int:
    """``writer FILE PAIRS.json [--interval S] [--pause N]``: merge each pair, printing
    each acknowledged MutationID; with ``--pause N`` stop after N merges until a line
    arrives on stdin, and at the end wait for stdin to close."""
    from app.model.dataset import open_dataset

    p = argparse.ArgumentParser(prog="writer")
    p.add_argument("file")
    p.add_argument("pairs", type=Path)
    p.add_argument("--interval", type=float, default=0.2)
    p.add_argument("--pause", type=int)
    args = p.parse_args(argv)
    pairs = json.loads(args.pairs.read_text())
    try:
        ds = open_dataset(args.file, "r+", checkpoint_interval=args.interval)
    except Exception as exc:
        print(f"segmend: error: {_error_line(exc)}", file=sys.stderr)
        return 1
    code = 0
    try:
        for i, (target, label) in enumerate(pairs):
            if i == args.pause:
                _say({"paused": i})
                sys.stdin.readline()
            _say({"MutationID": ds.merge(target, [label]), "Target": target, "Labels": [label]})
        if args.pause is not None:
            sys.stdin.read()
    except Exception as exc:
        print(f"segmend: error: {_error_line(exc)}", file=sys.stderr)
        code = 1
    finally:
        try:
            ds.close()
        except Exception as exc:
            print(f"segmend: error: close: {_error_line(exc)}", file=sys.stderr)
            code = 1
    return code


def helper_reader(role: str, argv: list[str]) -> int:
    """``api-reader|h5-reader|cli-reader FILE STOP PAIRS.json [COMMAND]``: read the whole
    dataset over and over until STOP exists; print a JSON summary."""
    from app.model.dataset import open_dataset

    file, stop, pairs_path = argv[0], Path(argv[1]), Path(argv[2])
    labels = sorted({v for pair in json.loads(pairs_path.read_text())[:8] for v in pair})
    reads, failures, inconsistent, refused = 0, [], [], 0
    _say({"ready": True})
    while True:
        try:
            if role == "api-reader":
                with open_dataset(file, "r") as ds:
                    levels = [np.asarray(ds.labels(s)[...]) for s in range(ds.n_scales)]
                    sizes = {v: ds.label_size(v) for v in labels}
                    rule = ds.store.rule
                problem = level_problem(levels, rule) or next(
                    (
                        f"index says label {v} has {n} voxels, s0 holds "
                        f"{np.count_nonzero(levels[0] == np.uint64(v))}"
                        for v, n in sizes.items()
                        if n != np.count_nonzero(levels[0] == np.uint64(v))
                    ),
                    None,
                )
            elif role == "h5-reader":
                try:
                    levels, rule = plain_levels(Path(file))
                except OSError as exc:
                    if "lock" not in str(exc).lower():
                        raise
                    refused += 1
                    levels = []
                problem = level_problem(levels, rule) if levels else None
            else:
                p = subprocess.run(
                    [*SEGMEND, argv[3], file], capture_output=True, text=True, check=False
                )
                if p.returncode:
                    text = first_line(p.stdout + "\n" + p.stderr)
                    raise RuntimeError(text or f"exit {p.returncode}")
                problem = None
            if problem:
                inconsistent.append(problem)
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}"[:300])
        reads += 1
        if stop.exists():
            break
    _say(
        {
            "reads": reads,
            "failures": failures,
            "inconsistent": inconsistent,
            "refused_at_open": refused,
        }
    )
    return 0


def helper_api_counts(argv: list[str]) -> int:
    """``api-counts FILE LABEL...``: open for writing, print each label's voxels in s0."""
    from app.model.dataset import open_dataset

    try:
        with open_dataset(argv[0], "r+") as ds:
            s0 = np.asarray(ds.labels(0)[...])
    except Exception as exc:
        print(f"segmend: error: {_error_line(exc)}", file=sys.stderr)
        return 1
    _say({v: int(np.count_nonzero(s0 == np.uint64(int(v)))) for v in argv[1:]})
    return 0


def helper_main(role: str, argv: list[str]) -> int:
    if role == "writer":
        return helper_writer(argv)
    if role in ("api-reader", "h5-reader", "cli-reader"):
        return helper_reader(role, argv)
    if role == "api-counts":
        return helper_api_counts(argv)
    raise SystemExit(f"unknown helper role {role!r}")
