"""Kafka values: a message as compact JSON, an oversized field moved behind a ``DataRef``.

DVID caps its Kafka messages near 1 MB; a message whose JSON would be larger
has its biggest bulky field stored in the blob store and replaced by
``"DataRef": ref`` and ``"DataRefField": name`` (:func:`encode_message`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["BIG_FIELDS", "MESSAGE_LIMIT", "encode_message"]

#: Largest encoded message (bytes) sent as is; larger ones get a ``DataRef``.
MESSAGE_LIMIT = 980 * 1024

#: Fields that may be moved into the blob store when a message is too large.
BIG_FIELDS: tuple[str, ...] = ("Labels", "SVSplits")


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def encode_message(
    msg: Mapping[str, Any],
    put_blob: Callable[[bytes], str],
    limit: int = MESSAGE_LIMIT,
) -> bytes:
    """Encode ``msg`` as compact UTF-8 JSON, moving an oversized field to the blob store.

    Parameters
    ----------
    msg : mapping
        A message from one of the builders.
    put_blob : callable
        Stores bytes and returns their reference (e.g.
        ``functools.partial(blobstore.put_blob, conn)``).
    limit : int
        Largest encoded size sent as is (980 KiB by default).

    Returns
    -------
    bytes
        The JSON.  If it would exceed ``limit``, the largest of
        :data:`BIG_FIELDS` present is stored as its own JSON via ``put_blob``
        and replaced by ``"DataRef": ref`` and ``"DataRefField": name``.

    Raises
    ------
    ValueError
        If the message is over ``limit`` and moving one field does not bring it under.
    """
    data = _dumps(dict(msg))
    if len(data) <= limit:
        return data
    action = msg.get("Action", "?")
    candidates = [(len(_dumps(msg[f])), f) for f in BIG_FIELDS if f in msg]
    if not candidates:
        raise ValueError(
            f"{action} message is {len(data)} bytes, over the {limit}-byte limit, and has "
            f"none of {', '.join(BIG_FIELDS)} to move to the blob store"
        )
    _, field = max(candidates)
    ref = put_blob(_dumps(msg[field]))
    reduced = {k: v for k, v in msg.items() if k != field}
    reduced["DataRef"] = ref
    reduced["DataRefField"] = field
    data = _dumps(reduced)
    if len(data) > limit:
        raise ValueError(
            f"{action} message is still {len(data)} bytes after moving {field} to the blob "
            f"store (limit {limit})"
        )
    return data
