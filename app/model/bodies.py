"""The bodies of a dataset from its label index: label, voxels, blocks.

A query of the index table (one row per label and s0 block), never a scan of
the volume.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray

from app.model.journal.journal_db import from_db

__all__ = ["BODY_ORDERS", "Body", "index_bodies", "mapped_bodies"]

BODY_ORDERS = ("size", "blocks")
"""What :func:`index_bodies` can order by: voxels or s0 blocks, largest first."""

_ORDER_SQL = {"size": "voxels DESC", "blocks": "blocks DESC"}


@dataclass(frozen=True)
class Body:
    """One body of the label index.

    Attributes
    ----------
    label : int
        The body's label (uint64).
    voxels : int
        Its voxels at s0.
    blocks : int
        The s0 blocks holding some of it.
    """

    label: int
    voxels: int
    blocks: int

    def as_json(self) -> dict[str, int]:
        """``{"label": ..., "voxels": ..., "blocks": ...}``."""
        return asdict(self)


def index_bodies(
    conn: sqlite3.Connection, *, by: str = "size", top: int | None = None
) -> list[Body]:
    """The bodies of a label index, largest first (by ``by``), ties by label.

    Parameters
    ----------
    conn : sqlite3.Connection
        A journal's connection (its ``label_index`` table).
    by : {"size", "blocks"}
        Order by voxel count or by block count, largest first.
    top : int, optional
        At most this many bodies (all without it).

    Returns
    -------
    list of Body
    """
    _check_order(by, top)
    # Labels are stored as signed integers (to_db): those at or past 2**63 are
    # negative, so ascending uint64 order is the non-negative ones, then the rest.
    rows = conn.execute(
        "SELECT label, SUM(count) AS voxels, COUNT(*) AS blocks FROM label_index "
        f"GROUP BY label ORDER BY {_ORDER_SQL[by]}, label < 0, label LIMIT ?",
        (-1 if top is None else top,),
    ).fetchall()
    return [Body(from_db(label), int(voxels), int(blocks)) for label, voxels, blocks in rows]


def mapped_bodies(
    conn: sqlite3.Connection,
    body_of: Callable[[NDArray[np.uint64]], NDArray[np.uint64]],
    *,
    by: str = "size",
    top: int | None = None,
) -> list[Body]:
    """The bodies of a labelmap dataset: its label index (of supervoxels) grouped
    by ``body_of``; ordered as :func:`index_bodies`."""
    _check_order(by, top)
    rows = np.array(conn.execute("SELECT label, z, y, x, count FROM label_index").fetchall(),
                    dtype=np.int64).reshape(-1, 5)
    bodies = body_of(rows[:, 0].view(np.uint64).copy())
    labels, at = np.unique(bodies, return_inverse=True)
    voxels = np.bincount(at, weights=rows[:, 4], minlength=labels.size).astype(np.int64)
    cells = np.unique(np.column_stack([at, rows[:, 1:4]]), axis=0)
    blocks = np.bincount(cells[:, 0], minlength=labels.size)
    key = voxels if by == "size" else blocks
    order = np.lexsort((labels, -key))
    if top is not None:
        order = order[:top]
    return [Body(int(labels[i]), int(voxels[i]), int(blocks[i])) for i in order]


def _check_order(by: str, top: int | None) -> None:
    if by not in _ORDER_SQL:
        raise ValueError(f"bodies are ordered by one of {', '.join(BODY_ORDERS)}, not {by!r}")
    if top is not None and top < 0:
        raise ValueError(f"top must be at least 0, got {top}")
