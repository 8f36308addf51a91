"""The outbox sender against a real Kafka-protocol broker, failures, and the CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import app.cli as cli
from app.cli import events_commands
from app.model.dataset_ids import dataset_uuids
from app.model.events import blobstore, instances, messages, outbox
from app.model.events import sender as sender_module
from app.model.events.dvid_schemas import schema_problems
from app.model.events.kafka_client import import_kafka
from app.model.events.kafka_link import Routed
from app.model.events.outbox import append_events
from app.model.events.sender import OutboxSender, SenderStatus
from app.model.events.settings import KafkaSettings
from app.model.journal.sidecar import journal_path
from app.model.storage.store import PyramidStore
from tests.conftest import connect_journal, status_event
from tests.kafka_fixtures import (
    TansuBroker,
    first_occurrences,
    free_port,
    kafka_broker,  # noqa: F401
    read_topic,
    seqs_of,
)

REPO, DATA = "a1b2c3", "d4e5f6"
TOPIC = f"dvidrepo-{REPO}-data-{DATA}"


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` (a condition held by another process) up to ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _append_merge(conn: sqlite3.Connection, mutation_id: int) -> bytes:
    """Append (and commit) a merge + merge-complete pair; returns the merge payload."""
    start = messages.merge_start(
        target=1, labels=[mutation_id + 1], uuid=DATA, mutation_id=mutation_id
    )
    done = messages.complete(start, None)
    put = lambda data: blobstore.put_blob(conn, data)  # noqa: E731
    payloads = [messages.encode_message(start, put), messages.encode_message(done, put)]
    append_events(conn, mutation_id, "merge", payloads)
    conn.commit()
    return payloads[0]


def _sender(journal: Path, bootstrap: str, **settings: object) -> OutboxSender:
    options: dict[str, object] = {"max_backoff_s": 0.5, "request_timeout_s": 5.0}
    options.update(settings)
    return OutboxSender(
        journal,
        KafkaSettings(bootstrap_servers=bootstrap, **options),  # type: ignore[arg-type]
        repo_uuid=REPO,
        data_uuid=DATA,
        min_backoff=0.05,
    )


# --------------------------------------------------------------------------- delivery


@pytest.mark.kafka
def test_events_arrive_in_seq_order_with_topic_and_key(
    kafka_broker: TansuBroker, journal: Path, conn: sqlite3.Connection  # noqa: F811
) -> None:
    statuses: list[SenderStatus] = []
    sender = _sender(journal, kafka_broker.bootstrap)
    sender.status_changed.connect(statuses.append)
    with sender:
        for mid in range(1, 126):
            _append_merge(conn, mid)
            sender.wake()
        assert sender.flush(30.0), f"not flushed: {sender.status()}"
        status = sender.status()
    assert status.state == "connected" and status.backlog == 0 and status.last_error is None
    assert status.last_sent_seq == 250 and status.topic == TOPIC
    assert any(s.state == "connected" for s in statuses)

    records = read_topic(kafka_broker.bootstrap, TOPIC, expect=250)
    assert len(records) == 250, f"read {len(records)} records"
    assert [r.offset for r in records] == list(range(250))
    assert seqs_of(records) == list(range(1, 251))
    assert {r.key for r in records} == {DATA.encode()}
    expected = [e.payload for e in outbox.tail(conn, 250)]
    assert [r.value for r in records] == expected
    decoded = [json.loads(r.value) for r in records]
    assert [m["Action"] for m in decoded[:4]] == ["merge", "merge-complete"] * 2
    assert [m["MutationID"] for m in decoded[::2]] == list(range(1, 126))
    assert all(schema_problems(m) == [] for m in decoded)
    assert outbox.backlog(conn) == 0 and outbox.last_sent_seq(conn) == 250


@pytest.mark.kafka
def test_a_held_sender_sends_nothing_past_its_limit_until_released(
    kafka_broker: TansuBroker, journal: Path, conn: sqlite3.Connection  # noqa: F811
) -> None:
    """A group commit's events (not durable yet) wait until the group is synced."""
    with _sender(journal, kafka_broker.bootstrap) as sender:
        _append_merge(conn, 1)
        assert sender.flush(30.0)
        sender.hold(outbox.last_seq(conn))
        for mid in range(2, 6):
            _append_merge(conn, mid)
            sender.wake()
        assert not sender.flush(1.0)  # (held: the broker gets none of them)
        assert outbox.last_sent_seq(conn) == 2
        sender.release()
        assert sender.flush(30.0), f"not flushed: {sender.status()}"
    assert seqs_of(read_topic(kafka_broker.bootstrap, TOPIC, expect=10)) == list(range(1, 11))


