"""``segmend export``: a dataset as OME-Zarr (NGFF 0.5, Zarr v3, sharded)."""

from __future__ import annotations

import argparse
from typing import Any

from app.cli.output import bounded_int, emit, progress_bar


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this module's commands to the ``segmend`` parser."""
    p = sub.add_parser(
        "export", help="write a pyramid as OME-Zarr (NGFF 0.5, Zarr v3, sharded)"
    )
    p.add_argument("file", help="the pyramid file")
    p.add_argument(
        "out", help="the OME-Zarr folder to write (OUT.zarr; replaced only if segmend wrote it)"
    )
    p.add_argument(
        "--threads", type=bounded_int(1), metavar="N", help="threads (default: one per core)"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    """``segmend export FILE OUT.zarr``: prints where, the levels and the shape."""
    from app.model.omezarr.export import export_ome_zarr, export_summary

    with progress_bar("export", unit="block") as tick:
        out = export_ome_zarr(args.file, args.out, workers=args.threads, progress=tick)
    emit(args, {"file": args.file, **export_summary(out)}, _format_export)
    return 0


def _format_export(result: dict[str, Any]) -> str:
    levels = result["levels"]
    return "\n".join(
        [
            f"wrote:       {result['out']} (OME-Zarr 0.5)",
            f"from:        {result['file']}",
            f"shape (zyx): {tuple(result['shape'])} {result['dtype']}",
            f"levels:      {len(levels)}  " + " ".join("x".join(map(str, s)) for s in levels),
            f"grayscale:   {len(result['image_levels']) or 'no'} levels",
            f"voxel (nm):  {tuple(result['voxel_size_nm'])}",
        ]
    )
