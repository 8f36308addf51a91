"""The mutating commands and the mutation log: merge, cleave, split-supervoxel,
split, split-coarse, nextlabel, maxlabel, undo, redo, log, apply, reindex."""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from app.cli.cluster_options import add_cluster_options, cluster_of
from app.cli.output import SQLITE_MAX_INT, bounded_int, emit, progress_bar
from app.cli.region_options import add_region_options, check_region_args, region_spans
from app.model.errors import SegmendError
from app.model.events.settings import load_settings, load_user_config

if TYPE_CHECKING:
    from app.model.dataset import Dataset

NEW_LABEL_HELP = "give the new body this unused label instead of the next free one"

EVENTS_WAIT = 0.15
"""Seconds an edit command gives the broker to take its events once its edits
are done (the last checkpoint runs meanwhile); past that, or at the broker's
first failure, they wait in the outbox."""


def add_editing_options(p: argparse.ArgumentParser) -> None:
    """``--kafka``, ``--topic-prefix`` and ``--user``: the options of every
    command that writes a dataset (:func:`writable` reads them)."""
    p.add_argument("--kafka", metavar="HOST:PORT", help="also send the events to this broker")
    p.add_argument("--topic-prefix", metavar="P", help="Kafka topic prefix")
    p.add_argument(
        "--user",
        help="user name recorded in the mutation and its events (default: [user] name in "
             "the config file, else the login name)",
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this module's commands to the ``segmend`` parser."""

    def mutating(
        name: str, help_text: str, func: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("file", help="the dataset (a segmend pyramid)")
        add_editing_options(p)
        p.add_argument(
            "--json", action="store_true",
            help="accepted for symmetry: edits always print their results as JSON lines",
        )
        p.set_defaults(func=func, mutating=True)
        return p

    p = mutating("merge", "merge labels into a target", cmd_merge)
    p.add_argument("target", type=int, help="the body that remains (a label)")
    p.add_argument(
        "labels", type=int, nargs="+", metavar="LABEL", help="the bodies merged into TARGET"
    )

    p = mutating(
        "cleave", "supervoxels of a body become a new body (labelmap mode)", cmd_cleave
    )
    p.add_argument("body", type=int, help="the body to cleave")
    p.add_argument(
        "svs", type=int, nargs="+", metavar="SV",
        help="its supervoxels that become the new body (not all of them)",
    )
    p.add_argument("--cleaved-label", type=int, metavar="N", help=NEW_LABEL_HELP)

    p = mutating(
        "split-supervoxel",
        "the voxels of a supervoxel inside a region become a new supervoxel, the others "
        "another, both in its body (labelmap mode)",
        cmd_split_supervoxel,
    )
    p.add_argument("supervoxel", type=int, help="the supervoxel to split")
    add_region_options(p, rles=True)
    p.add_argument("--split", type=int, metavar="N",
                   help="the id of the part inside the region (default: the next free one)")
    p.add_argument("--remain", type=int, metavar="M",
                   help="the id of the rest (default: the next free one)")

    p = mutating(
        "split",
        "the voxels of a body inside a region (RLEs, a box or a mask) become a new body; "
        "or seed groups divide it",
        cmd_split,
    )
    p.add_argument("target", type=int, help="the body to split (a label)")
    add_region_options(p, rles=True, seeds=True)
    p.add_argument("--new-label", type=int, metavar="N",
                   help=NEW_LABEL_HELP + " (with --seeds: two seed groups only)")

    p = mutating("split-coarse", "split a target's voxels in whole s0 blocks", cmd_split_coarse)
    p.add_argument("target", type=int, help="the body to split (a label)")
    p.add_argument(
        "--block", required=True, action="append", type=_block, metavar="Z,Y,X",
        help="an s0 block, as block coordinates (voxel // block size), not voxels; "
             "repeat for more blocks",
    )
    p.add_argument("--new-label", type=int, metavar="N", help=NEW_LABEL_HELP)

    for name in ("merge", "cleave", "split-supervoxel", "split", "split-coarse"):
        sub.choices[name].add_argument(
            "--force", action="store_true",
            help="edit even a body whose status is protected (segmend body, segmend protect)",
        )

    p = mutating("nextlabel", "reserve N unused labels", cmd_nextlabel)
    p.add_argument("n", type=int, nargs="?", default=1, help="how many labels (default 1)")

    p = mutating("maxlabel", "read, or raise, the max label", cmd_maxlabel)
    p.add_argument(
        "value", type=int, nargs="?",
        help="raise the max label to VALUE (without it: print the max label, changing nothing)",
    )

    mutating("undo", "undo the last mutation", cmd_undo)
    mutating("redo", "redo the last undone mutation", cmd_redo)

    p = mutating("apply", "apply mutations given as JSON lines", cmd_apply)
    p.add_argument(
        "ops", help="OPS.jsonl (lines as 'segmend log' prints them), or - for standard input"
    )

    p = sub.add_parser("log", help="the mutation log, one JSON object per line")
    p.add_argument("file", help="the dataset (a segmend pyramid; read only)")
    p.add_argument(
        "--since", type=bounded_int(0, SQLITE_MAX_INT), default=0, metavar="MUTID",
        help="only the mutations after MUTID (default 0: all)",
    )
    p.add_argument(
        "--format",
        choices=("segmend", "dvid"),
        default="segmend",
        help="segmend: replayable lines for 'segmend apply' (default); dvid: the records "
        "DVID's mutation log (GET /mutations) would hold",
    )
    p.set_defaults(func=cmd_log)

    p = sub.add_parser("reindex", help="rebuild the label index")
    p.add_argument("file", help="the dataset (a segmend pyramid)")
    add_cluster_options(p)
    p.add_argument(
        "--json", action="store_true", help='print {"labels": N} as JSON instead of a sentence'
    )
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
def writable(args: argparse.Namespace) -> Iterator[Dataset]:
    """The dataset open for writing, closed after the command.  If the command
    fails, a sidecar folder that opening made is removed again (when it holds
    no mutation): a refused command leaves nothing beside the file."""
    from app.model.dataset import open_dataset
    from app.model.journal.sidecar import sidecar_dir

    kafka = load_settings(
        bootstrap_servers=getattr(args, "kafka", None),
        topic_prefix=getattr(args, "topic_prefix", None),
    )
    config = load_user_config()  # (the settings dialog's user name and worker count)
    made_folder = not sidecar_dir(args.file).exists()
    try:
        with progress_bar("index", unit="block") as tick:
            ds = open_dataset(
                args.file, "r+", user=getattr(args, "user", None) or config.user or None,
                workers=config.workers or None, progress=tick, kafka=kafka,
            )
        try:
            yield ds
        except BaseException:
            with suppress(SegmendError):  # the command's own error is the one to report
                ds.close(EVENTS_WAIT)  # (and its only line on stderr)
            raise
        ds.close(EVENTS_WAIT)
        _say_events_wait(ds)
    except BaseException:
        if made_folder:
            _remove_unused_sidecar(Path(args.file))
        raise


def _say_events_wait(ds: Dataset) -> None:
    """Say on stderr how many events the closed dataset left for the broker, if any."""
    n = ds.events_waiting
    if n:
        events = "event waits" if n == 1 else "events wait"
        print(f"segmend: {n} {events} in the outbox ('segmend events flush' sends them later)",
              file=sys.stderr)


def _remove_unused_sidecar(path: Path) -> None:
    """Remove the sidecar folder of ``path`` unless its journal holds a mutation
    or another process writes the dataset (checked under the writer lock)."""
    from app.model.journal.file_locks import take_writer_lock
    from app.model.journal.journal import Journal
    from app.model.journal.sidecar import journal_path, sidecar_dir

    folder = sidecar_dir(path)
    if not folder.is_dir():
        return
    # Best effort, called while the command's own error propagates: any failure
    # here (a lock taken meanwhile, a journal it cannot read) keeps the folder
    # and must not hide that error.
    try:
        lock = take_writer_lock(path)
    except Exception:
        return
    try:
        if journal_path(path).exists():
            journal = Journal(journal_path(path), readonly=True)
            try:
                if journal.mutation_count():
                    return
            finally:
                journal.close()
        shutil.rmtree(folder, ignore_errors=True)
    except Exception:
        return
    finally:
        lock.release()


def cmd_merge(args: argparse.Namespace) -> int:
    """``segmend merge FILE TARGET LABEL...`` prints ``{"MutationID": n}``."""
    with writable(args) as ds:
        emit(args, {"MutationID": ds.merge(args.target, args.labels, force=args.force)})
    return 0


def cmd_cleave(args: argparse.Namespace) -> int:
    """``segmend cleave FILE BODY SV... [--cleaved-label N]`` prints
    ``{"CleavedLabel": n, "MutationID": m}``."""
    with writable(args) as ds:
        label, mutation_id = ds.cleave(args.body, args.svs, cleaved_label=args.cleaved_label,
                                       force=args.force)
        emit(args, {"CleavedLabel": label, "MutationID": mutation_id})
    return 0


def cmd_split_supervoxel(args: argparse.Namespace) -> int:
    """``segmend split-supervoxel FILE SV --rles F | --box … | --mask … [--split N
    --remain M]`` prints ``{"SplitSupervoxel": n, "RemainSupervoxel": m, "MutationID": k}``."""
    mask = check_region_args(args)
    data: Any = _read_rles(args)
    with writable(args) as ds:
        if data is None:
            data = region_spans(args, mask, ds.shape)
        split, remain, mutation_id = ds.split_supervoxel(
            args.supervoxel, data, split=args.split, remain=args.remain, force=args.force
        )
        emit(args, {"SplitSupervoxel": split, "RemainSupervoxel": remain,
                    "MutationID": mutation_id})
    return 0


def _read_rles(args: argparse.Namespace) -> bytes | None:
    """The bytes of ``--rles``, if given."""
    if args.rles is None:
        return None
    try:
        return bytes(args.rles.read_bytes())
    except OSError as exc:
        raise SegmendError(f"cannot read RLE file {args.rles}: {exc.strerror}") from exc


def cmd_split(args: argparse.Namespace) -> int:
    """``segmend split FILE TARGET --rles RLEFILE | --box Z0:Z1,Y0:Y1,X0:X1 |
    --mask M.npy [--offset Z,Y,X]`` prints ``{"label": n, "MutationID": m}``;
    with ``--seeds X,Y,Z ... --seeds X,Y,Z ...`` see :func:`cmd_seeded_split`."""
    if args.seeds is not None:
        return cmd_seeded_split(args)
    mask = check_region_args(args)
    data: Any = _read_rles(args)
    with writable(args) as ds:
        if data is None:
            data = region_spans(args, mask, ds.shape)
        result = ds.split(args.target, data, new_label=args.new_label, force=args.force)
        emit(args, {"label": result.label, "MutationID": result.mutation_id})
    return 0


def cmd_seeded_split(args: argparse.Namespace) -> int:
    """``segmend split FILE TARGET --seeds X,Y,Z ... --seeds X,Y,Z ...``: one
    split per seed group but the last (in labelmap mode: a cleave of whole
    supervoxels).  Prints ``{"label": n, "MutationID": m}``
    for two groups; for more, one JSON list of them, in group order."""
    check_region_args(args)
    if len(args.seeds) < 2:
        raise SegmendError("give --seeds at least twice: one seed group per part")
    if args.new_label is not None and len(args.seeds) != 2:
        raise SegmendError(
            f"--new-label names the first part of two seed groups, got {len(args.seeds)} groups"
        )
    from app.model.dataset import open_dataset
    from app.model.seeded_split import check_seeds

    with open_dataset(args.file, "r") as reader:  # (bad seeds leave no folder beside the file)
        check_seeds(reader, args.target, args.seeds)
    new_labels = None if args.new_label is None else [args.new_label]
    with writable(args) as ds:
        results = ds.split_by_seeds(args.target, args.seeds, new_labels=new_labels,
                                     force=args.force)
        made = [{"label": r.label, "MutationID": r.mutation_id} for r in results]
        emit(args, made[0] if len(made) == 1 else made)
    return 0


def cmd_split_coarse(args: argparse.Namespace) -> int:
    """``segmend split-coarse FILE TARGET --block Z,Y,X ...``."""
    with writable(args) as ds:
        result = ds.split_coarse(args.target, args.block, new_label=args.new_label,
                                 force=args.force)
        emit(args, {"label": result.label, "MutationID": result.mutation_id})
    return 0


def cmd_nextlabel(args: argparse.Namespace) -> int:
    """``segmend nextlabel FILE [N]`` prints ``{"start": a, "end": b}``."""
    with writable(args) as ds:
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
    with writable(args) as ds:
        mid = ds.set_max_label(args.value)
        emit(args, {"maxlabel": ds.max_label, "MutationID": mid})
    return 0


def cmd_undo(args: argparse.Namespace) -> int:
    """``segmend undo FILE``."""
    with writable(args) as ds:
        emit(args, {"MutationID": ds.undo()})
    return 0


def cmd_redo(args: argparse.Namespace) -> int:
    """``segmend redo FILE``."""
    with writable(args) as ds:
        emit(args, {"MutationID": ds.redo()})
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    """``segmend apply FILE OPS.jsonl|-``: prints each line's result (one JSON
    line) once it is durable, and stops at the first failing line.

    The lines are committed in groups (:meth:`~app.model.dataset.Dataset.batched`:
    one fsync per group; the first group is one line, each next one twice the
    last, up to :data:`APPLY_GROUP_LINES` lines or :data:`APPLY_GROUP_SECONDS`),
    and each group's results are printed when it is durable: after a crash,
    every printed line is applied, and a closed output stops it early.  Ctrl-C is
    honoured between lines: the line in flight completes (durable, every
    level written), the group's results are printed and the command exits 130.
    """
    from app.model.journal.replay import applied_lines

    if args.ops == "-":
        lines = sys.stdin.read().splitlines()
    else:
        try:
            lines = Path(args.ops).read_text().splitlines()
        except OSError as exc:
            raise SegmendError(f"cannot read {args.ops}: {exc.strerror}") from exc
    last = 0
    with _deferred_interrupts() as interrupted, writable(args) as ds:
        results = applied_lines(ds, lines)
        more, size = True, 1
        while more and not interrupted.is_set():
            group: list[tuple[int, str]] = []
            failure: Exception | None = None
            with ds.batched():  # (its end syncs: a sync that fails prints nothing)
                try:
                    more = _take_group(results, group, size, interrupted)
                except Exception as exc:  # (the lines before it are applied: print them)
                    failure = exc
            for _number, text in group:
                print(text)
            sys.stdout.flush()
            last = group[-1][0] if group else last
            size = min(2 * size, APPLY_GROUP_LINES)
            if failure is not None:
                raise failure
    if interrupted.is_set():
        where = f"after line {last}" if last else "before the first line"
        print(f"segmend: interrupted {where}", file=sys.stderr)
        return 130
    return 0


APPLY_GROUP_LINES = 512
"""Most lines ``segmend apply`` commits with one fsync."""
APPLY_GROUP_SECONDS = 0.25
"""Longest a group of ``segmend apply`` waits before its results are printed."""


def _take_group(
    results: Iterator[tuple[int, dict[str, Any]]],
    group: list[tuple[int, str]],
    size: int,
    interrupted: threading.Event,
) -> bool:
    """Apply lines into ``group`` (line number, result as JSON) until it holds
    ``size`` or is old enough, or Ctrl-C; returns whether lines may remain."""
    deadline = time.monotonic() + APPLY_GROUP_SECONDS
    while len(group) < size and time.monotonic() < deadline:
        if interrupted.is_set():
            return False
        step = next(results, None)
        if step is None:
            return False
        group.append((step[0], json.dumps(step[1])))
    return True


@contextmanager
def _deferred_interrupts() -> Iterator[threading.Event]:
    """Ctrl-C (SIGINT) only sets the event while inside: the caller stops between
    edits, never in the middle of one.  (Elsewhere than on the main thread,
    where Python delivers signals, the event is never set.)"""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return

    def note(_signum: int, _frame: FrameType | None) -> None:
        interrupted.set()

    previous = signal.signal(signal.SIGINT, note)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


def cmd_log(args: argparse.Namespace) -> int:
    """``segmend log FILE [--since MUTID] [--format segmend|dvid]``: one JSON
    object per line."""
    from app.model.dataset import open_dataset
    from app.model.journal.replay import dvid_log_lines, log_lines

    with open_dataset(args.file, "r") as ds:
        if args.format == "dvid":  # (the bytes sent to Kafka, whatever stdout's encoding)
            sys.stdout.flush()
            for record in dvid_log_lines(ds, args.since):
                sys.stdout.buffer.write(record + b"\n")
        else:
            for line in log_lines(ds, args.since):
                print(json.dumps(line))
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    """``segmend reindex FILE``: rebuild the label index."""
    cluster = cluster_of(args)
    unit = "block" if cluster is None else "task"
    with writable(args) as ds, progress_bar("reindex", unit=unit) as tick:
        count = ds.reindex(tick, cluster=cluster)
    result: dict[str, Any] = {"labels": count}
    emit(args, result, lambda r: f"label index rebuilt: {r['labels']} labels")
    return 0