@pytest.mark.kafka
def test_sender_creates_its_topic_with_one_partition(
    kafka_broker: TansuBroker, journal: Path, conn: sqlite3.Connection  # noqa: F811
) -> None:
    _append_merge(conn, 1)
    with _sender(journal, kafka_broker.bootstrap, topic_prefix="test.") as sender:
        assert sender.flush(30.0), f"not flushed: {sender.status()}"
    admin = import_kafka().KafkaAdminClient(bootstrap_servers=[kafka_broker.bootstrap])
    try:
        assert f"test.{TOPIC}" in admin.list_topics()
        described = admin.describe_topics([f"test.{TOPIC}"])
        assert len(described[0]["partitions"]) == 1
    finally:
        admin.close()


@pytest.mark.kafka
def test_outage_appends_never_block_and_nothing_is_lost(
    kafka_broker: TansuBroker, journal: Path, conn: sqlite3.Connection  # noqa: F811
) -> None:
    with _sender(journal, kafka_broker.bootstrap) as sender:
        for mid in range(1, 6):
            _append_merge(conn, mid)
        sender.wake()
        assert sender.flush(30.0), f"not flushed before the outage: {sender.status()}"
        before = outbox.last_sent_seq(conn)
        assert before == 10

        kafka_broker.stop()
        for i in range(1000):  # without waiting: test_appends_never_wait_for_the_broker
            append_events(conn, 100 + i, "merge", [json.dumps({"i": i}).encode()])
            conn.commit()
            sender.wake()

        went_down = status_event(sender, lambda status: status.state == "down")
        assert went_down.wait(20.0), f"the sender never reported 'down': {sender.status()}"
        down = sender.status()
        assert down.last_error and "refused" in down.last_error, down.last_error
        assert outbox.backlog(conn) == 1000  # nothing acknowledged by a dead broker

        kafka_broker.start()  # same port, empty (in-memory) broker
        assert sender.flush(60.0), f"not flushed after the outage: {sender.status()}"
        assert sender.status().state == "connected"

    records = read_topic(kafka_broker.bootstrap, TOPIC, expect=1000, timeout=60.0)
    seqs = seqs_of(records)
    firsts = first_occurrences(seqs)
    assert firsts == sorted(firsts), "first deliveries out of order"
    missing = set(range(before + 1, before + 1001)) - set(seqs)
    assert not missing, f"{len(missing)} events lost, e.g. {sorted(missing)[:5]}"
    during = [json.loads(r.value)["i"] for r in records if int(r.headers["segmend-seq"]) > 10]
    assert first_occurrences(during) == list(range(1000))


CHILD = textwrap.dedent(
    """
    import sqlite3, sys, time
    from app.model.events.outbox import append_events
    from app.model.events.sender import OutboxSender
    from app.model.events.settings import KafkaSettings
    journal, bootstrap = sys.argv[1], sys.argv[2]
    conn = sqlite3.connect(journal, timeout=10)
    conn.execute("PRAGMA busy_timeout = 10000")
    sender = OutboxSender(journal, KafkaSettings(bootstrap_servers=bootstrap),
                          repo_uuid=sys.argv[3], data_uuid=sys.argv[4], batch_size=50).start()
    i = 0
    while True:  # until SIGKILLed
        i += 1
        append_events(conn, i, "merge", [b'{"Action":"merge","MutationID":%d}' % i])
        conn.commit()
        sender.wake()
        if i % 100 == 0:
            time.sleep(0.001)
    """
)


