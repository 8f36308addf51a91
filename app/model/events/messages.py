"""The JSON messages segmend publishes, in DVID's Kafka mutation-log format.

One builder per action.  Each returns a ``dict`` holding exactly the fields of
DVID's message reference (``Action``, ``UUID``, ``MutationID``, ``Timestamp``
and the action's own), with DVID's names and JSON types — ``uint64`` as a JSON
integer, ``[]uint64`` as a list of integers, strings as strings — followed by
the extras DVID itself later added (issues #267 and #333): ``-complete``
messages repeat the fields of their start message and carry the sizes of the
bodies involved, and every message may carry ``User`` and ``App``.

:data:`DVID_SCHEMAS` lists the documented fields of each action, for
conformance checks (:func:`schema_problems`); :func:`encode_message` turns a
message into the bytes of a Kafka value, moving an oversized field into the
blob store behind a ``DataRef`` as DVID does.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import numpy as np

from app.model.events.blobstore import is_blob_ref
from app.model.events.gotime import go_time_string, now_go, parse_go_time

__all__ = [
    "ANNOTATION_ACTIONS",
    "ANNOTATION_SCHEMAS",
    "BIG_FIELDS",
    "DEFAULT_APP",
    "DVID_SCHEMAS",
    "MESSAGE_LIMIT",
    "OPTIONAL_FIELDS",
    "SVSPLITS_SCHEMA",
    "annotation_delta",
    "cleave_complete",
    "cleave_start",
    "element_pos",
    "encode_message",
    "maxlabel",
    "merge_complete",
    "merge_start",
    "nextlabel",
    "postkv",
    "schema_problems",
    "split_complete",
    "split_start",
    "split_supervoxel_complete",
    "split_supervoxel_start",
    "splitcoarse_complete",
    "splitcoarse_start",
]

Message = dict[str, Any]
Timestamp = str | datetime | None
#: An unsigned 64-bit value: a Python or NumPy integer.
UInt = int | np.integer[Any]

#: The ``App`` field segmend writes unless told otherwise.
DEFAULT_APP = "segmend"

#: Largest encoded message (bytes) sent as is; larger ones get a ``DataRef``.
MESSAGE_LIMIT = 980 * 1024

#: Fields that may be moved into the blob store when a message is too large.
BIG_FIELDS: tuple[str, ...] = ("Labels", "CleavedSupervoxels", "SVSplits", "Delta")

_UINT64_MAX = 2**64 - 1

_COMMON: dict[str, type] = {"Action": str, "MutationID": int, "UUID": str, "Timestamp": str}
_SPLIT: dict[str, type] = {
    "Action": str,
    "Target": int,
    "NewLabel": int,
    "Split": str,
    "MutationID": int,
    "UUID": str,
    "Timestamp": str,
}

#: Documented fields and their JSON types (as Python types) for every labelmap,
#: labelarray and keyvalue action of DVID's Kafka message reference.  ``split``
#: is the labelarray form; labelmap's adds ``SVSplits`` (:data:`SVSPLITS_SCHEMA`).
DVID_SCHEMAS: dict[str, dict[str, type]] = {
    "merge": {
        "Action": str,
        "Target": int,
        "Labels": list,
        "UUID": str,
        "MutationID": int,
        "Timestamp": str,
    },
    "merge-complete": dict(_COMMON),
    "cleave": {
        "Action": str,
        "OrigLabel": int,
        "CleavedLabel": int,
        "CleavedSupervoxels": list,
        "MutationID": int,
        "UUID": str,
        "Timestamp": str,
    },
    "cleave-complete": dict(_COMMON),
    "split-supervoxel": {
        "Action": str,
        "Supervoxel": int,
        "SplitSupervoxel": int,
        "RemainSupervoxel": int,
        "Split": str,
        "MutationID": int,
        "UUID": str,
        "Timestamp": str,
    },
    "split-supervoxel-complete": dict(_COMMON),
    "split": dict(_SPLIT),
    "split-complete": dict(_COMMON),
    "splitcoarse": dict(_SPLIT),
    "splitcoarse-complete": dict(_COMMON),
    "post-maxlabel": {"Action": str, "MaxLabel": int, "UUID": str, "Timestamp": str},
    "post-nextlabel": {
        "Action": str,
        "Start Label": int,
        "End Label": int,
        "UUID": str,
        "Timestamp": str,
    },
    "postkv": {"Action": str, "Key": str, "Bytes": int, "UUID": str, "Timestamp": str},
}

#: labelmap's ``split`` message: the labelarray fields plus ``SVSplits``.
SVSPLITS_SCHEMA: dict[str, type] = {**_SPLIT, "SVSplits": dict}

#: Actions of the annotation deltas DVID sends for synced label instances.
ANNOTATION_ACTIONS: tuple[str, ...] = (
    "merge",
    "cleave",
    "split-coarse",
    "split",
    "ingest-block",
    "mutate-block",
)

#: Documented fields of the annotation delta messages, by action.
ANNOTATION_SCHEMAS: dict[str, dict[str, type]] = {
    action: (
        {"Action": str, "UUID": str, "Timestamp": str, "Delta": dict}
        if action == "ingest-block"
        else {"Action": str, "MutationID": int, "UUID": str, "Timestamp": str, "Delta": dict}
    )
    for action in ANNOTATION_ACTIONS
}

#: Types of the extra (undocumented) fields segmend may add.
OPTIONAL_FIELDS: dict[str, type] = {
    "User": str,
    "App": str,
    "Target": int,
    "Labels": list,
    "NewLabel": int,
    "Split": str,
    "SVSplits": dict,
    "OrigLabel": int,
    "CleavedLabel": int,
    "CleavedSupervoxels": list,
    "Supervoxel": int,
    "SplitSupervoxel": int,
    "RemainSupervoxel": int,
    "TargetSize": int,
    "NewLabelSize": int,
    "OrigSize": int,
    "CleavedSize": int,
    "SplitSize": int,
    "RemainSize": int,
    "DataRef": str,
    "DataRefField": str,
}

_UINT64_LIST_FIELDS = ("Labels", "CleavedSupervoxels")


# --------------------------------------------------------------------------- validation


def _uint64(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{field} must be an unsigned 64-bit integer, got {value!r}")
    number = int(value)
    if not 0 <= number <= _UINT64_MAX:
        raise ValueError(f"{field} must be an unsigned 64-bit integer, got {number}")
    return number


def _uint64_list(field: str, values: Iterable[object]) -> list[int]:
    if isinstance(values, str | bytes | Mapping):
        raise ValueError(f"{field} must be a list of unsigned 64-bit integers, got {values!r}")
    try:
        items = list(values)
    except TypeError:
        raise ValueError(
            f"{field} must be a list of unsigned 64-bit integers, got {values!r}"
        ) from None
    return [_uint64(f"{field}[{i}]", v) for i, v in enumerate(items)]


def _text(field: str, value: object, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value):
        raise ValueError(f"{field} must be a non-empty string, got {value!r}")
    return value


def _timestamp(value: Timestamp) -> str:
    if value is None:
        return now_go()
    if isinstance(value, datetime):
        return go_time_string(value)
    if isinstance(value, str):
        parse_go_time(value)  # raises ValueError naming the bad value
        return value
    raise ValueError(f"Timestamp must be a Go time string or a datetime, got {value!r}")


def _blob_ref(field: str, value: object) -> str:
    if not is_blob_ref(value):
        raise ValueError(f"{field} must be a blob reference (64 hex digits), got {value!r}")
    assert isinstance(value, str)
    return value


def _sv_splits(value: Mapping[Any, Any]) -> dict[str, dict[str, int]]:
    """``{supervoxel: (split, remain)}`` → DVID's ``map[uint64]SVSplit`` JSON."""
    if not isinstance(value, Mapping):
        raise ValueError(f"SVSplits must map supervoxel -> (split, remain), got {value!r}")
    out: dict[str, dict[str, int]] = {}
    for key, pair in value.items():
        sv = _uint64("SVSplits key", int(key) if isinstance(key, str) and key.isdigit() else key)
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
        out[str(sv)] = {
            "Split": _uint64(f"SVSplits[{sv}].Split", split),
            "Remain": _uint64(f"SVSplits[{sv}].Remain", remain),
        }
    return out


