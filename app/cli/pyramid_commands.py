"""``segmend build``, ``info``, ``verify`` and ``demo``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from app.cli.cluster_options import add_cluster_options, cluster_of
from app.cli.desktop import AppRunner
from app.cli.output import bounded_int, emit, progress_bar
from app.display import display_problem
from app.model.storage.layout import (
    COMPRESSIONS,
    DEFAULT_COMPRESSION,
    DEFAULT_RULE,
    MAX_BLOCK_SIZE,
    RULES,
    check_block_size,
    check_voxel_size,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this module's commands to the ``segmend`` parser."""
    p = sub.add_parser("build", help="build a pyramid from a plain volume")
    p.add_argument(
        "src",
        help="labels: FILE.h5:/dataset, FILE.npy, a pyramid group, DIR.zarr[:/path] "
             "(Zarr v2/v3 array or OME-Zarr image) or DIR.n5:/path",
    )
    p.add_argument(
        "out", help="the pyramid to write: FILE.h5 (editable) or DIR.zarr (an OME-Zarr, read-only)"
    )
    p.add_argument("--image", help="grayscale source, same forms as SRC (default: none)")
    p.add_argument(
        "--mapping", metavar="MAP",
        help="build a labelmap-mode dataset: SRC holds supervoxels, MAP gives their bodies, "
             "as FILE.h5:/dataset or FILE.npy ((N, 2) integer rows 'supervoxel body') or a "
             "text file of 'sv body' lines (DVID's GET /mappings); HDF5 OUT only "
             "(default: none, a voxel-mode dataset)",
    )
    p.add_argument(
        "--block-size", type=_block_size, default=(64, 64, 64), metavar="N[,N,N]",
        help="block (and HDF5 chunk) shape in voxels, z,y,x or one size for all (default 64)",
    )
    p.add_argument(
        "--rule", choices=RULES, default=DEFAULT_RULE,
        help=f"how lower scales are computed (default {DEFAULT_RULE}): labelmap, the most "
             "frequent non-zero label of each 2x2x2 cell (ties: the smaller); labelblk, "
             "zero votes too (ties: the larger), as DVID's labelblk",
    )
    p.add_argument(
        "--levels",
        type=bounded_int(1),
        metavar="N",
        help="number of scales, at most until one block (the default)",
    )
    p.add_argument(
        "--compression", choices=COMPRESSIONS, default=DEFAULT_COMPRESSION,
        help=f"the chunks' compression (default {DEFAULT_COMPRESSION})",
    )
    p.add_argument(
        "--voxel-size", type=_voxel_size, default=(1.0, 1.0, 1.0), metavar="NM[,NM,NM]",
        help="voxel size in nm, z,y,x or one size for all (default 1)",
    )
    p.add_argument(
        "--threads", type=bounded_int(1), metavar="N",
        help="threads, without a cluster (default: one per core)",
    )
    add_cluster_options(p)
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an edited pyramid (one with a journal), deleting its journal",
    )
    p.add_argument(
        "--json", action="store_true",
        help="print the built pyramid's description (as 'segmend info --json') as JSON",
    )
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("info", help="describe a pyramid")
    p.add_argument("file", help="the pyramid file (read only)")
    p.add_argument("--json", action="store_true", help="print the description as JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("verify", help="check every level against a recompute from s0")
    p.add_argument("file", help="the pyramid file")
    add_cluster_options(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("demo", help="build the demo dataset from the bundled real cube, open it")
    p.add_argument("--no-gui", action="store_true", help="build and summarise, without the app")
    p.add_argument(
        "--out", type=Path, metavar="PATH",
        help="where to write the demo pyramid (default: segmend/demo-labelmap.h5 in the user "
             "data folder, segmend/demo.h5 with --voxel); an up-to-date one there is reused",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--labelmap", dest="labelmap", action="store_true", default=True,
        help="the labelmap-mode demo (the default): the cube's automated supervoxels and "
             "their agglomeration mapping to bodies",
    )
    mode.add_argument(
        "--voxel", dest="labelmap", action="store_false",
        help="the voxel-mode demo instead: the cube's automated bodies (default path: "
             "segmend/demo.h5 in the user data folder); built here before the window opens",
    )
    p.add_argument(
        "--json", action="store_true",
        help="with --no-gui, print the pyramid's description as JSON",
    )
    p.set_defaults(func=cmd_demo)


def _block_size(text: str) -> tuple[int, int, int]:
    try:
        parts = [int(v) for v in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 3
    try:
        return check_block_size(parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"block size must be one or three even integers from 2 to {MAX_BLOCK_SIZE}, "
            f"got {text!r}"
        ) from None


def _voxel_size(text: str) -> tuple[float, float, float]:
    try:
        parts = [float(v) for v in text.split(",")]
        return check_voxel_size(parts * 3 if len(parts) == 1 else parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"voxel size must be one or three finite positive sizes (nm), got {text!r}"
        ) from None


def cmd_build(args: argparse.Namespace) -> int:
    """``segmend build SRC OUT [--mapping MAP] [--force]``: refuses an OUT open
    for writing, and an edited one (with a journal) unless ``--force``, which
    deletes its journal."""
    from app.model.bulk.build import build_pyramid
    from app.model.info import dataset_info
    from app.model.journal.sidecar import journal_path

    journal = journal_path(args.out)
    edited = args.force and journal.exists()
    cluster = cluster_of(args)
    with progress_bar("build", unit="block" if cluster is None else "task") as tick:
        out = build_pyramid(
            args.src,
            args.out,
            image=args.image,
            mapping=args.mapping,
            block_size=args.block_size,
            rule=args.rule,
            levels=args.levels,
            compression=args.compression,
            voxel_size_nm=args.voxel_size,
            workers=args.threads,
            progress=tick,
            discard_journal=args.force,
            cluster=cluster,
        )
    if edited:
        print(f"segmend: deleted the journal of the replaced pyramid ({journal})", file=sys.stderr)
    emit(args, dataset_info(out), _format_info)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """``segmend info FILE``."""
    from app.model.info import dataset_info

    emit(args, dataset_info(args.file), _format_info)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """``segmend verify FILE``: exit 1 and a report on any difference.

    Nobody writing the dataset, the file is first brought up to date, and what
    is checked is the file as plain HDF5 readers see it; beside a writer (or
    in a folder it cannot write) the file and the journal's edits after it are
    checked, and a note says how far behind the file is.
    """
    from app.model.dataset import open_dataset

    cluster = cluster_of(args)
    unit = "block" if cluster is None else "task"
    with open_dataset(args.file, "r") as ds, progress_bar("verify", unit=unit) as tick:
        report = ds.verify(progress=tick, cluster=cluster)
        assert ds.lag is not None  # opened read-only
        note = ds.lag.describe(ds.path) or None
    result = {**report.as_json(), "file_note": note}
    emit(args, result, _format_verify)
    return 0 if report.ok else 1


def cmd_demo(args: argparse.Namespace) -> int:
    """``segmend demo [--voxel]``: build the demo pyramid (if needed) and open it.

    The demo is in labelmap mode; ``--voxel`` gives the voxel-mode one.  With
    a display the window opens at once and builds the labelmap demo (if
    needed) in the background, showing the progress in its status bar (the
    voxel one is built first, its progress on standard error).  When no
    window can start (no display, the libraries Qt needs missing, no desktop
    app) it says why and runs headless: builds the demo and prints its summary.
    """
    from app.model.demo import default_demo_path

    out = args.out or default_demo_path(labelmap=args.labelmap)
    _refuse_foreign_demo_out(args.out, labelmap=args.labelmap)
    run_app: AppRunner | None = getattr(args, "run_app", None)
    if not args.no_gui:
        problem = display_problem() if run_app is not None else "the desktop app is not available"
        if problem is None and run_app is not None:
            if args.labelmap:  # (the window builds the default demo, showing its progress)
                return run_app(str(out), demo=True)
            _build_demo(out, labelmap=False)
            return run_app(str(out))
        print(f"segmend: {problem}; running headless (--no-gui)", file=sys.stderr)
    from app.model.info import dataset_info

    _build_demo(out, labelmap=args.labelmap)
    emit(args, dataset_info(out), _format_info)
    return 0


def _build_demo(out: Path, *, labelmap: bool) -> None:
    """Build the demo at ``out`` (a progress bar on standard error) unless current."""
    from app.model.demo import build_demo, demo_is_current

    if not demo_is_current(out, labelmap=labelmap):
        with progress_bar("demo", unit="block") as tick:
            build_demo(out, progress=tick, labelmap=labelmap)


def _refuse_foreign_demo_out(out: Path | None, *, labelmap: bool) -> None:
    """Refuse an ``--out`` that exists and is not a demo: segmend replaces only its
    own; nor an edited demo of the other mode (a rebuild would discard its edits)."""
    from app.model.demo import demo_is_current
    from app.model.errors import SegmendError
    from app.model.journal.sidecar import journal_path

    if out is None or not out.exists():
        return
    if not demo_is_current(out, labelmap=None):
        raise SegmendError(
            f"{out} exists and is not a segmend demo pyramid: give --out a new path"
        )
    if not demo_is_current(out, labelmap=labelmap) and journal_path(out).exists():
        held, option = ("voxel", "--voxel") if labelmap else ("labelmap", "--labelmap")
        raise SegmendError(
            f"{out} is the {held}-mode demo, with edits: open it with {option}, "
            "or give --out a new path"
        )


def _format_info(info: dict[str, Any]) -> str:
    mode = info["mode"]
    if "mapped_supervoxels" in info:
        mode += f" ({info['mapped_supervoxels']} mapped supervoxels)"
    lines = [
        f"file:        {info['file']}",
        f"format:      {info['format']}",
        f"mode:        {mode}",
        f"shape (zyx): {tuple(info['shape'])}",
        f"block size:  {tuple(info['block_size'])}",
        f"downres:     {info['downres_rule']}",
        f"levels:      {len(info['levels'])}  "
        + " ".join("x".join(map(str, s)) for s in info["levels"]),
        f"grayscale:   {len(info['image_levels']) or 'no'} levels",
        f"compression: {info['compression']}",
        f"max label:   {info['max_label']}",
        f"next label:  {info['next_label'] or 'none (the uint64 label space is exhausted)'}",
        f"mutations:   {info['mutations']}",
        f"file holds:  mutation {info['checkpointed_mutation']} "
        f"(journal: {info['journaled_mutation']})",
        f"outbox:      {info['outbox_pending']} pending",
    ]
    if info["file_note"]:
        lines.append(f"note:        {info['file_note']}")
    if info["checkpoint_problem"]:
        lines.append(f"checkpoints: {info['checkpoint_problem']}")
    return "\n".join(lines)


def _format_verify(result: dict[str, Any]) -> str:
    lines = [
        f"{'OK' if result['ok'] else 'FAILED'}: {result['blocks_checked']} blocks checked, "
        f"{result['mismatched_blocks']} differ"
    ]
    lines += [f"  {m}" for m in result["mismatches"]]
    lines += [f"  {p}" for p in result["problems"]]
    if result["file_note"]:
        lines.append(f"note: {result['file_note']} (checked: the file and the journal's edits)")
    return "\n".join(lines)