@pytest.mark.kafka
@pytest.mark.slow
def test_kill_9_mid_send_loses_nothing(
    kafka_broker: TansuBroker, journal: Path, conn: sqlite3.Connection  # noqa: F811
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(journal), kafka_broker.bootstrap, REPO, DATA],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(
            lambda: child.poll() is not None or outbox.last_sent_seq(conn) >= 300,
            60.0,
            "the child to send 300 events",
        )
        assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        if child.stderr:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    committed = outbox.last_seq(conn)
    sent_by_child = outbox.last_sent_seq(conn)
    assert 300 <= sent_by_child < committed, "the kill did not land mid-stream"

    with _sender(journal, kafka_broker.bootstrap) as sender:
        assert sender.flush(60.0), f"not flushed: {sender.status()}"
    records = read_topic(kafka_broker.bootstrap, TOPIC, expect=committed, timeout=60.0,
                         distinct=True)
    seqs = seqs_of(records)
    assert set(seqs) == set(range(1, committed + 1)), "events lost or invented"
    firsts = first_occurrences(seqs)
    assert firsts == sorted(firsts), "first deliveries out of order"
    mids = [json.loads(r.value)["MutationID"] for r in records]
    assert first_occurrences(mids) == list(range(1, committed + 1))


# --------------------------------------------------------------------------- other instances


def _append_interleaved(
    conn: sqlite3.Connection, expected: dict[str | None, list[tuple[int, bytes]]], first_mid: int
) -> None:
    """Three transactions, each with events of the labels and of every registered instance,
    interleaved; ``expected[instance]`` gets each ``(seq, payload)``."""
    names = sorted(instances.instance_uuids(conn))
    for t in range(3):
        for i, instance in enumerate([None, *names, None, *reversed(names)]):
            mid = first_mid + 10 * t + i if instance is None else 0
            payload = json.dumps({"Action": "x", "t": t, "i": i, "of": instance}).encode()
            [seq] = append_events(conn, mid, "x", [payload], instance=instance)
            expected[instance].append((seq, payload))
        conn.commit()


@pytest.mark.kafka
def test_each_instance_has_its_topic_and_key(
    kafka_broker: TansuBroker, journal: Path, conn: sqlite3.Connection  # noqa: F811
) -> None:
    """The labels' events and two instances' (one registered after the sender
    started), interleaved in several transactions, each reach their own topic in
    order, keyed by their data UUID."""
    instances.create_instances_schema(conn)
    syn = instances.register_instance(conn, "synapses", "annotation")
    conn.commit()
    expected: dict[str | None, list[tuple[int, bytes]]] = {None: [], "synapses": []}
    with _sender(journal, kafka_broker.bootstrap, topic_prefix="t.") as sender:
        _append_interleaved(conn, expected, 1)
        sender.wake()
        assert sender.flush(30.0), f"not flushed: {sender.status()}"
        assert sender.status().last_sent_seq == outbox.last_seq(conn) == 12

        kv = instances.register_instance(conn, "segmentation_annotations", "keyvalue")
        expected["segmentation_annotations"] = []
        _append_interleaved(conn, expected, 100)
        sender.wake()
        assert sender.flush(30.0), f"not flushed: {sender.status()}"
        status = sender.status()
    last = outbox.last_seq(conn)
    assert last == 12 + 3 * 6
    assert status.last_sent_seq == last and outbox.last_sent_seq(conn) == last
    assert status.state == "connected" and status.backlog == 0 and status.last_error is None

    keys = {None: DATA, "synapses": syn, "segmentation_annotations": kv}
    admin = import_kafka().KafkaAdminClient(bootstrap_servers=[kafka_broker.bootstrap])
    try:
        topics = {name: f"t.dvidrepo-{REPO}-data-{uuid}" for name, uuid in keys.items()}
        assert set(topics.values()) <= set(admin.list_topics())
        for described in admin.describe_topics(list(topics.values())):
            assert len(described["partitions"]) == 1, described
    finally:
        admin.close()
    for name, topic in topics.items():
        want = expected[name]
        records = read_topic(kafka_broker.bootstrap, topic, expect=len(want))
        assert [(seq, r.value) for seq, r in zip(seqs_of(records), records, strict=True)] == want
        assert {r.key for r in records} == {keys[name].encode()}, name
        assert all(json.loads(r.value)["of"] == name for r in records)