def _tail(
    msg: Message,
    *,
    uuid: str,
    mutation_id: UInt | None,
    timestamp: Timestamp,
    user: str | None,
    app: str | None,
    order: tuple[str, ...] = ("MutationID", "UUID", "Timestamp"),
) -> Message:
    """Add the common fields in ``order``, then ``User`` and ``App`` when given."""
    for name in order:
        if name == "MutationID":
            msg[name] = _uint64("MutationID", mutation_id)
        elif name == "UUID":
            msg[name] = _text("UUID", uuid)
        else:
            msg[name] = _timestamp(timestamp)
    if user is not None:
        msg["User"] = _text("User", user)
    if app is not None:
        msg["App"] = _text("App", app)
    return msg


# --------------------------------------------------------------------------- labelmap / labelarray


def merge_start(
    *,
    target: UInt,
    labels: Iterable[UInt],
    uuid: str,
    mutation_id: UInt,
    timestamp: Timestamp = None,
    user: str | None = None,
    app: str | None = DEFAULT_APP,
) -> Message:
    """The ``merge`` message: ``labels`` are merged into ``target``.

    Parameters
    ----------
    target : int
        The body that remains.
    labels : iterable of int
        The bodies merged into it.
    uuid : str
        The version (repo node) UUID.
    mutation_id : int
        The mutation's id.
    timestamp : str or datetime, optional
        A Go time string or an aware datetime; now by default.
    user, app : str, optional
        Extra ``User`` and ``App`` fields (``App`` is ``"segmend"`` unless None).

    Returns
    -------
    dict
        ``Action, Target, Labels, UUID, MutationID, Timestamp`` (+ ``User``, ``App``).

    Raises
    ------
    ValueError
        Naming the first field with a bad value.
    """
    msg: Message = {
        "Action": "merge",
        "Target": _uint64("Target", target),
        "Labels": _uint64_list("Labels", labels),
    }
    return _tail(
        msg,
        uuid=uuid,
        mutation_id=mutation_id,
        timestamp=timestamp,
        user=user,
        app=app,
        order=("UUID", "MutationID", "Timestamp"),
    )


