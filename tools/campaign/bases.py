"""The base pyramids every case copies, and what the cases know of their labels.

:func:`prepare` builds them once per campaign: the real cube (``base``, and
``bare`` without a journal), a small crop (``small``, for an 8 MB tmpfs) and an
``edited`` copy holding a merge, a split and a reservation; :class:`Facts`
carries their paths and the labels the cases edit (:func:`label_facts`).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import struct
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from .classify import telling_line
from .processes import ROOT, SEGMEND

CUBE = ROOT / "resources" / "fib-medulla-250.h5"


Span = tuple[int, int, int, int]  # x, y, z, length (DVID's RLE order)


@dataclass(frozen=True)
class LabelFacts:
    """What cases need to know of one base pyramid's labels (from its s0)."""

    block: int
    max_label: int
    sizes: dict[int, int]
    pairs: tuple[tuple[int, int], ...]
    absent: int
    split_target: int
    split_spans: tuple[Span, ...]
    split_voxels: int
    whole_label: int
    whole_spans: tuple[Span, ...]
    miss_spans: tuple[Span, ...]
    coarse_target: int
    coarse_block: tuple[int, int, int]
    coarse_voxels: int
    coarse_empty_block: tuple[int, int, int]

    @classmethod
    def placeholder(cls) -> LabelFacts:
        """Facts for listing case names without building anything."""
        one: tuple[Span, ...] = ((0, 0, 0, 1),)
        return cls(
            64, 1, {}, ((1, 2),) * 200, 3, 1, one, 1, 1, one, one, 1, (0, 0, 0), 1, (0, 0, 0)
        )


@dataclass(frozen=True)
class Facts:
    """The prepared base pyramids and what the cases know of them."""

    root: Path
    base: Path
    bare: Path
    small: Path
    edited: Path
    crop_npy: Path
    lf: LabelFacts
    small_lf: LabelFacts
    edited_split_label: int
    blob_ref: str

    @classmethod
    def placeholder(cls) -> Facts:
        p = Path("/nonexistent")
        lf = LabelFacts.placeholder()
        return cls(p, p, p, p, p, p, lf, lf, 1, "0" * 64)


def rle_bytes(spans: Iterable[Span]) -> bytes:
    """DVID binary RLEs with their 12-byte header."""
    spans = list(spans)
    voxels = sum(s[3] for s in spans) % 2**32  # (ignored on read)
    head = bytes([0, 3, 0, 0]) + struct.pack("<II", voxels, len(spans))
    return head + b"".join(struct.pack("<iiii", *s) for s in spans)


def _bbox_spans(mask: NDArray[np.bool_], z_end: int | None = None) -> tuple[Span, ...]:
    """One span per (z, y) row of the bounding box of ``mask`` (z below ``z_end``)."""
    zz, yy, xx = np.nonzero(mask)
    z0, z1 = int(zz.min()), int(zz.max()) + 1 if z_end is None else z_end
    y0, y1, x0, x1 = int(yy.min()), int(yy.max()) + 1, int(xx.min()), int(xx.max()) + 1
    return tuple((x0, y, z, x1 - x0) for z in range(z0, z1) for y in range(y0, y1))


def _voxels_in(s0: NDArray[Any], spans: Iterable[Span], label: int) -> int:
    return sum(int(np.count_nonzero(s0[z, y, x : x + n] == label)) for x, y, z, n in spans)


