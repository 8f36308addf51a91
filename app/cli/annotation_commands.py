"""``segmend annotations FILE NAME ...``: an annotation set (synapses, bookmarks)
in DVID's shapes: post, get, tag, delete, move, export."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli.edit_commands import writable
from app.cli.output import bounded_int, emit

_LABEL = bounded_int(1, (1 << 64) - 1)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``annotations`` to the ``segmend`` parser."""
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
    p.add_argument("--kafka", metavar="HOST:PORT", help="also send the events to this broker")
    p.add_argument("--topic-prefix", metavar="P", help="Kafka topic prefix")
    p.add_argument("--user", help="user name recorded in the events")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

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


def cmd_get(args: argparse.Namespace) -> int:
    """``get BODY [--relationships]``: a JSON list."""
    from app.model.dataset import open_dataset

    with open_dataset(args.file, "r") as ds:
        found = ds.annotations.body(args.name, args.body, relationships=args.relationships)
    emit(args, found)
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    """``tag TAG [--relationships]``: a JSON list."""
    from app.model.dataset import open_dataset

    with open_dataset(args.file, "r") as ds:
        found = ds.annotations.tag(args.name, args.tag, relationships=args.relationships)
    emit(args, found)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """``export``: every element as a JSON list (what ``post`` takes)."""
    from app.model.dataset import open_dataset

    with open_dataset(args.file, "r") as ds:
        found = ds.annotations.export(args.name)
    emit(args, found)
    return 0


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
