"""The fields of DVID messages: checked, converted to their JSON types.

Each ``as_*`` function returns a field's value as DVID's JSON wants it
(``uint64`` as a Python int, ``[]uint64`` as a list of ints, a Go time
string) or raises ``ValueError`` naming the field and the bad value.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import numpy as np

from app.model.events.blobstore import is_blob_ref
from app.model.events.gotime import GoTime, go_time_string, now_go, parse_go_time

__all__ = [
    "DEFAULT_APP",
    "UINT64_MAX",
    "Message",
    "Timestamp",
    "UInt",
    "add_common",
    "as_blob_ref",
    "as_sv_splits",
    "as_text",
    "as_timestamp",
    "as_uint64",
    "as_uint64_list",
]

Message = dict[str, Any]
Timestamp = str | datetime | None
#: An unsigned 64-bit value: a Python or NumPy integer.
UInt = int | np.integer[Any]

#: The ``App`` field segmend writes unless told otherwise.
DEFAULT_APP = "segmend"

#: The largest uint64.
UINT64_MAX = 2**64 - 1


def as_uint64(field: str, value: object) -> int:
    """``value`` as an int if it is an integer (Python or NumPy) in uint64's range."""
    if type(value) is int and 0 <= value <= UINT64_MAX:  # (the common case, without the ABC)
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{field} must be an unsigned 64-bit integer, got {value!r}")
    number = int(value)
    if not 0 <= number <= UINT64_MAX:
        raise ValueError(f"{field} must be an unsigned 64-bit integer, got {number}")
    return number


def as_uint64_list(field: str, values: Iterable[object]) -> list[int]:
    """``values`` as a list of ints, each checked by :func:`as_uint64`."""
    if isinstance(values, str | bytes | Mapping):
        raise ValueError(f"{field} must be a list of unsigned 64-bit integers, got {values!r}")
    try:
        items = list(values)
    except TypeError:
        raise ValueError(
            f"{field} must be a list of unsigned 64-bit integers, got {values!r}"
        ) from None
    ints = [v for v in items if type(v) is int]  # (the common case, checked at C speed)
    if len(ints) == len(items) and (not ints or (min(ints) >= 0 and max(ints) <= UINT64_MAX)):
        return ints
    return [as_uint64(f"{field}[{i}]", v) for i, v in enumerate(items)]


def as_text(field: str, value: object) -> str:
    """``value`` if it is a non-empty string of valid Unicode text."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field} must be a non-empty string, got {value!r}")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError(f"{field} must be valid Unicode text, got {value!r}") from None
    return value


def as_timestamp(value: Timestamp) -> str:
    """A Go time string: now for None, a datetime converted, a string checked
    (unless segmend's clock made it: a :class:`~app.model.events.gotime.GoTime`)."""
    if value is None:
        return now_go()
    if isinstance(value, GoTime):  # (valid by construction: not parsed again)
        return value
    if isinstance(value, datetime):
        return go_time_string(value)
    if isinstance(value, str):
        parse_go_time(value)  # raises ValueError naming the bad value
        return value
    raise ValueError(f"Timestamp must be a Go time string or a datetime, got {value!r}")


def as_blob_ref(field: str, value: object) -> str:
    """``value`` if it is a blob reference (64 lowercase hex digits)."""
    if not is_blob_ref(value):
        raise ValueError(f"{field} must be a blob reference (64 hex digits), got {value!r}")
    assert isinstance(value, str)
    return value


def as_sv_splits(value: Mapping[Any, Any]) -> dict[str, dict[str, int]]:
    """``{supervoxel: (split, remain)}`` → DVID's ``map[uint64]SVSplit`` JSON."""
    if not isinstance(value, Mapping):
        raise ValueError(f"SVSplits must map supervoxel -> (split, remain), got {value!r}")
    out: dict[str, dict[str, int]] = {}
    for key, pair in value.items():  # (sorted as strings below, as Go writes a map)
        sv = as_uint64("SVSplits key", int(key) if isinstance(key, str) and key.isdigit() else key)
        if isinstance(pair, Mapping):
            split, remain = pair.get("Split"), pair.get("Remain")
        else:
            try:
                split, remain = pair
            except (TypeError, ValueError):
                raise ValueError(
                    f"SVSplits[{sv}] must be (split, remain) or "
                    f"{{'Split': s, 'Remain': r}}, got {pair!r}"
                ) from None
        out[str(sv)] = {  # DVID's SVSplit struct, in its field order
            "Split": as_uint64(f"SVSplits[{sv}].Split", split),
            "Remain": as_uint64(f"SVSplits[{sv}].Remain", remain),
        }
    return dict(sorted(out.items()))


def add_common(
    msg: Message,
    *,
    uuid: str,
    mutation_id: UInt | None,
    timestamp: Timestamp,
    user: str | None,
    app: str | None,
    order: tuple[str, ...] = ("MutationID", "UUID", "Timestamp"),
) -> Message:
    """Add the common fields in ``order``, then ``User`` and ``App`` when given
    (their order is for people: Kafka values have their keys sorted, as Go's)."""
    for name in order:
        if name == "MutationID":
            msg[name] = as_uint64("MutationID", mutation_id)
        elif name == "UUID":
            msg[name] = as_text("UUID", uuid)
        else:
            msg[name] = as_timestamp(timestamp)
    if user is not None:
        msg["User"] = as_text("User", user)
    if app is not None:
        msg["App"] = as_text("App", app)
    return msg
