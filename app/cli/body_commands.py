"""Finding and making inputs of edits: ``segmend bodies`` (the bodies of the
label index) and ``segmend rle`` (a box or a mask as DVID RLEs)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.cli.output import bounded_int, emit
from app.cli.region_options import add_region_options, check_region_args, region_spans
from app.model.annotations.elements import SYNAPTIC
from app.model.bodies import BODY_ORDERS


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``bodies`` and ``rle`` to the ``segmend`` parser."""
    p = sub.add_parser(
        "bodies",
        help="list the bodies (label, voxels, s0 blocks) from the label index, largest first",
    )
    p.add_argument("file", help="the pyramid file (read only)")
    p.add_argument(
        "--top", type=bounded_int(1), metavar="N", help="only the N largest (default: all)"
    )
    p.add_argument(
        "--by", choices=(*BODY_ORDERS, *SYNAPTIC), default="size",
        help="largest by voxel count (size, the default) or by s0 block count, or most "
             "PreSyn or PostSyn elements of --set (then the 50 first unless --top); ties "
             "by label",
    )
    p.add_argument(
        "--set", default="synapses", metavar="NAME",
        help="the annotation set counted by --by PreSyn|PostSyn (default: synapses)",
    )
    p.add_argument(
        "--status", metavar="S",
        help="instead: the body annotations whose status is S (a JSON list)",
    )
    p.add_argument(
        "--json", action="store_true",
        help='print a JSON list of {"label", "voxels", "blocks"} instead of a table',
    )
    p.set_defaults(func=cmd_bodies)

    p = sub.add_parser(
        "rle", help="write a box or a mask as DVID binary RLEs (for 'segmend split --rles')"
    )
    p.add_argument("file", help="the pyramid file (read only: the region must fit its volume)")
    add_region_options(p, rles=False)
    p.add_argument(
        "-o", "--out", required=True, type=Path, metavar="OUT.rle",
        help="the RLE file to write (replaced if it exists)",
    )
    p.add_argument(
        "--json", action="store_true",
        help='print {"out", "spans", "voxels", "bytes"} as JSON instead of a sentence',
    )
    p.set_defaults(func=cmd_rle)


def cmd_bodies(args: argparse.Namespace) -> int:
    """``segmend bodies FILE [--top N] [--by size|blocks]``: a table, or a JSON list."""
    from app.model.dataset import open_dataset

    with open_dataset(args.file, "r") as ds:
        if args.status is not None:
            emit(args, ds.body_annotations.with_status(args.status))
            return 0
        if args.by in SYNAPTIC:
            ranked = ds.annotations.top(args.set, args.top or 50, args.by)
            rows = [{"label": r["Label"], **ds.annotations.counts(args.set, r["Label"])}
                    for r in ranked]
            emit(args, rows, _format_synapse_counts)
            return 0
        bodies = ds.bodies(by=args.by, top=args.top)
    emit(args, [b.as_json() for b in bodies], _format_bodies)
    return 0


def _format_synapse_counts(rows: list[dict[str, int]]) -> str:
    if not rows:
        return "no bodies: the annotation set has no PreSyn or PostSyn element on a body"
    head = f"{'label':>20} {'PreSyn':>8} {'PostSyn':>8}"
    return "\n".join(
        [head] + [f"{r['label']:>20} {r['PreSyn']:>8,} {r['PostSyn']:>8,}" for r in rows]
    )


def _format_bodies(rows: list[dict[str, int]]) -> str:
    if not rows:
        return "no bodies: the label index is empty"
    head = f"{'label':>20} {'voxels':>14} {'blocks':>8}"
    return "\n".join(
        [head] + [f"{r['label']:>20} {r['voxels']:>14,} {r['blocks']:>8,}" for r in rows]
    )


def cmd_rle(args: argparse.Namespace) -> int:
    """``segmend rle FILE --box ... | --mask M.npy [--offset Z,Y,X] -o OUT.rle``."""
    from app.model.dataset import open_dataset
    from app.model.rle_regions import write_rle_file

    mask = check_region_args(args)
    with open_dataset(args.file, "r") as ds:
        shape = ds.shape
    spans = region_spans(args, mask, shape)
    size = write_rle_file(args.out, spans)
    result: dict[str, Any] = {
        "out": str(args.out),
        "spans": len(spans),
        "voxels": int(spans[:, 3].sum()),
        "bytes": size,
    }
    emit(args, result, lambda r: f"wrote {r['out']}: {r['spans']} spans, {r['voxels']} voxels")
    return 0