def merge_complete(
    *,
    target: UInt,
    labels: Iterable[UInt],
    target_size: UInt,
    uuid: str,
    mutation_id: UInt,
    timestamp: Timestamp = None,
    user: str | None = None,
    app: str | None = DEFAULT_APP,
) -> Message:
    """The ``merge-complete`` message, with the start fields and ``TargetSize``.

    Parameters
    ----------
    target, labels : see :func:`merge_start`
    target_size : int
        Voxels of the merged body.
    uuid, mutation_id, timestamp, user, app : see :func:`merge_start`

    Returns
    -------
    dict
        ``Action, MutationID, UUID, Timestamp`` then ``Target, Labels, TargetSize``
        (+ ``User``, ``App``).
    """
    msg: Message = {"Action": "merge-complete"}
    _tail(msg, uuid=uuid, mutation_id=mutation_id, timestamp=timestamp, user=None, app=None)
    msg["Target"] = _uint64("Target", target)
    msg["Labels"] = _uint64_list("Labels", labels)
    msg["TargetSize"] = _uint64("TargetSize", target_size)
    return _extras(msg, user, app)


def _extras(msg: Message, user: str | None, app: str | None) -> Message:
    if user is not None:
        msg["User"] = _text("User", user)
    if app is not None:
        msg["App"] = _text("App", app)
    return msg


def _split_fields(
    action: str,
    target: UInt,
    new_label: UInt,
    split_ref: str,
    sv_splits: Mapping[Any, Any] | None,
) -> Message:
    msg: Message = {
        "Action": action,
        "Target": _uint64("Target", target),
        "NewLabel": _uint64("NewLabel", new_label),
        "Split": _blob_ref("Split", split_ref),
    }
    if sv_splits is not None:
        msg["SVSplits"] = _sv_splits(sv_splits)
    return msg


