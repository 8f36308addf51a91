"""A consumer of a labelmap dataset's event stream, written from DVID's message
reference alone: it keeps its own supervoxel volume and mapping and applies
each start message to them (``merge``, ``cleave``, ``split`` with ``SVSplits``,
``split-supervoxel``, and segmend's ``undo-split`` and
``undo-split-supervoxel``).  The tests check that it ends where the dataset is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.kernels import parse_rles


class MappingClient:
    """A supervoxel volume and its mapping, as the stream says they are.

    Parameters
    ----------
    svs : NDArray[uint64], shape (z, y, x)
        The supervoxels before the stream's first message (copied).
    mapping : dict of int to int
        Their bodies then (copied; an absent supervoxel is its own body).
    blob : callable
        Reads a message's blob reference (a split's region).
    """

    def __init__(self, svs: NDArray[np.uint64], mapping: dict[int, int],
                 blob: Callable[[str], bytes]) -> None:
        self.svs = svs.copy()
        self.mapping = dict(mapping)
        self.blob = blob

    def body(self, sv: int) -> int:
        """The body of ``sv``."""
        return self.mapping.get(sv, sv)

    def apply(self, msg: dict[str, Any]) -> None:
        """Apply one start message (others are ignored)."""
        action = msg["Action"]
        if action == "merge":
            merged = set(msg["Labels"])
            for sv in list(self.mapping) + list(merged):
                if self.body(sv) in merged:
                    self.mapping[sv] = msg["Target"]
        elif action == "cleave":
            self.mapping.update(dict.fromkeys(msg["CleavedSupervoxels"], msg["CleavedLabel"]))
        elif action == "split-supervoxel":
            self._cut(msg["Supervoxel"], msg["SplitSupervoxel"], msg["RemainSupervoxel"],
                      self._region(msg["Split"]), msg["Body"], msg["Body"])
        elif action == "undo-split-supervoxel":
            self._join(msg["Supervoxel"], msg["SplitSupervoxel"], msg["RemainSupervoxel"],
                       msg["Body"])
        elif action == "split":
            region = self._region(msg["Split"])
            target, new = msg["Target"], msg["NewLabel"]
            for key, parts in msg["SVSplits"].items():
                self._cut(int(key), parts["Split"], parts["Remain"], region, new, target)
            for sv in np.unique(self.svs[region]).tolist():  # (inside whole: it moves)
                if self.body(sv) == target and not (self.svs[~region] == sv).any():
                    self.mapping[sv] = new
        elif action == "undo-split":
            target, new = msg["Target"], msg["NewLabel"]
            for key, parts in msg["SVSplits"].items():
                self._join(int(key), parts["Split"], parts["Remain"], target)
            for sv in list(self.mapping):
                if self.mapping[sv] == new:
                    self.mapping[sv] = target

    def _region(self, ref: str) -> NDArray[np.bool_]:
        region = np.zeros(self.svs.shape, bool)
        for x, y, z, n in parse_rles(self.blob(ref), headered=False).tolist():
            region[z, y, x:x + n] = True
        return region

    def _cut(self, sv: int, split: int, remain: int, region: NDArray[np.bool_],
             split_body: int, remain_body: int) -> None:
        held = self.svs == sv
        self.svs[held & region] = split
        self.svs[held & ~region] = remain
        self.mapping.update({sv: 0, split: split_body, remain: remain_body})

    def _join(self, sv: int, split: int, remain: int, body: int) -> None:
        self.svs[(self.svs == split) | (self.svs == remain)] = sv
        self.mapping.update({sv: body, split: 0, remain: 0})
