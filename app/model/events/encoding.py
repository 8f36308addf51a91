"""Kafka values as DVID writes them: Go's JSON, and an oversized message sent by ``DataRef``.

DVID builds each message as a Go ``map[string]interface{}`` and sends
``json.Marshal(msg)``: compact JSON with the map's keys sorted, structs in
field order, ``<``, ``>``, ``&``, U+2028 and U+2029 escaped as
``\\u003c``-style sequences, other characters as UTF-8 (:func:`go_json`).

A message over the size DVID's producer accepts is stored whole in the blob
store and sent without its bulky field, carrying ``"DataRef": ref`` instead,
as DVID's cleave does (``datatype/labelmap/mutate.go``); a consumer gets the
whole message back with :func:`resolve_data_ref`.  DVID itself never sends
an oversized merge or split (its producer rejects it and the event is lost);
segmend sends it by reference so that no event is lost.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["BULKY_FIELDS", "MESSAGE_LIMIT", "RawJSON", "encode_message", "go_json",
           "resolve_data_ref"]

#: Largest encoded message (bytes) sent as is; larger ones are sent by ``DataRef``.
MESSAGE_LIMIT = 980 * 1024

#: The fields a message sent by reference leaves out (the lists that grow with an edit).
BULKY_FIELDS: tuple[str, ...] = ("Labels", "CleavedSupervoxels", "SVSplits", "Delta")

_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                             "\u2028": "\\u2028", "\u2029": "\\u2029"})
"""Go's ``json.Marshal`` escapes of characters it writes otherwise as UTF-8."""

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
"""Compact JSON, UTF-8 text, no NaN (made once: ``json.dumps`` makes one per call)."""


class RawJSON(str):
    """A message field's value as JSON text, written as it is by :func:`go_json`:
    a builder that writes a long list of plain values itself (integers and
    ASCII strings without ``<``, ``>`` or ``&``: Go writes them alike) spares
    the encoder an object per item."""


def go_json(msg: Mapping[str, Any]) -> bytes:
    """A message as Go's ``json.Marshal`` writes its map: keys sorted, HTML-safe
    escapes (nested objects keep their order: the builders give a nested map,
    ``SVSplits``, its keys sorted and a struct, ``SVSplit``, its field order);
    a top-level :class:`RawJSON` value as it is.

    Raises
    ------
    ValueError
        A float that is not finite, or a string that is not valid Unicode text.
    """
    raw = {k: v for k, v in msg.items() if isinstance(v, RawJSON)}
    text = _ENCODER.encode(dict(sorted(
        (k, f"\0{k}" if k in raw else v) for k, v in msg.items())))
    text = text.translate(_GO_ESCAPES)  # (these characters occur only inside strings)
    for key, value in raw.items():
        text = text.replace(_ENCODER.encode(f"\0{key}"), value, 1)
    try:
        return text.encode()
    except UnicodeEncodeError as exc:
        raise ValueError(f"a message string is not valid Unicode text: {exc.reason}") from None


def encode_message(
    msg: Mapping[str, Any],
    put_blob: Callable[[bytes], str],
    limit: int = MESSAGE_LIMIT,
) -> bytes:
    """Encode ``msg`` as a Kafka value; an oversized one goes to the blob store whole.

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
        :func:`go_json` of the message; if that exceeds ``limit``, those bytes
        are stored via ``put_blob`` and the value is the message without its
        :data:`BULKY_FIELDS`, with ``"DataRef": ref``.

    Raises
    ------
    ValueError
        If the message is over ``limit`` even without its bulky fields.
    """
    data = go_json(msg)
    if len(data) <= limit:
        return data
    reduced = {k: v for k, v in msg.items() if k not in BULKY_FIELDS}
    reduced["DataRef"] = put_blob(data)
    small = go_json(reduced)
    if len(small) > limit:
        raise ValueError(
            f"{msg.get('Action', '?')} message is {len(small)} bytes without its bulky "
            f"fields, over the {limit}-byte limit"
        )
    return small


def resolve_data_ref(msg: Mapping[str, Any], get_blob: Callable[[str], bytes]) -> dict[str, Any]:
    """The whole message of a message sent by ``DataRef`` (any other one as is).

    Parameters
    ----------
    msg : mapping
        A decoded Kafka value.
    get_blob : callable
        The blob store's lookup (e.g. :meth:`app.model.dataset.Dataset.blob`).

    Raises
    ------
    KeyError
        The blob store lacks the reference.
    ValueError
        The blob is not a JSON object.
    """
    if "DataRef" not in msg:
        return dict(msg)
    whole = json.loads(get_blob(str(msg["DataRef"])))
    if not isinstance(whole, dict):
        raise ValueError(f"blob {msg['DataRef']} is not a JSON message")
    return whole
