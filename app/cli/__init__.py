"""The ``segmend`` command line.

Every command exits 0 on success, and non-zero with a one-line error on
standard error on failure, having changed nothing — but for status 3
(:data:`CHECKPOINT_FAILED`): the edits were made and are durable (their
results are printed), and the HDF5 file will take them later.  ``--json`` prints
machine-readable results.  The desktop app is not imported here: the program
(:mod:`app.launcher`) hands :func:`main` the function that runs it.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
from collections.abc import Sequence
from typing import NoReturn

from app import __version__
from app.cli import (
    annotation_commands,
    body_commands,
    edit_commands,
    events_commands,
    export_commands,
    labelmap_commands,
    pyramid_commands,
)
from app.cli.desktop import AppRunner
from app.cli.region_options import seed_arg  # (as `segmend split --seeds`)
from app.model.error_text import one_line
from app.model.errors import CheckpointError, SegmendError

COMMAND_MODULES = (
    pyramid_commands, body_commands, labelmap_commands, edit_commands, annotation_commands,
    events_commands, export_commands,
)
CHECKPOINT_FAILED = 3
"""Exit status of an edit that is durable (its result printed) but that the HDF5
file could not take yet (a full disk, a file another program holds): the
journal keeps it, and the file catches up at the next command on it."""
USAGE_ERROR = 2
"""The exit status of a command line that cannot be parsed (argparse's)."""


APP_HELP = """\
the desktop app:
  segmend [FILE] [--screenshot OUT.png] [--select LABEL [LABEL ...]]
          [--seeds X,Y,Z [X,Y,Z ...] --seeds X,Y,Z [X,Y,Z ...] ...]
                        open FILE (a pyramid) in the app (without FILE: an empty
                        window); --screenshot saves the window as OUT.png and
                        exits once it is drawn; with it, --select selects these
                        bodies (labels) first and shows only them, and --seeds
                        (one per seed group, s0 voxels x,y,z, as 'segmend split
                        --seeds' takes them) shows a seeded split of the one
                        selected body in progress: its seeds and its preview

'segmend COMMAND --help' describes each command.  Every command exits 0 on
success, non-zero with one line 'segmend: error: ...' on failure (3: the edits
are durable but the HDF5 file will take them later)."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, ``segmend: error: ...``
    (no usage block), exiting with status 2; its subcommands' parsers too."""

    def error(self, message: str) -> NoReturn:
        """Print the error on one line and exit with status 2."""
        command = self.prog.partition(" ")[2]
        where = f"{command}: " if command else ""
        self.exit(USAGE_ERROR, f"segmend: error: {where}{one_line(message)}\n")


def make_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = OneLineParser(
        prog="segmend",
        usage="segmend [-h] [--version] COMMAND ...\n"
              "       segmend [FILE] [--screenshot OUT.png] [--select LABEL [LABEL ...]]\n"
              "               [--seeds X,Y,Z [X,Y,Z ...] ...]",
        description="Proofread large 3D segmentations stored as HDF5 label pyramids.",
        epilog=APP_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"segmend {__version__}")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", prog="segmend",
        help="'segmend COMMAND --help' describes each",
    )
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None, *, run_app: AppRunner | None = None) -> int:
    """Run the command line; returns the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).
    run_app : AppRunner, optional
        Runs the desktop app (``segmend [FILE]``, ``segmend demo``); without
        it the app is not available and ``demo`` runs headless.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = make_parser()
    if not args_list or not _is_command(parser, args_list[0]):
        return _open_app(args_list, run_app)
    args = parser.parse_args(args_list)
    args.run_app = run_app
    try:
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe fails here, not at exit
        return status
    except KeyboardInterrupt:
        print("segmend: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError as exc:
        if not _stdout_closed():
            return _report(exc)
        _silence_stdout()
        if getattr(args, "mutating", False):  # stopped before its end: say so
            return _report(
                SegmendError(
                    "standard output closed: the command stopped there; the edits made "
                    "are durable ('segmend log' lists them)"
                )
            )
        return 0
    except CheckpointError as exc:  # the edits are durable: their results were printed
        return _report(exc, CHECKPOINT_FAILED)
    except (SegmendError, ValueError, OSError, KeyError, IndexError) as exc:
        return _report(exc)


def _report(exc: BaseException, status: int = 1) -> int:
    print(f"segmend: error: {one_line(exc)}", file=sys.stderr)
    return status


def _stdout_closed() -> bool:
    """Whether the reader of standard output has gone (``segmend info F | head -1``)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _fd, events in poller.poll(0))
    except (OSError, ValueError):  # no file descriptor (captured output)
        return False


def _silence_stdout() -> None:
    """Point standard output at /dev/null: what is left unwritten there (and
    Python's flush at exit) goes nowhere, with no "Broken pipe" message."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _is_command(parser: argparse.ArgumentParser, word: str) -> bool:
    if word.startswith("-") and word not in ("-h", "--help", "--version"):
        return False
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return word in ("-h", "--help", "--version") or any(word in a.choices for a in actions)


def _open_app(argv: list[str], run_app: AppRunner | None) -> int:
    """``segmend [FILE] [--screenshot OUT.png] [--select ID ...] [--seeds X,Y,Z ...]``:
    the desktop app."""
    app_parser = OneLineParser(prog="segmend", description="Open the segmend app.")
    app_parser.add_argument("file", nargs="?", help="a pyramid file to open")
    app_parser.add_argument("--screenshot", metavar="OUT.png", help="save a screenshot and exit")
    app_parser.add_argument(
        "--select", type=int, nargs="+", default=[], metavar="LABEL",
        help="select these bodies (labels) first",
    )
    app_parser.add_argument(
        "--seeds", action="append", nargs="+", type=seed_arg, default=[], metavar="X,Y,Z",
        help="with --screenshot and one --select body: a seed group (s0 voxels x,y,z); give "
             "--seeds once per group, at least twice: the screenshot shows the seeded split's "
             "preview",
    )
    args = app_parser.parse_args(argv)
    if args.seeds:
        _check_app_seeds(app_parser, args)
    if run_app is None:
        print(
            "segmend: error: the desktop app is not available; "
            "use 'segmend demo --no-gui' or 'segmend --help'",
            file=sys.stderr,
        )
        return 1
    return run_app(args.file, screenshot=args.screenshot, select=args.select, seeds=args.seeds)


def _check_app_seeds(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``--seeds`` goes with ``--screenshot``, one ``--select`` body and two groups or more
    (a usage error, status 2, otherwise)."""
    if args.screenshot is None:
        parser.error("--seeds shows a seeded split in a screenshot: give --screenshot OUT.png")
    if len(args.select) != 1:
        parser.error(f"--seeds splits one body: give it as --select LABEL "
                     f"(got {len(args.select)} labels)")
    if len(args.seeds) < 2:
        parser.error("give --seeds at least twice: one seed group per part")
