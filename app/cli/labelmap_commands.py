"""The reads of labelmap mode: ``segmend mapping`` (supervoxel → body),
``segmend supervoxels`` (a body's supervoxels) and ``segmend size`` (a body's or
a supervoxel's voxels), in DVID's shapes."""

from __future__ import annotations

import argparse
import json
import sys

from app.cli.output import bounded_int, emit

_LABEL = bounded_int(0, (1 << 64) - 1)  # (a uint64; the model stays unloaded until run)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``mapping``, ``supervoxels`` and ``size`` to the ``segmend`` parser."""
    p = sub.add_parser(
        "mapping",
        help="the supervoxel → body mapping: every 'sv body' line (DVID's GET /mappings), "
             "or the bodies of the given supervoxels as a JSON list",
    )
    p.add_argument("file", help="the dataset, in labelmap mode (read only)")
    p.add_argument("svs", type=_LABEL, nargs="*", metavar="SV", help="supervoxels (default: all)")
    p.set_defaults(func=cmd_mapping)

    p = sub.add_parser("supervoxels", help="the supervoxels of a body, as a JSON list")
    p.add_argument("file", help="the dataset, in labelmap mode (read only)")
    p.add_argument("body", type=_LABEL, help="the body")
    p.set_defaults(func=cmd_supervoxels)

    p = sub.add_parser("size", help='the voxels of a label: {"voxels": n}')
    p.add_argument("file", help="the dataset (read only)")
    p.add_argument("label", type=_LABEL, help="a body (or, with --supervoxels, a supervoxel)")
    p.add_argument(
        "--supervoxels", action="store_true",
        help="LABEL is a supervoxel (labelmap mode; in voxel mode labels are both)",
    )
    p.set_defaults(func=cmd_size)


def cmd_mapping(args: argparse.Namespace) -> int:
    """``segmend mapping FILE [SV...]``: all ``sv body`` lines (mapped supervoxels,
    sorted), or the bodies of ``SV...`` as a JSON list."""
    from app.model.dataset import open_dataset

    with open_dataset(args.file, "r") as ds:
        if args.svs:
            print(json.dumps(ds.mapping(args.svs).tolist()), flush=True)
            return 0
        pairs = ds.mapping_pairs()
    out = sys.stdout
    for at in range(0, len(pairs), 1 << 16):
        out.write("".join(f"{sv} {body}\n" for sv, body in pairs[at:at + (1 << 16)].tolist()))
    out.flush()
    return 0


def cmd_supervoxels(args: argparse.Namespace) -> int:
    """``segmend supervoxels FILE BODY``: a JSON list (sorted; refused if no such body)."""
    from app.model.dataset import open_dataset
    from app.model.errors import SegmendError

    with open_dataset(args.file, "r") as ds:
        svs = ds.supervoxels_of(args.body)
    if not svs.size:
        raise SegmendError(f"body {args.body} has no supervoxels")
    print(json.dumps(svs.tolist()), flush=True)
    return 0


def cmd_size(args: argparse.Namespace) -> int:
    """``segmend size FILE LABEL [--supervoxels]``: ``{"voxels": n}`` (0: none)."""
    from app.model.dataset import open_dataset

    with open_dataset(args.file, "r") as ds:
        voxels = ds.label_size(args.label, supervoxels=args.supervoxels)
    emit(args, {"voxels": voxels})
    return 0
