"""A DVID client, as the FlyEM tools read a labelmap/labelarray Kafka stream.

What neuclease's ``read_kafka_messages`` (with its DAG filter) and
``compute_affected_bodies`` do, and what a consumer replaying the stream onto
a copy of the volume does: keep the records of the repo's node, resolve
``DataRef`` through the blob store, decode each ``Split`` as DVID RLE (block
coordinates for ``splitcoarse``) and apply the messages in order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.kernels import parse_rles, rles_to_mask
from app.model.events.encoding import resolve_data_ref

Blob = Callable[[str], bytes]


def client_messages(
    values: Iterable[bytes], node: str, blob: Blob, *, completes: bool
) -> list[dict[str, Any]]:
    """The mutations a DVID client keeps from Kafka ``values``: those of
    ``node`` (neuclease's ``dag_filter='leaf-only'``), ``DataRef`` resolved,
    the start messages (or the ``-complete`` ones, which repeat their fields,
    renamed back) and the label reservations."""
    msgs = [json.loads(value) for value in values]
    msgs = [resolve_data_ref(m, blob) for m in msgs if m["UUID"] == node]
    kept = []
    for msg in msgs:
        done = msg["Action"].endswith("-complete")
        if msg["Action"].startswith("post-") or done == completes:
            kept.append({**msg, "Action": msg["Action"].removesuffix("-complete")})
    return kept


def replay_stream(
    labels: NDArray[np.uint64],
    msgs: list[dict[str, Any]],
    blob: Blob,
    block: tuple[int, int, int],
) -> NDArray[np.uint64]:
    """Every body's voxels rebuilt from ``labels`` (z, y, x) and the messages
    alone (``block``: the s0 block shape, z y x, that split-coarse RLEs count in)."""
    out = labels.copy()
    for msg in msgs:
        action = msg["Action"]
        if action == "merge":
            out[np.isin(out, np.array(msg["Labels"], np.uint64))] = msg["Target"]
        elif action in ("split", "splitcoarse"):
            spans = parse_rles(blob(msg["Split"]), headered=False).astype(np.int64)
            if action == "splitcoarse":  # block coordinates: whole blocks
                x, y, z, n = spans.T
                spans = np.stack([x * block[2], y * block[1], z * block[0], n * block[2]], 1)
                rows = [(0, dy, dz, 0) for dz in range(block[0]) for dy in range(block[1])]
                spans = np.concatenate([spans + np.array(row) for row in rows])
            region = rles_to_mask(spans, (0, 0, 0), out.shape)
            out[region & (out == msg["Target"])] = msg["NewLabel"]
        else:
            assert action in ("post-nextlabel", "post-maxlabel"), action
    return out


def affected_bodies(msgs: list[dict[str, Any]]) -> tuple[set[int], set[int], set[int]]:
    """neuclease's ``compute_affected_bodies``: (new, changed, removed) bodies."""
    new: set[int] = set()
    changed: set[int] = set()
    removed: set[int] = set()
    for msg in msgs:
        if msg["Action"] == "merge":
            changed.add(msg["Target"])
            removed |= set(msg["Labels"])
            changed -= set(msg["Labels"])
            new -= set(msg["Labels"])
        elif msg["Action"] == "split":
            changed.add(msg["Target"])
            new.add(msg["NewLabel"])
    return new, changed, removed