def split_start(
    *,
    target: UInt,
    new_label: UInt,
    split_ref: str,
    uuid: str,
    mutation_id: UInt,
    sv_splits: Mapping[Any, Any] | None = None,
    timestamp: Timestamp = None,
    user: str | None = None,
    app: str | None = DEFAULT_APP,
) -> Message:
    """The ``split`` message: the region ``split_ref`` of ``target`` becomes ``new_label``.

    Parameters
    ----------
    target : int
        The body split.
    new_label : int
        The body created from the split region.
    split_ref : str
        Blob reference of the region's headerless RLE spans.
    uuid, mutation_id : see :func:`merge_start`
    sv_splits : mapping, optional
        labelmap only: ``{supervoxel: (split_sv, remain_sv)}`` for every
        supervoxel the region crossed; written as DVID's ``SVSplits``
        (``{"<sv>": {"Split": s, "Remain": r}}``).
    timestamp, user, app : see :func:`merge_start`

    Returns
    -------
    dict
        ``Action, Target, NewLabel, Split, MutationID, UUID, [SVSplits], Timestamp``.
    """
    msg = _split_fields("split", target, new_label, split_ref, None)
    msg["MutationID"] = _uint64("MutationID", mutation_id)
    msg["UUID"] = _text("UUID", uuid)
    if sv_splits is not None:
        msg["SVSplits"] = _sv_splits(sv_splits)
    msg["Timestamp"] = _timestamp(timestamp)
    return _extras(msg, user, app)


def split_complete(
    *,
    target: UInt,
    new_label: UInt,
    split_ref: str,
    target_size: UInt,
    new_label_size: UInt,
    uuid: str,
    mutation_id: UInt,
    sv_splits: Mapping[Any, Any] | None = None,
    timestamp: Timestamp = None,
    user: str | None = None,
    app: str | None = DEFAULT_APP,
) -> Message:
    """The ``split-complete`` message, with the start fields and both sizes.

    Parameters
    ----------
    target_size : int
        Voxels remaining in ``target``.
    new_label_size : int
        Voxels of ``new_label``.
    others : see :func:`split_start`
    """
    return _complete(
        "split-complete",
        _split_fields("split", target, new_label, split_ref, sv_splits),
        {"TargetSize": target_size, "NewLabelSize": new_label_size},
        uuid=uuid,
        mutation_id=mutation_id,
        timestamp=timestamp,
        user=user,
        app=app,
    )


def splitcoarse_start(
    *,
    target: UInt,
    new_label: UInt,
    split_ref: str,
    uuid: str,
    mutation_id: UInt,
    timestamp: Timestamp = None,
    user: str | None = None,
    app: str | None = DEFAULT_APP,
) -> Message:
    """The ``splitcoarse`` message: blocks ``split_ref`` of ``target`` become ``new_label``.

    ``split_ref`` is the blob of the coarse region as RLE spans in block
    coordinates.  Fields: ``Action, Target, NewLabel, Split, MutationID, UUID,
    Timestamp``; see :func:`split_start` for the parameters.
    """
    msg = _split_fields("splitcoarse", target, new_label, split_ref, None)
    return _tail(msg, uuid=uuid, mutation_id=mutation_id, timestamp=timestamp, user=user, app=app)


def splitcoarse_complete(
    *,
    target: UInt,
    new_label: UInt,
    split_ref: str,
    target_size: UInt,
    new_label_size: UInt,
    uuid: str,
    mutation_id: UInt,
    timestamp: Timestamp = None,
    user: str | None = None,
    app: str | None = DEFAULT_APP,
) -> Message:
    """The ``splitcoarse-complete`` message, with the start fields and both sizes."""
    return _complete(
        "splitcoarse-complete",
        _split_fields("splitcoarse", target, new_label, split_ref, None),
        {"TargetSize": target_size, "NewLabelSize": new_label_size},
        uuid=uuid,
        mutation_id=mutation_id,
        timestamp=timestamp,
        user=user,
        app=app,
    )


def _cleave_fields(orig_label: UInt, cleaved_label: UInt, supervoxels: Iterable[UInt]) -> Message:
    return {
        "Action": "cleave",
        "OrigLabel": _uint64("OrigLabel", orig_label),
        "CleavedLabel": _uint64("CleavedLabel", cleaved_label),
        "CleavedSupervoxels": _uint64_list("CleavedSupervoxels", supervoxels),
    }


def cleave_start(
    *,
    orig_label: UInt,
    cleaved_label: UInt,
    cleaved_supervoxels: Iterable[UInt],
    uuid: str,
    mutation_id: UInt,
    timestamp: Timestamp = None,
    user: str | None = None,
    app: str | None = DEFAULT_APP,
) -> Message:
    """The ``cleave`` message: ``cleaved_supervoxels`` leave ``orig_label`` for ``cleaved_label``.

    Fields: ``Action, OrigLabel, CleavedLabel, CleavedSupervoxels, MutationID,
    UUID, Timestamp``.
    """
    msg = _cleave_fields(orig_label, cleaved_label, cleaved_supervoxels)
    return _tail(msg, uuid=uuid, mutation_id=mutation_id, timestamp=timestamp, user=user, app=app)


