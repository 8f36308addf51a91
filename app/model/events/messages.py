"""The JSON messages segmend publishes, as DVID's Go code builds them.

One builder per start action.  Each returns a ``dict`` holding the fields
DVID's ``datatype/labelmap/mutate.go`` puts in its message map (``Action``,
``UUID`` — the version node's —, ``MutationID``, ``Timestamp`` and the
action's own), with their JSON types — ``uint64`` as a JSON integer,
``[]uint64`` as a list of integers — and ``User`` and ``App`` when known (DVID
adds them only when set; never to ``post-maxlabel`` or ``post-nextlabel``).
:func:`complete` makes the ``-complete`` message as DVID does: the same map,
its ``Action`` suffixed and its ``Timestamp`` the completion time.

:func:`~app.model.events.encoding.encode_message` turns a message into the
bytes of a Kafka value; the documented formats and their check are in
:mod:`~app.model.events.dvid_schemas`.
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
    as_blob_ref,
    as_sv_splits,
    as_timestamp,
    as_uint64,
    as_uint64_list,
)

__all__ = [
    "cleave_start",
    "complete",
    "encode_message",
    "maxlabel",
    "merge_start",
    "nextlabel",
    "split_start",
    "split_supervoxel_start",
    "splitcoarse_start",
    "undo_split_start",
    "undo_split_supervoxel_start",
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
        ``Action, Target, Labels, MutationID, UUID, Timestamp`` (+ ``User``, ``App``).

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
    )


def cleave_start(
    *,
    orig: UInt,
    cleaved: UInt,
    supervoxels: Iterable[UInt],
    uuid: str,
    mutation_id: UInt,
    timestamp: Timestamp = None,
    user: str | None = None,
    app: str | None = DEFAULT_APP,
) -> Message:
    """The ``cleave`` message: ``supervoxels`` of body ``orig`` became body ``cleaved``.

    Returns
    -------
    dict
        ``Action, OrigLabel, CleavedLabel, CleavedSupervoxels, MutationID, UUID,
        Timestamp`` (+ ``User``, ``App``); DVID's ``cleave-complete`` adds
        ``CleavedSize`` and ``RemainSize`` (:func:`complete` with ``extra``).
    """
    msg: Message = {
        "Action": "cleave",
        "OrigLabel": as_uint64("OrigLabel", orig),
        "CleavedLabel": as_uint64("CleavedLabel", cleaved),
        "CleavedSupervoxels": as_uint64_list("CleavedSupervoxels", supervoxels),
    }
    return add_common(
        msg, uuid=uuid, mutation_id=mutation_id, timestamp=timestamp, user=user, app=app
    )


def _supervoxel_split_fields(
    action: str, supervoxel: UInt, body: UInt, split: UInt, remain: UInt
) -> Message:
    return {
        "Action": action,
        "Supervoxel": as_uint64("Supervoxel", supervoxel),
        "Body": as_uint64("Body", body),
        "SplitSupervoxel": as_uint64("SplitSupervoxel", split),
        "RemainSupervoxel": as_uint64("RemainSupervoxel", remain),
    }


def split_supervoxel_start(
    *,
    supervoxel: UInt,
    body: UInt,
    split: UInt,
    remain: UInt,
    split_ref: str,
    uuid: str,
    mutation_id: UInt,
    timestamp: Timestamp = None,
    user: str | None = None,
    app: str | None = DEFAULT_APP,
) -> Message:
    """The ``split-supervoxel`` message: ``supervoxel`` (of ``body``) became
    ``split`` (its voxels in the region ``split_ref``) and ``remain``.

    Returns
    -------
    dict
        ``Action, Supervoxel, Body, SplitSupervoxel, RemainSupervoxel, Split,
        MutationID, UUID, Timestamp`` (+ ``User``, ``App``); DVID's
        ``split-supervoxel-complete`` adds ``SplitSize`` and ``RemainSize``.
    """
    msg = _supervoxel_split_fields("split-supervoxel", supervoxel, body, split, remain)
    msg["Split"] = as_blob_ref("Split", split_ref)
    return add_common(
        msg, uuid=uuid, mutation_id=mutation_id, timestamp=timestamp, user=user, app=app
    )


def undo_split_supervoxel_start(
    *,
    supervoxel: UInt,
    body: UInt,
    split: UInt,
    remain: UInt,
    uuid: str,
    mutation_id: UInt,
    timestamp: Timestamp = None,
    user: str | None = None,
    app: str | None = DEFAULT_APP,
) -> Message:
    """segmend's ``undo-split-supervoxel`` message (DVID has no inverse of a
    supervoxel split): ``split`` and ``remain`` are ``supervoxel`` again, of
    ``body``; both are retired.

    Returns
    -------
    dict
        ``Action, Supervoxel, Body, SplitSupervoxel, RemainSupervoxel,
        MutationID, UUID, Timestamp`` (+ ``User``, ``App``).
    """
    msg = _supervoxel_split_fields("undo-split-supervoxel", supervoxel, body, split, remain)
    return add_common(
        msg, uuid=uuid, mutation_id=mutation_id, timestamp=timestamp, user=user, app=app
    )


def undo_split_start(
    *,
    target: UInt,
    new_label: UInt,
    sv_splits: Mapping[Any, Any],
    uuid: str,
    mutation_id: UInt,
    timestamp: Timestamp = None,
    user: str | None = None,
    app: str | None = DEFAULT_APP,
) -> Message:
    """segmend's ``undo-split`` message (DVID has no inverse of a labelmap split):
    every supervoxel of ``new_label`` is ``target``'s again; each ``sv_splits``
    entry's Split and Remain are retired, its supervoxel restored in ``target``.

    Returns
    -------
    dict
        ``Action, Target, NewLabel, SVSplits, MutationID, UUID, Timestamp``
        (+ ``User``, ``App``).
    """
    msg: Message = {
        "Action": "undo-split",
        "Target": as_uint64("Target", target),
        "NewLabel": as_uint64("NewLabel", new_label),
        "SVSplits": as_sv_splits(sv_splits),
    }
    return add_common(
        msg, uuid=uuid, mutation_id=mutation_id, timestamp=timestamp, user=user, app=app
    )


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
        ``Action, Target, NewLabel, Split, [SVSplits], MutationID, UUID, Timestamp``
        (+ ``User``, ``App``).
    """
    msg = _split_fields("split", target, new_label, split_ref, sv_splits)
    return add_common(
        msg, uuid=uuid, mutation_id=mutation_id, timestamp=timestamp, user=user, app=app
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


def complete(
    start: Message, timestamp: Timestamp, extra: Mapping[str, Any] | None = None
) -> Message:
    """The ``-complete`` message of a start message, as DVID sends it: the same
    fields, ``Action`` suffixed with ``-complete``, ``Timestamp`` then (the
    completion time), and the ``extra`` fields DVID adds to some (a cleave's sizes)."""
    return {
        **start,
        "Action": f"{start['Action']}-complete",
        "Timestamp": as_timestamp(timestamp),
        **(extra or {}),
    }


def maxlabel(*, max_label: UInt, uuid: str, timestamp: Timestamp = None) -> Message:
    """The ``post-maxlabel`` message: ``Action, MaxLabel, UUID, Timestamp`` (as
    DVID, no ``User`` or ``App``)."""
    msg: Message = {"Action": "post-maxlabel", "MaxLabel": as_uint64("MaxLabel", max_label)}
    return add_common(
        msg,
        uuid=uuid,
        mutation_id=None,
        timestamp=timestamp,
        user=None,
        app=None,
        order=("UUID", "Timestamp"),
    )


def nextlabel(*, start: UInt, end: UInt, uuid: str, timestamp: Timestamp = None) -> Message:
    """The ``post-nextlabel`` message for the reserved labels ``start..end`` (inclusive).

    Fields: ``Action, "Start Label", "End Label", UUID, Timestamp`` (DVID's
    names, with spaces; as DVID, no ``User`` or ``App``).

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
        user=None,
        app=None,
        order=("UUID", "Timestamp"),
    )