class _RecordingLink:
    """Stands in for ``KafkaLink``: acknowledges everything, keeps what it was given."""

    def __init__(self) -> None:
        self.producer: object = None
        self.sent: list[Routed] = []

    def connect(self) -> None:
        self.producer = object()

    def send(self, records: list[Routed]) -> tuple[int | None, str | None]:
        self.sent.extend(records)
        return records[-1].event.seq, None

    def close(self) -> None:
        self.producer = None


def test_an_event_of_an_unknown_instance_waits_with_a_clear_error(
    journal: Path, conn: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Routing, without a broker: an instance registered after the start is
    found; an event naming no registered instance (written around the checks)
    is not sent, nor any after it, and says why."""
    links: list[_RecordingLink] = []

    def make_link(*_args: object) -> _RecordingLink:
        links.append(_RecordingLink())
        return links[-1]

    monkeypatch.setattr(sender_module, "KafkaLink", make_link)
    instances.create_instances_schema(conn)
    _append_merge(conn, 1)
    with _sender(journal, "127.0.0.1:9") as sender:
        assert sender.flush(30.0), f"not flushed: {sender.status()}"
        bm = instances.register_instance(conn, "bookmarks", "annotation")
        append_events(conn, 0, "element-post", [b"{}"], instance="bookmarks")
        conn.commit()
        sender.wake()
        assert sender.flush(30.0), f"not flushed: {sender.status()}"
        conn.execute(
            "INSERT INTO outbox (mutation_id, action, payload, created, instance)"
            " VALUES (0, 'x', x'7b7d', 0, 'ghost')"
        )
        conn.commit()
        _append_merge(conn, 2)
        sender.wake()
        failed = status_event(sender, lambda status: "ghost" in (status.last_error or ""))
        assert failed.wait(30.0), f"no error reported: {sender.status()}"
        error = sender.status().last_error
    sent = [(r.topic, r.key, r.event.seq) for link in links for r in link.sent]
    assert sent == [
        (TOPIC, DATA.encode(), 1),
        (TOPIC, DATA.encode(), 2),
        (f"dvidrepo-{REPO}-data-{bm}", bm.encode(), 3),
    ]
    assert error == (
        "LookupError: outbox event 4 is of data instance 'ghost', which is not registered"
    )
    assert outbox.last_sent_seq(conn) == 3 and outbox.backlog(conn) == 3


# --------------------------------------------------------------------------- bad configuration


class _SilentBroker:
    """A TCP port that accepts connections and never answers (a hung broker)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.bootstrap = f"127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        self.sock.close()


def _check_down_and_unblocked(
    journal: Path, conn: sqlite3.Connection, settings: KafkaSettings, error_part: str
) -> SenderStatus:
    _append_merge(conn, 1)
    sender = OutboxSender(journal, settings, repo_uuid=REPO, data_uuid=DATA, min_backoff=0.05)
    with sender:
        down = status_event(sender, lambda status: status.state == "down")
        assert down.wait(30.0), f"the sender never reported 'down': {sender.status()}"
        for mid in range(2, 22):
            _append_merge(conn, mid)
            sender.wake()
        status = sender.status()
        assert sender.flush(0.5) is False
        # (a command about to exit): back at the next failed attempt, not at the timeout
        assert sender.flush(600.0, give_up_on_failure=True) is False
    assert sender.stop() is True
    assert status.last_error and error_part in status.last_error, status.last_error
    assert outbox.last_sent_seq(conn) == 0 and outbox.backlog(conn) == 42
    return status


class _Hold:
    """A broker that holds every send until the test releases it (stands in for the link).

    ``holding`` is set once a send has started: the sender thread is then inside
    its exchange with the broker.  The send returns, all acknowledged, only once
    ``release`` is set — or gives up after a minute, setting ``gave_up``.
    """

    def __init__(self) -> None:
        self.holding = threading.Event()
        self.release = threading.Event()
        self.gave_up = threading.Event()

    def link(self, *_args: object) -> _HeldLink:
        """A link to this broker (the signature of the sender's ``KafkaLink``)."""
        return _HeldLink(self)


class _HeldLink:
    def __init__(self, hold: _Hold) -> None:
        self.hold = hold
        self.producer: object = None

    def connect(self) -> None:
        self.producer = object()

    def send(self, records: list[Routed]) -> tuple[int | None, str | None]:
        self.hold.holding.set()
        if self.hold.release.wait(60.0):
            return records[-1].event.seq, None
        self.hold.gave_up.set()
        return None, "held by the test"

    def close(self) -> None:
        self.producer = None


def test_appends_never_wait_for_the_broker(
    journal: Path, conn: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = _Hold()
    monkeypatch.setattr(sender_module, "KafkaLink", hold.link)
    _append_merge(conn, 1)
    with _sender(journal, "127.0.0.1:9") as sender:
        try:
            assert hold.holding.wait(30.0), f"the sender never sent: {sender.status()}"
            for mid in range(2, 22):  # while the sender is held inside its send
                _append_merge(conn, mid)
                sender.wake()
                assert sender.status().last_sent_seq == 0
            assert not hold.gave_up.is_set(), "an append waited for the broker"
        finally:
            hold.release.set()
        assert sender.flush(30.0), f"not flushed: {sender.status()}"
    assert outbox.last_sent_seq(conn) == 42 and outbox.backlog(conn) == 0


def test_unknown_host_is_down_with_a_clear_error(journal: Path, conn: sqlite3.Connection) -> None:
    settings = KafkaSettings(bootstrap_servers="no-such-host.invalid:9092", max_backoff_s=0.5)
    _check_down_and_unblocked(journal, conn, settings, "cannot resolve host 'no-such-host.invalid'")


def test_wrong_port_is_down_with_a_clear_error(journal: Path, conn: sqlite3.Connection) -> None:
    port = free_port()
    settings = KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}", max_backoff_s=0.5)
    _check_down_and_unblocked(journal, conn, settings, f"connection refused by 127.0.0.1:{port}")


def test_silent_broker_is_down_not_hanging(journal: Path, conn: sqlite3.Connection) -> None:
    silent = _SilentBroker()
    try:
        settings = KafkaSettings(
            bootstrap_servers=silent.bootstrap, connect_timeout_s=1.0, max_backoff_s=0.5
        )
        _check_down_and_unblocked(journal, conn, settings, "Unable to bootstrap")
    finally:
        silent.close()


@pytest.mark.kafka
def test_bad_sasl_settings_are_down_and_keep_the_password_secret(
    kafka_broker: TansuBroker, journal: Path, conn: sqlite3.Connection  # noqa: F811
) -> None:
    password = "hunter2-do-not-print"
    settings = KafkaSettings(
        bootstrap_servers=kafka_broker.bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username="proofreader",
        sasl_password=password,
        connect_timeout_s=2.0,
        max_backoff_s=0.5,
    )
    status = _check_down_and_unblocked(journal, conn, settings, "SASL")
    assert password not in repr(status)
    assert password not in (status.last_error or "")
    for path in journal.parent.iterdir():
        if path.name.startswith(journal.name):
            assert password.encode() not in path.read_bytes(), f"password written to {path}"


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def events_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., int]:
    """``app.cli.main`` with the events commands registered and an empty config file."""
    if events_commands not in cli.COMMAND_MODULES:
        monkeypatch.setattr(cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, events_commands))
    config = tmp_path / "config.toml"
    config.write_text("# no [kafka] section: Kafka off\n")
    monkeypatch.setenv("SEGMEND_CONFIG", str(config))
    return lambda *argv: cli.main([str(a) for a in argv])