def cleave_complete(
    *,
    orig_label: UInt,
    cleaved_label: UInt,
    cleaved_supervoxels: Iterable[UInt],
    orig_size: UInt,
    cleaved_size: UInt,
    uuid: str,
    mutation_id: UInt,
    timestamp: Timestamp = None,
    user: str | None = None,
    app: str | None = DEFAULT_APP,
) -> Message:
    """The ``cleave-complete`` message, with the start fields, ``OrigSize`` and ``CleavedSize``."""
    return _complete(
        "cleave-complete",
        _cleave_fields(orig_label, cleaved_label, cleaved_supervoxels),
        {"OrigSize": orig_size, "CleavedSize": cleaved_size},
        uuid=uuid,
        mutation_id=mutation_id,
        timestamp=timestamp,
        user=user,
        app=app,
    )


def _split_supervoxel_fields(
    supervoxel: UInt, split_supervoxel: UInt, remain_supervoxel: UInt, split_ref: str
) -> Message:
    return {
        "Action": "split-supervoxel",
        "Supervoxel": _uint64("Supervoxel", supervoxel),
        "SplitSupervoxel": _uint64("SplitSupervoxel", split_supervoxel),
        "RemainSupervoxel": _uint64("RemainSupervoxel", remain_supervoxel),
        "Split": _blob_ref("Split", split_ref),
    }


def split_supervoxel_start(
    *,
    supervoxel: UInt,
    split_supervoxel: UInt,
    remain_supervoxel: UInt,
    split_ref: str,
    uuid: str,
    mutation_id: UInt,
    timestamp: Timestamp = None,
    user: str | None = None,
    app: str | None = DEFAULT_APP,
) -> Message:
    """The ``split-supervoxel`` message: ``supervoxel`` becomes ``split_supervoxel``
    (the region ``split_ref``) and ``remain_supervoxel`` (the rest).

    Fields: ``Action, Supervoxel, SplitSupervoxel, RemainSupervoxel, Split,
    MutationID, UUID, Timestamp``.
    """
    msg = _split_supervoxel_fields(supervoxel, split_supervoxel, remain_supervoxel, split_ref)
    return _tail(msg, uuid=uuid, mutation_id=mutation_id, timestamp=timestamp, user=user, app=app)


def split_supervoxel_complete(
    *,
    supervoxel: UInt,
    split_supervoxel: UInt,
    remain_supervoxel: UInt,
    split_ref: str,
    split_size: UInt,
    remain_size: UInt,
    uuid: str,
    mutation_id: UInt,
    timestamp: Timestamp = None,
    user: str | None = None,
    app: str | None = DEFAULT_APP,
) -> Message:
    """The ``split-supervoxel-complete`` message, with the start fields,
    ``SplitSize`` and ``RemainSize``."""
    return _complete(
        "split-supervoxel-complete",
        _split_supervoxel_fields(supervoxel, split_supervoxel, remain_supervoxel, split_ref),
        {"SplitSize": split_size, "RemainSize": remain_size},
        uuid=uuid,
        mutation_id=mutation_id,
        timestamp=timestamp,
        user=user,
        app=app,
    )


def _complete(
    action: str,
    start_fields: Message,
    sizes: Mapping[str, UInt],
    *,
    uuid: str,
    mutation_id: UInt,
    timestamp: Timestamp,
    user: str | None,
    app: str | None,
) -> Message:
    """``Action, MutationID, UUID, Timestamp``, the start fields, the sizes, extras."""
    msg: Message = {"Action": action}
    _tail(msg, uuid=uuid, mutation_id=mutation_id, timestamp=timestamp, user=None, app=None)
    for name, value in start_fields.items():
        if name != "Action":
            msg[name] = value
    for name, size in sizes.items():
        msg[name] = _uint64(name, size)
    return _extras(msg, user, app)


