"""The ``segmend`` command line.

Every command exits 0 on success, and non-zero with a one-line error on
standard error on failure, having changed nothing.  ``--json`` prints
machine-readable results.  The desktop app is not imported here: the program
(:mod:`app.launcher`) hands :func:`main` the function that runs it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from app import __version__
from app.cli import edit_commands, events_commands, pyramid_commands
from app.cli.desktop import AppRunner
from app.model.error_text import one_line
from app.model.errors import SegmendError

COMMAND_MODULES = (pyramid_commands, edit_commands, events_commands)


def make_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="segmend",
        description="Proofread large 3D segmentations stored as HDF5 label pyramids.",
    )
    parser.add_argument("--version", action="version", version=f"segmend {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
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
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("segmend: interrupted", file=sys.stderr)
        return 130
    except (SegmendError, ValueError, OSError, KeyError, IndexError) as exc:
        print(f"segmend: error: {one_line(exc)}", file=sys.stderr)
        return 1


def _is_command(parser: argparse.ArgumentParser, word: str) -> bool:
    if word.startswith("-") and word not in ("-h", "--help", "--version"):
        return False
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return word in ("-h", "--help", "--version") or any(word in a.choices for a in actions)


def _open_app(argv: list[str], run_app: AppRunner | None) -> int:
    """``segmend [FILE] [--screenshot OUT.png] [--select ID ...]``: the desktop app."""
    app_parser = argparse.ArgumentParser(prog="segmend", description="Open the segmend app.")
    app_parser.add_argument("file", nargs="?", help="a pyramid file to open")
    app_parser.add_argument("--screenshot", metavar="OUT.png", help="save a screenshot and exit")
    app_parser.add_argument("--select", type=int, nargs="+", default=[], metavar="ID")
    args = app_parser.parse_args(argv)
    if run_app is None:
        print(
            "segmend: error: the desktop app is not available; "
            "use 'segmend demo --no-gui' or 'segmend --help'",
            file=sys.stderr,
        )
        return 1
    return run_app(args.file, screenshot=args.screenshot, select=args.select)
