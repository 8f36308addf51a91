"""The command line: ``python -m tools.campaign [--only PATTERN] [--list] [--keep]
[--workers N]``; ``--helper ROLE ...`` runs one of the helper processes instead."""

from __future__ import annotations

import argparse
import fnmatch
import os
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from . import __doc__ as PACKAGE_DOC
from .bases import CampaignError, Facts, prepare
from .harness import Result, report_line, run_cases, summary
from .helpers import helper_main
from .kinds import Case
from .table import all_cases

IS_ROOT = os.geteuid() == 0


def selected(cases: Sequence[Case], patterns: Sequence[str]) -> list[Case]:
    """The cases whose ``CATEGORY/NAME`` matches a pattern: a glob if it holds ``*``, ``?``
    or ``[``, else a substring (every case without patterns)."""
    if not patterns:
        return list(cases)
    return [
        c
        for c in cases
        if any(
            fnmatch.fnmatch(c.key, p) if any(ch in p for ch in "*?[") else p in c.key
            for p in patterns
        )
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.campaign", description=(PACKAGE_DOC or "").split("\n\n")[0]
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PATTERN",
        help="run the cases whose name matches (glob, or a substring); repeatable",
    )
    parser.add_argument("--list", action="store_true", help="list the case names and exit")
    parser.add_argument("--keep", action="store_true", help="keep every case's folder")
    parser.add_argument("--workers", type=int, default=2, help="cases at once (default 2)")
    args = parser.parse_args(argv)
    cases = [c for c in all_cases(Facts.placeholder()) if IS_ROOT or not c.needs_root]
    chosen = selected(cases, args.only)
    if args.list:
        print("\n".join(c.key for c in chosen))
        return 0
    if not IS_ROOT:
        print(
            "campaign: not root: the cases that mount (read-only folders, full disks) are left out"
        )
    root = Path(tempfile.mkdtemp(prefix="segmend-campaign-"))
    (root / "cases").mkdir()
    print(f"campaign: {len(chosen)} cases in {root}; preparing the base pyramids", flush=True)
    try:
        facts = prepare(root)
    except (CampaignError, OSError, ValueError, KeyError, sqlite3.Error) as exc:
        print(f"campaign: cannot prepare the base pyramids: {exc}")
        return 0
    results: list[Result] = []
    for res in run_cases(all_cases, [c.key for c in chosen], facts, args.workers, args.keep):
        results.append(res)
        if res.outcome not in ("ok", "refused"):
            print(report_line(res), flush=True)
    results.sort(key=lambda res: res.key)
    print()
    print(summary(results))
    kept = [res for res in results if Path(res.folder).exists()]
    if kept:
        print(f"\nthe folders of {len(kept)} cases are kept under {root}/cases")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--helper"]:
        sys.exit(helper_main(sys.argv[2], sys.argv[3:]))
    sys.exit(main())