def maxlabel(
    *,
    max_label: UInt,
    uuid: str,
    timestamp: Timestamp = None,
    user: str | None = None,
    app: str | None = DEFAULT_APP,
) -> Message:
    """The ``post-maxlabel`` message: ``Action, MaxLabel, UUID, Timestamp``."""
    msg: Message = {"Action": "post-maxlabel", "MaxLabel": _uint64("MaxLabel", max_label)}
    return _tail(
        msg,
        uuid=uuid,
        mutation_id=None,
        timestamp=timestamp,
        user=user,
        app=app,
        order=("UUID", "Timestamp"),
    )


def nextlabel(
    *,
    start: UInt,
    end: UInt,
    uuid: str,
    timestamp: Timestamp = None,
    user: str | None = None,
    app: str | None = DEFAULT_APP,
) -> Message:
    """The ``post-nextlabel`` message for the reserved labels ``start..end`` (inclusive).

    Fields: ``Action, "Start Label", "End Label", UUID, Timestamp`` (DVID's
    names, with spaces).

    Raises
    ------
    ValueError
        If ``end < start``.
    """
    first, last = _uint64("Start Label", start), _uint64("End Label", end)
    if last < first:
        raise ValueError(f"End Label {last} is below Start Label {first}")
    msg: Message = {"Action": "post-nextlabel", "Start Label": first, "End Label": last}
    return _tail(
        msg,
        uuid=uuid,
        mutation_id=None,
        timestamp=timestamp,
        user=user,
        app=app,
        order=("UUID", "Timestamp"),
    )


def postkv(
    *,
    key: str,
    nbytes: UInt,
    uuid: str,
    timestamp: Timestamp = None,
    user: str | None = None,
    app: str | None = DEFAULT_APP,
) -> Message:
    """The keyvalue ``postkv`` message: ``Action, Key, Bytes, UUID, Timestamp``."""
    msg: Message = {
        "Action": "postkv",
        "Key": _text("Key", key, empty=True),
        "Bytes": _uint64("Bytes", nbytes),
    }
    return _tail(
        msg,
        uuid=uuid,
        mutation_id=None,
        timestamp=timestamp,
        user=user,
        app=app,
        order=("UUID", "Timestamp"),
    )


# --------------------------------------------------------------------------- annotation deltas


def element_pos(label: UInt, kind: UInt, pos: Iterable[UInt]) -> dict[str, Any]:
    """One ``ElementPos`` of an annotation delta: ``{"Label", "Kind", "Pos": [x, y, z]}``.

    Raises
    ------
    ValueError
        If ``label`` is not uint64, ``kind`` not uint8, or ``pos`` not three uint32.
    """
    kind_value = _uint64("Kind", kind)
    if kind_value > 255:
        raise ValueError(f"Kind must be an unsigned 8-bit integer, got {kind_value}")
    coords = _uint64_list("Pos", pos)
    if len(coords) != 3 or any(c > 2**32 - 1 for c in coords):
        raise ValueError(f"Pos must be three unsigned 32-bit integers, got {coords}")
    return {"Label": _uint64("Label", label), "Kind": kind_value, "Pos": coords}


def annotation_delta(
    action: str,
    *,
    add: Iterable[Mapping[str, Any]] = (),
    delete: Iterable[Mapping[str, Any]] = (),
    uuid: str,
    mutation_id: UInt | None = None,
    timestamp: Timestamp = None,
    user: str | None = None,
    app: str | None = DEFAULT_APP,
) -> Message:
    """An annotation delta message (``DeltaModifyElements``) for a synced label change.

    Parameters
    ----------
    action : str
        One of :data:`ANNOTATION_ACTIONS`.
    add, delete : iterable of mapping
        ``ElementPos`` dicts (see :func:`element_pos`) for ``Delta.Add`` and ``Delta.Del``.
    uuid : str
        The version UUID.
    mutation_id : int, optional
        Required for every action but ``ingest-block``, which has none.
    timestamp, user, app : see :func:`merge_start`

    Returns
    -------
    dict
        ``Action, [MutationID], UUID, Timestamp, Delta``.
    """
    if action not in ANNOTATION_ACTIONS:
        raise ValueError(
            f"unknown annotation action {action!r}; choose one of {', '.join(ANNOTATION_ACTIONS)}"
        )
    if action == "ingest-block":
        if mutation_id is not None:
            raise ValueError("ingest-block annotation deltas carry no MutationID")
    elif mutation_id is None:
        raise ValueError(f"a {action} annotation delta needs a mutation_id")
    delta = {
        "Add": [element_pos(e["Label"], e["Kind"], e["Pos"]) for e in add],
        "Del": [element_pos(e["Label"], e["Kind"], e["Pos"]) for e in delete],
    }
    msg: Message = {"Action": action}
    order = ("UUID", "Timestamp") if mutation_id is None else ("MutationID", "UUID", "Timestamp")
    _tail(
        msg,
        uuid=uuid,
        mutation_id=mutation_id,
        timestamp=timestamp,
        user=None,
        app=None,
        order=order,
    )
    msg["Delta"] = delta
    return _extras(msg, user, app)


