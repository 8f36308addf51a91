"""The ``--workers`` / ``--scheduler`` options of the bulk commands (build,
verify, reindex): where the job runs (:class:`app.model.bulk.cluster.Cluster`)."""

from __future__ import annotations

import argparse

from app.cli.output import bounded_int
from app.model.bulk.cluster import Cluster


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--workers N`` and ``--scheduler ADDRESS`` (one or the other)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--workers", type=bounded_int(1), metavar="N",
        help="run on a local Dask cluster of N worker processes, started and stopped here",
    )
    group.add_argument(
        "--scheduler", metavar="ADDRESS",
        help="run on a running Dask cluster (e.g. tcp://host:8786); its workers must see "
             "the same files at the same paths",
    )


def cluster_of(args: argparse.Namespace) -> Cluster | None:
    """The cluster the options name, or None (threads here)."""
    if args.workers is None and args.scheduler is None:
        return None
    return Cluster(workers=args.workers, scheduler=args.scheduler)