@pytest.fixture
def dataset(tmp_path: Path) -> Iterator[tuple[Path, sqlite3.Connection, str]]:
    """A tiny pyramid with a journal holding 3 merges (6 events) and one blob."""
    path = tmp_path / "tiny.h5"
    PyramidStore.create(path, (8, 8, 8), block_size=(4, 4, 4)).close()
    journal = journal_path(path)
    journal.parent.mkdir(parents=True, exist_ok=True)
    conn = connect_journal(journal)
    outbox.create_outbox_schema(conn)
    blobstore.create_blob_schema(conn)
    for mid in (1, 2, 3):
        _append_merge(conn, mid)
    ref = blobstore.put_blob(conn, b"\x00\x01\x02 rle \xff\n")
    conn.commit()
    yield path, conn, ref
    conn.close()


def _topic_of(path: Path) -> str:
    repo, data = dataset_uuids(path)
    return f"dvidrepo-{repo}-data-{data}"


def test_cli_status_and_tail_with_kafka_off(
    events_cli: Callable[..., int],
    dataset: tuple[Path, sqlite3.Connection, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, _, _ = dataset
    assert events_cli("events", "status", path, "--json") == 0
    status = json.loads(capsys.readouterr().out)
    assert status["state"] == "off" and status["broker"] is None
    assert status["backlog"] == 6 and status["events"] == 6 and status["last_seq"] == 6
    assert status["topic"] == _topic_of(path)
    assert status["instances"] == []

    assert events_cli("events", "status", path) == 0
    text = capsys.readouterr().out
    assert "off" in text and "6 event(s) waiting" in text
    assert "instance:" not in text

    assert events_cli("events", "tail", path, "-n", "2", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["seq"] for r in rows] == [5, 6]
    assert rows[1]["message"]["Action"] == "merge-complete"
    assert rows[1]["message"]["MutationID"] == 3 and rows[1]["sent"] is False

    assert events_cli("events", "tail", path) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 6


def test_cli_flush_without_a_broker_fails_clearly(
    events_cli: Callable[..., int],
    dataset: tuple[Path, sqlite3.Connection, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, conn, _ = dataset
    assert events_cli("events", "flush", path) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "6 event(s) waiting but no Kafka broker is configured" in err

    port = free_port()
    dead = f"127.0.0.1:{port}"
    assert events_cli("events", "flush", path, "--kafka", dead, "--timeout", "1") == 1
    err = capsys.readouterr().err.strip()
    assert "6 event(s) still waiting" in err and "connection refused" in err
    assert outbox.backlog(conn) == 6


def test_cli_errors_name_what_is_wrong(
    events_cli: Callable[..., int],
    dataset: tuple[Path, sqlite3.Connection, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, _, _ = dataset
    assert events_cli("events", "status", tmp_path / "missing.h5") == 1
    assert "missing.h5: no such file" in capsys.readouterr().err
    assert events_cli("events", "status", path, "--kafka", "nohostport") == 1
    assert "'nohostport' is not host:port" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[kafka]\ntopic_prefix = 3\n")
    assert events_cli("events", "status", path, "--config", bad) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "topic_prefix" in err


@pytest.mark.kafka
def test_cli_status_and_flush_with_a_broker(
    kafka_broker: TansuBroker,  # noqa: F811
    events_cli: Callable[..., int],
    dataset: tuple[Path, sqlite3.Connection, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, conn, _ = dataset
    assert events_cli("events", "status", path, "--kafka", kafka_broker.bootstrap, "--json") == 0
    status = json.loads(capsys.readouterr().out)
    assert status["state"] == "connected" and status["backlog"] == 6

    assert events_cli("events", "flush", path, "--kafka", kafka_broker.bootstrap, "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["sent"] == 6 and result["backlog"] == 0 and result["instances"] == []
    assert outbox.backlog(conn) == 0
    records = read_topic(kafka_broker.bootstrap, _topic_of(path), expect=6)
    assert seqs_of(records) == [1, 2, 3, 4, 5, 6]

    assert events_cli("events", "flush", path, "--kafka", kafka_broker.bootstrap) == 0
    assert "nothing to send" in capsys.readouterr().out
    assert events_cli("events", "tail", path, "-n", "1", "--json") == 0
    assert json.loads(capsys.readouterr().out)[0]["sent"] is True


def test_cli_blob_get(
    events_cli: Callable[..., int],
    dataset: tuple[Path, sqlite3.Connection, str],
    tmp_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    path, _, ref = dataset
    assert events_cli("blob", "get", path, ref) == 0
    assert capsysbinary.readouterr().out == b"\x00\x01\x02 rle \xff\n"

    out = tmp_path / "blob.bin"
    assert events_cli("blob", "get", path, ref, "--out", out) == 0
    assert out.read_bytes() == b"\x00\x01\x02 rle \xff\n"
    assert capsysbinary.readouterr().out == b""

    missing = "f" * 64
    assert events_cli("blob", "get", path, missing) == 1
    assert f"no blob {missing}".encode() in capsysbinary.readouterr().err
    assert events_cli("blob", "get", path, "xyz") == 1
    assert b"not a blob reference: 'xyz'" in capsysbinary.readouterr().err


def test_cli_status_and_tail_show_the_instances(
    events_cli: Callable[..., int],
    dataset: tuple[Path, sqlite3.Connection, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, conn, _ = dataset
    instances.create_instances_schema(conn)
    syn = instances.register_instance(conn, "synapses", "annotation")
    kv = instances.register_instance(conn, "segmentation_annotations", "keyvalue")
    append_events(conn, 0, "element-post", [b'{"Action":"element-post"}'], instance="synapses")
    conn.commit()
    repo, _data = dataset_uuids(path)

    assert events_cli("events", "status", path, "--json", "--topic-prefix", "p-") == 0
    status = json.loads(capsys.readouterr().out)
    assert status["topic"] == f"p-{_topic_of(path)}" and status["backlog"] == 7
    assert status["instances"] == [
        {
            "name": "segmentation_annotations",
            "type": "keyvalue",
            "data_uuid": kv,
            "topic": f"p-dvidrepo-{repo}-data-{kv}",
        },
        {
            "name": "synapses",
            "type": "annotation",
            "data_uuid": syn,
            "topic": f"p-dvidrepo-{repo}-data-{syn}",
        },
    ]
    assert events_cli("events", "status", path) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [
        f"topic:    {_topic_of(path)}",
        f"instance: segmentation_annotations (keyvalue) -> dvidrepo-{repo}-data-{kv}",
        f"instance: synapses (annotation) -> dvidrepo-{repo}-data-{syn}",
    ]
    assert lines[3].startswith("kafka:    off")

    assert events_cli("events", "tail", path, "-n", "2", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["seq"], r["instance"], r["mutation_id"]) for r in rows] == [
        (6, None, 3), (7, "synapses", 0),
    ]
    assert events_cli("events", "tail", path, "-n", "2") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["6", "waiting", "labels", "mutation", "3"]
    assert lines[1].split()[:5] == ["7", "waiting", "synapses", "mutation", "0"]


@pytest.mark.kafka
def test_cli_flush_sends_each_instance_to_its_topic(
    kafka_broker: TansuBroker,  # noqa: F811
    events_cli: Callable[..., int],
    dataset: tuple[Path, sqlite3.Connection, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, conn, _ = dataset
    instances.create_instances_schema(conn)
    syn = instances.register_instance(conn, "synapses", "annotation")
    append_events(conn, 0, "element-post", [b'{"Action":"element-post"}'], instance="synapses")
    conn.commit()
    assert events_cli("events", "flush", path, "--kafka", kafka_broker.bootstrap) == 0
    out = capsys.readouterr().out.strip()
    assert out == (
        f"sent 7 event(s) to {_topic_of(path)} and the topics of synapses "
        f"at {kafka_broker.bootstrap}"
    )
    repo, _data = dataset_uuids(path)
    records = read_topic(kafka_broker.bootstrap, f"dvidrepo-{repo}-data-{syn}", expect=1)
    assert [(r.key, r.value, seqs_of([r])) for r in records] == [
        (syn.encode(), b'{"Action":"element-post"}', [7])
    ]
    assert seqs_of(read_topic(kafka_broker.bootstrap, _topic_of(path), expect=6)) == [
        1, 2, 3, 4, 5, 6,
    ]


def test_status_does_not_create_a_journal(
    events_cli: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "fresh.h5"
    PyramidStore.create(path, (8, 8, 8), block_size=(4, 4, 4)).close()
    assert events_cli("events", "status", path, "--json") == 0
    assert json.loads(capsys.readouterr().out)["backlog"] == 0
    assert events_cli("events", "tail", path) == 0
    assert "empty" in capsys.readouterr().out
    assert not journal_path(path).exists()


def test_status_changed_is_emitted_from_the_sender_thread(
    journal: Path, conn: sqlite3.Connection
) -> None:
    threads: list[str] = []
    got = threading.Event()
    sender = _sender(journal, f"127.0.0.1:{free_port()}")

    def slot(status: SenderStatus) -> None:
        threads.append(threading.current_thread().name)
        if status.state == "down":
            got.set()

    sender.status_changed.connect(slot)
    _append_merge(conn, 1)
    with sender:
        assert got.wait(20.0), f"no 'down' status emitted: {sender.status()}"
    assert threads and all(name.startswith("segmend-outbox") for name in threads)