# --------------------------------------------------------------------------- conformance


def _type_problem(field: str, value: Any, expected: type) -> str | None:
    if expected is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{field} must be a JSON integer, got {type(value).__name__} {value!r}"
        if not 0 <= value <= _UINT64_MAX:
            return f"{field} must fit uint64, got {value}"
        return None
    if not isinstance(value, expected):
        return f"{field} must be a JSON {expected.__name__}, got {type(value).__name__}"
    return _content_problem(field, value)


def _content_problem(field: str, value: Any) -> str | None:
    """Problems inside a list or object field of the right type."""
    if field in _UINT64_LIST_FIELDS or field == "Pos":
        for i, item in enumerate(value):
            problem = _type_problem(f"{field}[{i}]", item, int)
            if problem:
                return problem
    if field == "SVSplits":
        for key, pair in value.items():
            if not (isinstance(key, str) and key.isdigit()):
                return f"SVSplits key {key!r} must be a decimal uint64 string"
            if not isinstance(pair, dict) or set(pair) != {"Split", "Remain"}:
                return f"SVSplits[{key}] must be {{'Split': uint64, 'Remain': uint64}}"
            for name in ("Split", "Remain"):
                problem = _type_problem(f"SVSplits[{key}].{name}", pair[name], int)
                if problem:
                    return problem
    if field == "Delta":
        for part in ("Add", "Del"):
            elements = value.get(part)
            if not isinstance(elements, list):
                return f"Delta.{part} must be a list of ElementPos"
            for i, element in enumerate(elements):
                if not isinstance(element, dict) or set(element) != {"Label", "Kind", "Pos"}:
                    return f"Delta.{part}[{i}] must be {{'Label', 'Kind', 'Pos'}}"
                for name, kind in (("Label", int), ("Kind", int), ("Pos", list)):
                    problem = _type_problem(f"Delta.{part}[{i}].{name}", element[name], kind)
                    if problem:
                        return problem
    return None


def schema_problems(msg: Mapping[str, Any], schema: Mapping[str, type] | None = None) -> list[str]:
    """Every way ``msg`` departs from its documented DVID schema (empty if none).

    Parameters
    ----------
    msg : mapping
        A decoded message.
    schema : mapping, optional
        Field → type; by default :data:`DVID_SCHEMAS` for ``msg["Action"]``
        (:data:`SVSPLITS_SCHEMA` for a ``split`` carrying ``SVSplits``).

    Returns
    -------
    list of str
        Missing documented fields, wrong JSON types (``bool`` is not an
        integer; integers must fit uint64; list items must be integers), and
        wrongly typed extra fields.  A field replaced by ``DataRef`` (named by
        ``DataRefField``) is not missing.
    """
    if schema is None:
        action = msg.get("Action")
        if action not in DVID_SCHEMAS:
            return [f"unknown Action {action!r}"]
        with_sv = action == "split" and "SVSplits" in msg
        schema = SVSPLITS_SCHEMA if with_sv else DVID_SCHEMAS[action]
    problems: list[str] = []
    moved = msg.get("DataRefField") if "DataRef" in msg else None
    for field, expected in schema.items():
        if field not in msg:
            if field != moved:
                problems.append(f"missing field {field!r}")
            continue
        problem = _type_problem(field, msg[field], expected)
        if problem:
            problems.append(problem)
    for field, value in msg.items():
        if field not in schema and field in OPTIONAL_FIELDS:
            problem = _type_problem(field, value, OPTIONAL_FIELDS[field])
            if problem:
                problems.append(problem)
    if "Timestamp" in msg and isinstance(msg["Timestamp"], str):
        try:
            parse_go_time(msg["Timestamp"])
        except ValueError as exc:
            problems.append(str(exc))
    return problems


# --------------------------------------------------------------------------- encoding


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
