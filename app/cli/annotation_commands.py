"""``segmend annotations FILE NAME ...``: an annotation set (synapses, bookmarks)
in DVID's shapes: post, get, tag, delete, move, export; ``segmend body``: a
body's annotation (status, name...); ``segmend protect``: the statuses that
refuse merges and splits."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.cli.edit_commands import add_editing_options, writable
from app.cli.output import bounded_int, emit
from app.model.annotations.body_fields import FIELDS

_LABEL = bounded_int(1, (1 << 64) - 1)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``annotations``, ``body`` and ``protect`` to the ``segmend`` parser."""
    p = sub.add_parser(
        "annotations",
        help="an annotation set (synapses, bookmarks): post, get, tag, delete, move, export",
        description="Elements are DVID's JSON objects: {\"Pos\": [x, y, z], \"Kind\": "
                    "\"PreSyn\"|\"PostSyn\"|\"Gap\"|\"Note\"|\"Unknown\", \"Tags\": [...], "
                    "\"Prop\": {...}, \"Rels\": [{\"Rel\": ..., \"To\": [x, y, z]}]}.  Each "
                    "element carries the body at its position through every edit.",
    )
    p.add_argument("file", help="the dataset")
    p.add_argument("name", help="the annotation set (e.g. synapses, bookmarks)")
    add_editing_options(p)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True,
                               help="what to do with the set")

    a = actions.add_parser("post", help="add or replace elements (DVID POST /elements)")
    a.add_argument("elements", type=Path, help="a JSON list of elements ('-': standard input)")
    a.set_defaults(func=cmd_post, mutating=True)

    a = actions.add_parser("get", help="the elements on a body (DVID GET /label/<body>)")
    a.add_argument("body", type=_LABEL, help="the body")
    a.add_argument("--relationships", action="store_true", help="with their Rels")
    a.set_defaults(func=cmd_get)

    a = actions.add_parser("tag", help="the elements with a tag (DVID GET /tag/<tag>)")
    a.add_argument("tag", help="the tag")
    a.add_argument("--relationships", action="store_true", help="with their Rels")
    a.set_defaults(func=cmd_tag)

    a = actions.add_parser("delete", help="delete the element at X,Y,Z")
    a.add_argument("point", metavar="X,Y,Z", help="its position")
    a.set_defaults(func=cmd_delete, mutating=True)

    a = actions.add_parser("move", help="move the element at X,Y,Z to X2,Y2,Z2")
    a.add_argument("old", metavar="X,Y,Z", help="its position")
    a.add_argument("new", metavar="X2,Y2,Z2", help="its new position")
    a.set_defaults(func=cmd_move, mutating=True)

    a = actions.add_parser("export", help="every element, with relationships (a POST body)")
    a.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "body",
        help="a body's annotation (NeuTu's: status, name, class, comment, user): print it, "
             "or change it",
    )
    p.add_argument("file", help="the dataset")
    p.add_argument("body", type=_LABEL, help="the body")
    p.add_argument("--set", metavar="JSON", help="replace the annotation with this JSON object")
    for field in FIELDS:
        p.add_argument(f"--{field}", metavar=field.upper(),
                       help=f"set its {field} ('' removes it)")
    p.add_argument("--delete", action="store_true", help="delete the annotation")
    add_editing_options(p)
    p.set_defaults(func=cmd_body)

    p = sub.add_parser(
        "protect",
        help="the body statuses that refuse merges and splits unless forced: print them, or "
             "set them",
    )
    p.add_argument("file", help="the dataset")
    p.add_argument("statuses", nargs="*", metavar="STATUS", help="the protected statuses")
    p.add_argument("--none", action="store_true", help="protect no status")
    add_editing_options(p)
    p.set_defaults(func=cmd_protect)


