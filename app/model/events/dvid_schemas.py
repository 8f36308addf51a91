"""DVID's documented Kafka message formats, and a conformance check against them.

:data:`DVID_SCHEMAS` lists the documented fields of every labelmap,
labelarray and keyvalue action of DVID's message reference (and
:data:`ANNOTATION_SCHEMAS` those of the annotation deltas), with their JSON
types as Python types; :func:`schema_problems` lists every way a decoded
message departs from its schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.model.events.encoding import BULKY_FIELDS
from app.model.events.gotime import parse_go_time
from app.model.events.message_fields import UINT64_MAX

__all__ = [
    "ANNOTATION_SCHEMAS",
    "DVID_SCHEMAS",
    "OPTIONAL_FIELDS",
    "SVSPLITS_SCHEMA",
    "schema_problems",
]

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
_ANNOTATION_ACTIONS: tuple[str, ...] = (
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
    for action in _ANNOTATION_ACTIONS
}

#: Types of the fields DVID's code adds to the reference's (and segmend may send).
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
    "Body": int,
    "CleavedSize": int,
    "SplitSize": int,
    "RemainSize": int,
    "DataRef": str,
}

_UINT64_LIST_FIELDS = ("Labels", "CleavedSupervoxels")


def _type_problem(field: str, value: Any, expected: type) -> str | None:
    if expected is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{field} must be a JSON integer, got {type(value).__name__} {value!r}"
        if not 0 <= value <= UINT64_MAX:
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
        wrongly typed extra fields.  A message sent by ``DataRef`` lacks its
        bulky fields (:data:`~app.model.events.encoding.BULKY_FIELDS`): they
        are not missing.
    """
    if schema is None:
        action = msg.get("Action")
        if action not in DVID_SCHEMAS:
            return [f"unknown Action {action!r}"]
        with_sv = action == "split" and "SVSplits" in msg
        schema = SVSPLITS_SCHEMA if with_sv else DVID_SCHEMAS[action]
    problems: list[str] = []
    moved = BULKY_FIELDS if "DataRef" in msg else ()
    for field, expected in schema.items():
        if field not in msg:
            if field not in moved:
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
