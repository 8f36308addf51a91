"""What a consumer of an annotation set's topic rebuilds from the events alone:
each body's elements (kind and position)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from app.model.events.encoding import resolve_data_ref
from app.model.events.outbox_view import outbox_tail, read_blob

Bodies = dict[int, set[tuple[str, tuple[int, int, int]]]]


def bodies_from_stream(h5_path: Path, name: str) -> Bodies:
    """Each body's ``(kind, (x, y, z))`` elements, applying the ``Delta`` of every
    event of set ``name`` in order (``Del`` first, then ``Add``)."""
    blob: Callable[[str], bytes] = lambda ref: read_blob(h5_path, ref)  # noqa: E731
    out: Bodies = {}
    for event in outbox_tail(h5_path, 1 << 30):
        if event.instance != name:
            continue
        msg = resolve_data_ref(json.loads(event.payload), blob)
        delta = msg["Delta"]
        for e in delta["Del"] or []:
            out[e["Label"]].remove((e["Kind"], tuple(e["Pos"])))
        for e in delta["Add"] or []:
            out.setdefault(e["Label"], set()).add((e["Kind"], tuple(e["Pos"])))
    return {body: found for body, found in out.items() if found}
