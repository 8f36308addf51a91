"""The JSON messages segmend publishes, in DVID's Kafka mutation-log format.

One builder per action.  Each returns a ``dict`` holding exactly the fields of
DVID's message reference (``Action``, ``UUID``, ``MutationID``, ``Timestamp``
and the action's own), with DVID's names and JSON types — ``uint64`` as a JSON
integer, ``[]uint64`` as a list of integers, strings as strings — followed by
the extras DVID itself later added (issues #267 and #333): ``-complete``
messages repeat the fields of their start message and carry the sizes of the
bodies involved, and every message may carry ``User`` and ``App``.

:func:`encode_message` (from :mod:`~app.model.events.encoding`) turns a
message into the bytes of a Kafka value; the documented formats and their
check are in :mod:`~app.model.events.dvid_schemas`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from app.model.events.encoding import encode_message
from app.model.events.message_fields import (
    DEFAULT_APP,
    Message,
    Timestamp,
    UInt,
    add_common,
    add_extras,
    as_blob_ref,
    as_sv_splits,
    as_text,
    as_timestamp,
    as_uint64,
    as_uint64_list,
)

__all__ = [
    "encode_message",
    "maxlabel",
    "merge_complete",
    "merge_start",
    "nextlabel",
    "split_complete",
    "split_start",
    "splitcoarse_complete",
    "splitcoarse_start",
]


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
        "Target": as_uint64("Target", target),
        "Labels": as_uint64_list("Labels", labels),
    }
    return add_common(
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
    add_common(msg, uuid=uuid, mutation_id=mutation_id, timestamp=timestamp, user=None, app=None)
    msg["Target"] = as_uint64("Target", target)
    msg["Labels"] = as_uint64_list("Labels", labels)
    msg["TargetSize"] = as_uint64("TargetSize", target_size)
    return add_extras(msg, user, app)


def _split_fields(
    action: str,
    target: UInt,
    new_label: UInt,
    split_ref: str,
    sv_splits: Mapping[Any, Any] | None,
) -> Message:
    msg: Message = {
        "Action": action,
        "Target": as_uint64("Target", target),
        "NewLabel": as_uint64("NewLabel", new_label),
        "Split": as_blob_ref("Split", split_ref),
    }
    if sv_splits is not None:
        msg["SVSplits"] = as_sv_splits(sv_splits)
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
    msg["MutationID"] = as_uint64("MutationID", mutation_id)
    msg["UUID"] = as_text("UUID", uuid)
    if sv_splits is not None:
        msg["SVSplits"] = as_sv_splits(sv_splits)
    msg["Timestamp"] = as_timestamp(timestamp)
    return add_extras(msg, user, app)


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
    return add_common(
        msg, uuid=uuid, mutation_id=mutation_id, timestamp=timestamp, user=user, app=app
    )


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
    add_common(msg, uuid=uuid, mutation_id=mutation_id, timestamp=timestamp, user=None, app=None)
    for name, value in start_fields.items():
        if name != "Action":
            msg[name] = value
    for name, size in sizes.items():
        msg[name] = as_uint64(name, size)
    return add_extras(msg, user, app)


def maxlabel(
    *,
    max_label: UInt,
    uuid: str,
    timestamp: Timestamp = None,
    user: str | None = None,
    app: str | None = DEFAULT_APP,
) -> Message:
    """The ``post-maxlabel`` message: ``Action, MaxLabel, UUID, Timestamp``."""
    msg: Message = {"Action": "post-maxlabel", "MaxLabel": as_uint64("MaxLabel", max_label)}
    return add_common(
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
    first, last = as_uint64("Start Label", start), as_uint64("End Label", end)
    if last < first:
        raise ValueError(f"End Label {last} is below Start Label {first}")
    msg: Message = {"Action": "post-nextlabel", "Start Label": first, "End Label": last}
    return add_common(
        msg,
        uuid=uuid,
        mutation_id=None,
        timestamp=timestamp,
        user=user,
        app=app,
        order=("UUID", "Timestamp"),
    )
