"""The region options of ``segmend rle`` and ``segmend split``: ``--box``, or
``--mask`` with ``--offset`` (and, for split, ``--rles`` or ``--seeds``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.model.errors import SegmendError

if TYPE_CHECKING:  # (the kernels load when a region is made, not with the command line)
    import numpy as np
    from numpy.typing import NDArray

    from app.model.rle_regions import Box


def add_region_options(parser: argparse.ArgumentParser, *, rles: bool,
                       seeds: bool = False) -> None:
    """Add ``--box`` / ``--mask`` (and ``--rles`` if ``rles``, ``--seeds`` if
    ``seeds``), one of them required, and ``--offset``."""
    group = parser.add_mutually_exclusive_group(required=True)
    if rles:
        group.add_argument(
            "--rles", type=Path, metavar="RLEFILE",
            help="the region as DVID binary RLEs with their header (as 'segmend rle' writes)",
        )
    group.add_argument(
        "--box", type=_box, metavar="Z0:Z1,Y0:Y1,X0:X1",
        help="the region as a box of s0 voxels, ends excluded (e.g. 0:10,20:40,5:9)",
    )
    group.add_argument(
        "--mask", type=Path, metavar="M.npy",
        help="the region as a 3D mask (z, y, x) saved with numpy.save: boolean, or "
             "integer where nonzero is inside",
    )
    if seeds:
        group.add_argument(
            "--seeds", action="append", nargs="+", type=seed_arg, metavar="X,Y,Z",
            help="a seed group: s0 voxels (x,y,z) of the body; give --seeds at least twice. "
                 "A seeded watershed on the grayscale (without grayscale: on the distance to "
                 "the body's surface) divides the body among the groups: the first group's part "
                 "becomes a new body (the next group's another, ...), the last keeps the id",
        )
    parser.add_argument(
        "--offset", type=_triple, default=(0, 0, 0), metavar="Z,Y,X",
        help="s0 voxel of the mask's first voxel (default 0,0,0; only with --mask)",
    )


def _box(text: str) -> Box:
    try:
        ranges = [tuple(int(v) for v in part.split(":")) for part in text.split(",")]
    except ValueError:
        ranges = []
    if len(ranges) != 3 or any(len(r) != 2 for r in ranges):
        raise argparse.ArgumentTypeError(f"a box is Z0:Z1,Y0:Y1,X0:X1 (integers), got {text!r}")
    (z0, z1), (y0, y1), (x0, x1) = ranges
    return ((z0, z1), (y0, y1), (x0, x1))


def seed_arg(text: str) -> tuple[int, int, int]:
    """An ``X,Y,Z`` seed as an s0 voxel (z, y, x)."""
    x, y, z = _three_ints(text, "a seed is three integers X,Y,Z", negative=True)
    return (z, y, x)


def _triple(text: str) -> tuple[int, int, int]:
    return _three_ints(text, "an offset is three non-negative integers Z,Y,X", negative=False)


def _three_ints(text: str, what: str, *, negative: bool) -> tuple[int, int, int]:
    """``A,B,C`` as three ints (in that order); an ArgumentTypeError starting with
    ``what`` if it is not that (or has a negative value, unless ``negative``)."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 3 or (not negative and min(values) < 0):
        raise argparse.ArgumentTypeError(f"{what}, got {text!r}")
    return (values[0], values[1], values[2])


def check_region_args(args: argparse.Namespace) -> NDArray[np.bool_] | None:
    """Check the options before any file is opened: ``--offset`` only with
    ``--mask``; the mask, loaded (None without ``--mask``)."""
    from app.model.rle_regions import load_mask

    if args.mask is None and args.offset != (0, 0, 0):
        raise SegmendError("--offset applies to --mask only")
    return None if args.mask is None else load_mask(args.mask)


def region_spans(
    args: argparse.Namespace, mask: NDArray[np.bool_] | None, shape: tuple[int, int, int]
) -> NDArray[Any]:
    """The spans of ``--box`` or of ``mask`` at ``--offset``, checked against ``shape``."""
    from app.model.rle_regions import box_spans, mask_spans

    if mask is not None:
        try:
            return mask_spans(mask, args.offset, shape)
        except SegmendError as exc:
            raise SegmendError(f"mask {args.mask}: {exc}") from None
    return box_spans(args.box, shape)
