"""The mutating commands and the mutation log: merge, split, split-coarse, nextlabel,
maxlabel, undo, redo, log, apply, reindex."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli.output import emit, progress_bar
from app.model.errors import SegmendError
from app.model.events.settings import load_settings

if TYPE_CHECKING:
    from app.model.dataset import Dataset


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this module's commands to the ``segmend`` parser."""

    def mutating(
        name: str, help_text: str, func: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("file", help="the dataset (a segmend pyramid)")
        p.add_argument("--kafka", metavar="HOST:PORT", help="also send the events to this broker")
        p.add_argument("--topic-prefix", metavar="P", help="Kafka topic prefix")
        p.add_argument("--user", help="user name recorded in the mutation and its events")
        p.add_argument("--json", action="store_true", help="(results are always JSON)")
        p.set_defaults(func=func)
        return p

    p = mutating("merge", "merge labels into a target", cmd_merge)
    p.add_argument("target", type=int)
    p.add_argument("labels", type=int, nargs="+", metavar="LABEL")

    p = mutating("split", "split the voxels of a target inside RLEs into a new label", cmd_split)
    p.add_argument("target", type=int)
    p.add_argument(
        "--rles", required=True, type=Path, metavar="RLEFILE", help="DVID binary RLEs (with header)"
    )
    p.add_argument("--new-label", type=int, metavar="N")

    p = mutating("split-coarse", "split a target's voxels in whole s0 blocks", cmd_split_coarse)
    p.add_argument("target", type=int)
    p.add_argument("--block", required=True, action="append", type=_block, metavar="Z,Y,X")
    p.add_argument("--new-label", type=int, metavar="N")

    p = mutating("nextlabel", "reserve N unused labels", cmd_nextlabel)
    p.add_argument("n", type=int, nargs="?", default=1)

    p = mutating("maxlabel", "read, or raise, the max label", cmd_maxlabel)
    p.add_argument("value", type=int, nargs="?")

    mutating("undo", "undo the last mutation", cmd_undo)
    mutating("redo", "redo the last undone mutation", cmd_redo)

    p = mutating("apply", "apply mutations given as JSON lines", cmd_apply)
    p.add_argument("ops", help="OPS.jsonl, or - for standard input")

    p = sub.add_parser("log", help="the mutation log, one JSON object per line")
    p.add_argument("file")
    p.add_argument("--since", type=int, default=0, metavar="MUTID")
    p.set_defaults(func=cmd_log)

    p = sub.add_parser("reindex", help="rebuild the label index")
    p.add_argument("file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_reindex)


def _block(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"a block is Z,Y,X, got {text!r}")
    try:
        return (int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a block is three integers Z,Y,X, got {text!r}") from None


@contextmanager
def _writable(args: argparse.Namespace) -> Iterator[Dataset]:
    from app.model.dataset import open_dataset

    kafka = load_settings(
        bootstrap_servers=getattr(args, "kafka", None),
        topic_prefix=getattr(args, "topic_prefix", None),
    )
    with progress_bar("index", unit="block") as tick:
        ds = open_dataset(
            args.file, "r+", user=getattr(args, "user", None), progress=tick, kafka=kafka
        )
    try:
        yield ds
    finally:
        ds.close()


def cmd_merge(args: argparse.Namespace) -> int:
    """``segmend merge FILE TARGET LABEL...`` prints ``{"MutationID": n}``."""
    with _writable(args) as ds:
        emit(args, {"MutationID": ds.merge(args.target, args.labels)})
    return 0


def cmd_split(args: argparse.Namespace) -> int:
    """``segmend split FILE TARGET --rles RLEFILE`` prints ``{"label": n, "MutationID": m}``."""
    try:
        data = args.rles.read_bytes()
    except OSError as exc:
        raise SegmendError(f"cannot read RLE file {args.rles}: {exc.strerror}") from exc
    with _writable(args) as ds:
        result = ds.split(args.target, data, new_label=args.new_label)
        emit(args, {"label": result.label, "MutationID": result.mutation_id})
    return 0


def cmd_split_coarse(args: argparse.Namespace) -> int:
    """``segmend split-coarse FILE TARGET --block Z,Y,X ...``."""
    with _writable(args) as ds:
        result = ds.split_coarse(args.target, args.block, new_label=args.new_label)
        emit(args, {"label": result.label, "MutationID": result.mutation_id})
    return 0


def cmd_nextlabel(args: argparse.Namespace) -> int:
    """``segmend nextlabel FILE [N]`` prints ``{"start": a, "end": b}``."""
    with _writable(args) as ds:
        start, end = ds.next_label(args.n)
        emit(args, {"start": start, "end": end})
    return 0


def cmd_maxlabel(args: argparse.Namespace) -> int:
    """``segmend maxlabel FILE [VALUE]``: read, or raise, the max label."""
    from app.model.dataset import open_dataset

    if args.value is None:
        with open_dataset(args.file, "r") as ds:
            emit(args, {"maxlabel": ds.max_label})
        return 0
    with _writable(args) as ds:
        mid = ds.set_max_label(args.value)
        emit(args, {"maxlabel": ds.max_label, "MutationID": mid})
    return 0


def cmd_undo(args: argparse.Namespace) -> int:
    """``segmend undo FILE``."""
    with _writable(args) as ds:
        emit(args, {"MutationID": ds.undo()})
    return 0


def cmd_redo(args: argparse.Namespace) -> int:
    """``segmend redo FILE``."""
    with _writable(args) as ds:
        emit(args, {"MutationID": ds.redo()})
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    """``segmend apply FILE OPS.jsonl|-``: stops at the first failing line."""
    from app.model.journal.replay import apply_lines

    if args.ops == "-":
        lines = sys.stdin.read().splitlines()
    else:
        try:
            lines = Path(args.ops).read_text().splitlines()
        except OSError as exc:
            raise SegmendError(f"cannot read {args.ops}: {exc.strerror}") from exc
    with _writable(args) as ds:
        for result in apply_lines(ds, lines):
            print(json.dumps(result))
    return 0


def cmd_log(args: argparse.Namespace) -> int:
    """``segmend log FILE [--since MUTID]``: one JSON object per line."""
    from app.model.dataset import open_dataset
    from app.model.journal.replay import log_lines

    with open_dataset(args.file, "r") as ds:
        for line in log_lines(ds, args.since):
            print(json.dumps(line))
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    """``segmend reindex FILE``: rebuild the label index."""
    with _writable(args) as ds, progress_bar("reindex", unit="block") as tick:
        count = ds.reindex(tick)
    result: dict[str, Any] = {"labels": count}
    emit(args, result, lambda r: f"label index rebuilt: {r['labels']} labels")
    return 0