def label_facts(s0: NDArray[Any], block: int, max_label: int) -> LabelFacts:
    """Pick the labels the cases edit: merge pairs, a split target and region, ..."""
    labels, counts = np.unique(s0, return_counts=True)
    sizes = {int(v): int(c) for v, c in zip(labels, counts, strict=True) if v}
    by_size = sorted(sizes, key=lambda v: (sizes[v], v))
    absent = next(v for v in range(1, max_label) if v not in sizes)
    total = s0.size

    def z_extent(label: int) -> int:
        zz = np.nonzero(np.any(s0 == label, axis=(1, 2)))[0]
        return int(zz.max() - zz.min()) + 1

    split_target = next(
        v for v in reversed(by_size) if sizes[v] <= total // 50 and z_extent(v) >= 4
    )
    mask = s0 == split_target
    zz = np.nonzero(np.any(mask, axis=(1, 2)))[0]
    split_spans = _bbox_spans(mask, z_end=int(zz.min() + (zz.max() - zz.min()) // 2 + 1))
    whole_label = next(v for v in by_size if sizes[v] >= 5)
    whole_spans = _bbox_spans(s0 == whole_label)
    miss = np.argwhere(s0 != split_target)[0]
    miss_spans: tuple[Span, ...] = ((int(miss[2]), int(miss[1]), int(miss[0]), 1),)

    coarse_target, coarse_block, coarse_voxels, coarse_empty = 0, (0, 0, 0), 0, (0, 0, 0)
    grid = [-(-n // block) for n in s0.shape]
    for v in reversed(by_size):
        if v in (split_target, whole_label) or sizes[v] > total // 100:
            continue
        cz, cy, cx = (a // block for a in np.nonzero(s0 == v))
        keys, n = np.unique(np.stack([cz, cy, cx], axis=1), axis=0, return_counts=True)
        if len(keys) >= 2:
            i = int(np.argmin(n))
            coarse_target, coarse_voxels = v, int(n[i])
            coarse_block = (int(keys[i][0]), int(keys[i][1]), int(keys[i][2]))
            held = {tuple(int(c) for c in k) for k in keys}
            coarse_empty = next(
                (z, y, x)
                for z in range(grid[0])
                for y in range(grid[1])
                for x in range(grid[2])
                if (z, y, x) not in held
            )
            break
    used = {split_target, whole_label, coarse_target}
    free = [v for v in by_size if sizes[v] >= 20 and v not in used]
    n_pairs = min(200, len(free) // 2)
    pairs = tuple((free[2 * i], free[2 * i + 1]) for i in range(n_pairs))
    return LabelFacts(
        block=block,
        max_label=max_label,
        sizes=sizes,
        pairs=pairs,
        absent=absent,
        split_target=split_target,
        split_spans=split_spans,
        split_voxels=_voxels_in(s0, split_spans, split_target),
        whole_label=whole_label,
        whole_spans=whole_spans,
        miss_spans=miss_spans,
        coarse_target=coarse_target,
        coarse_block=coarse_block,
        coarse_voxels=coarse_voxels,
        coarse_empty_block=coarse_empty,
    )


def _read_s0(path: Path) -> tuple[NDArray[Any], int, int]:
    with h5py.File(path, "r") as f:
        block = int(f.attrs["block_size"][0])
        return f["labels/s0"][...], block, int(f.attrs["max_label"])


class CampaignError(Exception):
    """The base pyramids could not be prepared."""


def _must(argv: Sequence[str], cwd: Path) -> str:
    p = subprocess.run([*SEGMEND, *argv], cwd=cwd, capture_output=True, text=True, check=False)
    if p.returncode:
        raise CampaignError(f"segmend {' '.join(argv)}: {telling_line(p.stderr)}")
    return p.stdout


def prepare(root: Path) -> Facts:
    """Build the base pyramids (the real cube and a small crop) and an edited copy."""
    cube = f"{CUBE}:/automated/bodies"
    for name in ("base", "bare", "small", "edited"):
        (root / name).mkdir(parents=True)
    base, bare, small, edited = (root / n / "seg.h5" for n in ("base", "bare", "small", "edited"))
    _must(["build", cube, str(bare), "--image", f"{CUBE}:/raw"], root)
    shutil.copy2(bare, base)
    _must(["reindex", str(base)], root)
    with h5py.File(CUBE, "r") as f:
        crop = f["automated/bodies"][:64, :128, :128]
    crop_npy = root / "crop.npy"
    np.save(crop_npy, crop)
    _must(["build", str(crop_npy), str(small), "--block-size", "32"], root)
    _must(["reindex", str(small)], root)
    lf = label_facts(*_read_s0(base))
    small_lf = label_facts(*_read_s0(small))
    copy_dataset(base, edited)
    target, label = lf.pairs[-1]
    _must(["merge", str(edited), str(target), str(label)], root)
    (root / "split.rle").write_bytes(rle_bytes(lf.split_spans))
    out = _must(
        ["split", str(edited), str(lf.split_target), "--rles", str(root / "split.rle")], root
    )
    _must(["nextlabel", str(edited), "3"], root)
    with sqlite3.connect(f"file:{edited}.segmend/journal.sqlite?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT record FROM mutations WHERE action = 'split'").fetchone()
    return Facts(
        root=root,
        base=base,
        bare=bare,
        small=small,
        edited=edited,
        crop_npy=crop_npy,
        lf=lf,
        small_lf=small_lf,
        edited_split_label=int(json.loads(out)["label"]),
        blob_ref=str(json.loads(row[0])["Split"]),
    )


def copy_dataset(src: Path, dst: Path) -> None:
    """Copy a pyramid file and its sidecar folder (journal), not its lock files."""
    shutil.copy2(src, dst)
    side = Path(f"{src}.segmend")
    if side.is_dir():
        shutil.copytree(side, f"{dst}.segmend", ignore=shutil.ignore_patterns("*.lock"))