def cmd_post(args: argparse.Namespace) -> int:
    """``post ELEMENTS.json``: prints ``{"posted": n}`` once durable."""
    data = sys.stdin.buffer.read() if str(args.elements) == "-" else _read(args.elements)
    with writable(args) as ds:
        posted = ds.annotations.post(args.name, data)
    emit(args, {"posted": posted})
    return 0


def _read(path: Path) -> bytes:
    from app.model.errors import SegmendError

    try:
        return path.read_bytes()
    except OSError as exc:
        raise SegmendError(f"cannot read {path}: {exc.strerror}") from None


def _read_set(args: argparse.Namespace, read: Callable[[Any], object]) -> int:
    """Print, as JSON, what ``read(ds.annotations)`` returns from the dataset
    opened read-only."""
    from app.model.dataset import open_dataset

    with open_dataset(args.file, "r") as ds:
        found = read(ds.annotations)
    emit(args, found)
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    """``get BODY [--relationships]``: a JSON list."""
    return _read_set(args, lambda a: a.body(args.name, args.body,
                                            relationships=args.relationships))


def cmd_tag(args: argparse.Namespace) -> int:
    """``tag TAG [--relationships]``: a JSON list."""
    return _read_set(args, lambda a: a.tag(args.name, args.tag,
                                           relationships=args.relationships))


def cmd_export(args: argparse.Namespace) -> int:
    """``export``: every element as a JSON list (what ``post`` takes)."""
    return _read_set(args, lambda a: a.export(args.name))


def cmd_delete(args: argparse.Namespace) -> int:
    """``delete X,Y,Z``: prints ``{"deleted": [x, y, z]}`` once durable."""
    from app.model.annotations.elements import parse_point

    with writable(args) as ds:
        point = parse_point(args.point, ds.shape)
        ds.annotations.delete(args.name, point)
    emit(args, {"deleted": list(point)})
    return 0


def cmd_move(args: argparse.Namespace) -> int:
    """``move X,Y,Z X2,Y2,Z2``: prints ``{"moved": [x, y, z], "to": [x2, y2, z2]}``."""
    from app.model.annotations.elements import parse_point

    with writable(args) as ds:
        old, new = parse_point(args.old, ds.shape), parse_point(args.new, ds.shape)
        ds.annotations.move(args.name, old, new)
    emit(args, {"moved": list(old), "to": list(new)})
    return 0


def cmd_body(args: argparse.Namespace) -> int:
    """``segmend body FILE BODY [--set JSON | --status S ... | --delete]``: prints
    the annotation (``null``: none) once durable."""
    from app.model.dataset import open_dataset
    from app.model.errors import SegmendError

    fields = {f: getattr(args, f) for f in FIELDS if getattr(args, f) is not None}
    if sum((args.set is not None, bool(fields), args.delete)) > 1:
        raise SegmendError("give --set, the field options or --delete, not several")
    value = None
    if args.set is not None:
        try:
            value = json.loads(args.set)
        except ValueError as exc:
            raise SegmendError(f"--set is not JSON: {exc}") from None
    if value is None and not fields and not args.delete:
        with open_dataset(args.file, "r") as ds:
            emit(args, ds.body_annotations.get(args.body))
        return 0
    with writable(args) as ds:
        if args.delete:
            ds.body_annotations.delete(args.body)
            result = None
        elif value is not None:
            result = ds.body_annotations.set(args.body, value)
        else:
            result = ds.body_annotations.update(args.body, **fields)
    emit(args, result)
    return 0


def cmd_protect(args: argparse.Namespace) -> int:
    """``segmend protect FILE [STATUS... | --none]``: prints the protected statuses."""
    from app.model.dataset import open_dataset
    from app.model.errors import SegmendError

    if args.none and args.statuses:
        raise SegmendError("give statuses or --none, not both")
    if not args.none and not args.statuses:
        with open_dataset(args.file, "r") as ds:
            emit(args, list(ds.body_annotations.protected_statuses()))
        return 0
    with writable(args) as ds:
        emit(args, list(ds.body_annotations.set_protected_statuses(args.statuses)))
    return 0
