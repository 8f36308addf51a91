"""The outbox table, Kafka settings, and the sender with Kafka off (no broker needed)."""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from pathlib import Path

import pytest

from app.model.errors import InvalidMutationError, SegmendError
from app.model.events import instances, outbox
from app.model.events import sender as sender_module
from app.model.events.kafka_client import import_kafka, producer_kwargs
from app.model.events.outbox import OutboxEvent, append_events, mark_sent, pending
from app.model.events.sender import OutboxSender, SenderStatus
from app.model.events.settings import KafkaConfigError, KafkaSettings, load_settings, topic_name
from app.model.journal.journal import Journal
from app.model.journal.journal_db import connect
from tests.conftest import connect_journal, status_event


def _payloads(n: int, start: int = 0) -> list[bytes]:
    return [f'{{"n":{i}}}'.encode() for i in range(start, start + n)]


# --------------------------------------------------------------------------- outbox


def test_append_assigns_increasing_seqs_in_order(conn: sqlite3.Connection) -> None:
    first = append_events(conn, 1, "merge", _payloads(2))
    second = append_events(conn, 2, "split", _payloads(3, 2))
    conn.commit()
    assert first == [1, 2] and second == [3, 4, 5]
    events = pending(conn, 0, 100)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert [e.payload for e in events] == _payloads(5)
    assert [e.mutation_id for e in events] == [1, 1, 2, 2, 2]
    assert events[2] == OutboxEvent(3, 2, "split", b'{"n":2}', False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        events[0].seq = 9  # type: ignore[misc]


def test_append_does_not_commit(journal: Path, conn: sqlite3.Connection) -> None:
    append_events(conn, 1, "merge", _payloads(1))
    other = connect_journal(journal)
    try:
        assert outbox.backlog(other) == 0
        conn.commit()
        assert outbox.backlog(other) == 1
        append_events(conn, 2, "merge", _payloads(1))
        conn.rollback()
        assert outbox.backlog(other) == 1
    finally:
        other.close()


def test_seqs_are_never_reused_after_a_rollback(conn: sqlite3.Connection) -> None:
    append_events(conn, 1, "merge", _payloads(1))
    conn.commit()
    append_events(conn, 2, "merge", _payloads(1))
    conn.rollback()
    assert append_events(conn, 3, "merge", _payloads(1)) == [2]


def test_pending_respects_after_seq_limit_and_the_sent_mark(conn: sqlite3.Connection) -> None:
    append_events(conn, 1, "merge", _payloads(10))
    conn.commit()
    assert [e.seq for e in pending(conn, 3, 4)] == [4, 5, 6, 7]
    mark_sent(conn, 6)
    assert [e.seq for e in pending(conn, 0, 100)] == [7, 8, 9, 10]
    assert [e.seq for e in pending(conn, 8, 100)] == [9, 10]
    with pytest.raises(ValueError, match="limit must be positive"):
        pending(conn, 0, 0)


def test_mark_sent_commits_and_only_moves_forward(journal: Path, conn: sqlite3.Connection) -> None:
    append_events(conn, 1, "merge", _payloads(5))
    conn.commit()
    mark_sent(conn, 3)
    other = connect_journal(journal)
    try:
        assert outbox.last_sent_seq(other) == 3
        assert outbox.backlog(other) == 2
        mark_sent(conn, 1)
        assert outbox.last_sent_seq(other) == 3
    finally:
        other.close()
    with pytest.raises(ValueError, match="cannot mark seq 6 sent: the outbox ends at seq 5"):
        mark_sent(conn, 6)
    with pytest.raises(ValueError, match="non-negative"):
        mark_sent(conn, -1)


def test_backlog_tail_and_last_seqs(conn: sqlite3.Connection) -> None:
    assert outbox.backlog(conn) == 0 and outbox.tail(conn, 5) == []
    assert outbox.last_seq(conn) == 0 and outbox.last_sent_seq(conn) == 0
    append_events(conn, 7, "merge", _payloads(6))
    conn.commit()
    mark_sent(conn, 4)
    assert outbox.backlog(conn) == 2
    last = outbox.tail(conn, 3)
    assert [(e.seq, e.sent) for e in last] == [(4, True), (5, False), (6, False)]
    assert outbox.tail(conn, 0) == []
    assert len(outbox.tail(conn, 100)) == 6
    assert outbox.last_seq(conn) == 6


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((-1, "merge", [b"x"]), "mutation_id"),
        ((True, "merge", [b"x"]), "mutation_id"),
        ((1, "", [b"x"]), "action"),
        ((1, "merge", [b"x", "y"]), "payload 1 must be bytes"),
    ],
)
def test_append_rejects_bad_input(conn: sqlite3.Connection, args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        append_events(conn, *args)
    assert outbox.last_seq(conn) == 0


def test_schema_creation_is_idempotent(conn: sqlite3.Connection) -> None:
    append_events(conn, 1, "merge", _payloads(2))
    conn.commit()
    mark_sent(conn, 1)
    outbox.create_outbox_schema(conn)
    conn.commit()
    assert outbox.last_sent_seq(conn) == 1 and outbox.backlog(conn) == 1


# --------------------------------------------------------------------------- instances


@pytest.fixture
def reg(conn: sqlite3.Connection) -> sqlite3.Connection:
    """``conn`` with the instances registry too (as a journal opened for writing has it)."""
    instances.create_instances_schema(conn)
    return conn


def test_register_instance_is_new_then_the_same(journal: Path, reg: sqlite3.Connection) -> None:
    synapses = instances.register_instance(reg, "synapses", "annotation")
    assert re.fullmatch(r"[0-9a-f]{32}", synapses)
    kv = instances.register_instance(reg, "segmentation_annotations", "keyvalue")
    assert kv != synapses
    assert instances.register_instance(reg, "synapses", "annotation") == synapses
    other = connect_journal(journal)
    try:  # (in the caller's transaction: nothing seen before its commit)
        assert instances.instance_uuids(other) == {}
        reg.commit()
        assert instances.instance_uuids(other) == {
            "segmentation_annotations": kv,
            "synapses": synapses,
        }
        assert instances.instance_types(other) == {
            "segmentation_annotations": "keyvalue",
            "synapses": "annotation",
        }
        instances.register_instance(reg, "bookmarks", "annotation")
        reg.rollback()
        assert "bookmarks" not in instances.instance_uuids(other)
    finally:
        other.close()
    instances.create_instances_schema(reg)  # (idempotent)
    assert instances.register_instance(reg, "synapses", "annotation") == synapses
    assert len(instances.instance_uuids(reg)) == 2


def test_an_instance_keeps_its_type(reg: sqlite3.Connection) -> None:
    uuid = instances.register_instance(reg, "synapses", "annotation")
    with pytest.raises(InvalidMutationError) as info:
        instances.register_instance(reg, "synapses", "keyvalue")
    assert str(info.value) == (
        "data instance 'synapses' is registered as 'annotation', not 'keyvalue'"
    )
    assert instances.instance_types(reg) == {"synapses": "annotation"}
    assert instances.instance_uuids(reg) == {"synapses": uuid}
    with pytest.raises(InvalidMutationError, match="invalid datatype ''"):
        instances.register_instance(reg, "bookmarks", "")


@pytest.mark.parametrize(
    "name", ["", "x" * 65, "has space", "a/b", "synapsés", "two\nlines", "tab\t", None, 7]
)
def test_bad_instance_names_are_refused(reg: sqlite3.Connection, name: object) -> None:
    with pytest.raises(InvalidMutationError) as info:
        instances.check_instance_name(name)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message and "invalid data instance name" in message
    assert "1 to 64 letters, digits, '_', '-' or '.'" in message
    with pytest.raises(InvalidMutationError):
        instances.register_instance(reg, name, "annotation")  # type: ignore[arg-type]
    assert instances.instance_uuids(reg) == {}


@pytest.mark.parametrize("name", ["x" * 64, "a", "synapses", "my-labels_annotations.v2", "0"])
def test_dvid_like_instance_names_are_taken(name: str) -> None:
    assert instances.check_instance_name(name) == name


def test_a_journal_without_a_registry_has_no_instances(conn: sqlite3.Connection) -> None:
    assert instances.instance_uuids(conn) == {} and instances.instance_types(conn) == {}


# --------------------------------------------------------------------------- outbox, instances


def test_events_of_an_unregistered_instance_are_refused(reg: sqlite3.Connection) -> None:
    with pytest.raises(ValueError, match="data instance 'synapses' is not registered"):
        append_events(reg, 0, "element-post", _payloads(2), instance="synapses")
    assert outbox.last_seq(reg) == 0
    instances.register_instance(reg, "synapses", "annotation")
    assert append_events(reg, 0, "element-post", _payloads(2), instance="synapses") == [1, 2]
    with pytest.raises(ValueError, match="data instance 'bookmarks' is not registered"):
        append_events(reg, 0, "element-post", _payloads(1), instance="bookmarks")
    reg.commit()
    assert outbox.last_seq(reg) == 2


def test_events_carry_their_instance_labels_by_default(reg: sqlite3.Connection) -> None:
    instances.register_instance(reg, "synapses", "annotation")
    instances.register_instance(reg, "segmentation_annotations", "keyvalue")
    append_events(reg, 1, "merge", _payloads(2))
    append_events(reg, 0, "element-post", _payloads(1, 2), instance="synapses")
    reg.commit()
    append_events(reg, 0, "postkv", _payloads(1, 3), instance="segmentation_annotations")
    append_events(reg, 2, "split", _payloads(1, 4), instance=None)
    reg.commit()
    stored = [row[0] for row in reg.execute("SELECT instance FROM outbox ORDER BY seq")]
    assert stored == [None, None, "synapses", "segmentation_annotations", None]
    events = pending(reg, 0, 100)
    assert [(e.seq, e.mutation_id, e.instance) for e in events] == [
        (1, 1, None), (2, 1, None), (3, 0, "synapses"), (4, 0, "segmentation_annotations"),
        (5, 2, None),
    ]
    assert events[2] == OutboxEvent(3, 0, "element-post", b'{"n":2}', False, "synapses")
    mark_sent(reg, 3)
    assert [(e.seq, e.sent, e.instance) for e in outbox.tail(reg, 3)] == [
        (3, True, "synapses"), (4, False, "segmentation_annotations"), (5, False, None),
    ]


_OLD_OUTBOX = (  # (the outbox as journals written before instances existed have it)
    "CREATE TABLE outbox ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " mutation_id INTEGER NOT NULL,"
    " action TEXT NOT NULL,"
    " payload BLOB NOT NULL,"
    " created REAL NOT NULL)"
)


def _columns(path: Path) -> list[str]:
    conn = connect(path, readonly=True)
    try:
        return [row[1] for row in conn.execute("PRAGMA table_info(outbox)")]
    finally:
        conn.close()


def test_an_old_journal_gets_the_instance_column_when_opened_for_writing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite"
    old = connect_journal(path)
    old.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    old.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    old.execute(_OLD_OUTBOX)
    old.execute(
        "CREATE TABLE outbox_state (id INTEGER PRIMARY KEY CHECK (id = 0),"
        " last_sent_seq INTEGER NOT NULL)"
    )
    old.execute("INSERT INTO outbox_state VALUES (0, 1)")
    old.executemany(
        "INSERT INTO outbox (mutation_id, action, payload, created) VALUES (?, 'merge', ?, 0)",
        [(1, b'{"n":0}'), (1, b'{"n":1}'), (2, b'{"n":2}')],
    )
    old.commit()
    old.close()
    assert "instance" not in _columns(path)

    reader = connect(path, readonly=True)  # (a reader reads it as it is)
    try:
        assert [(e.seq, e.sent, e.instance) for e in outbox.tail(reader, 10)] == [
            (1, True, None), (2, False, None), (3, False, None),
        ]
        assert [e.instance for e in pending(reader, 0, 10)] == [None, None]
    finally:
        reader.close()
    Journal(path, readonly=True).close()
    assert "instance" not in _columns(path)  # (a reader never writes)

    journal = Journal(path)
    try:
        assert _columns(path).count("instance") == 1
        conn = journal.connection
        assert [(e.seq, e.instance) for e in outbox.tail(conn, 10)] == [
            (1, None), (2, None), (3, None),
        ]
        with journal.transaction():
            instances.register_instance(conn, "bookmarks", "annotation")
            append_events(conn, 0, "element-post", _payloads(1), instance="bookmarks")
        assert [(e.seq, e.instance) for e in pending(conn, 0, 10)] == [
            (2, None), (3, None), (4, "bookmarks"),
        ]
    finally:
        journal.close()
    Journal(path).close()  # (again: nothing to add)
    assert _columns(path).count("instance") == 1


# --------------------------------------------------------------------------- settings


def test_topic_name_is_dvids() -> None:
    assert topic_name("", "abc", "def") == "dvidrepo-abc-data-def"
    assert topic_name("prod-", "abc", "def") == "prod-dvidrepo-abc-data-def"
    with pytest.raises(ValueError, match="data_uuid"):
        topic_name("", "abc", "")
    with pytest.raises(ValueError, match="not a legal Kafka topic"):
        topic_name("bad prefix ", "abc", "def")


@pytest.fixture
def no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("SEGMEND_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def test_missing_default_config_means_kafka_off(no_config: Path) -> None:
    settings = load_settings()
    assert settings == KafkaSettings() and not settings.enabled
    assert load_settings(bootstrap_servers="h:1", topic_prefix=None).bootstrap_servers == "h:1"


def test_config_file_is_read(no_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = no_config / "config.toml"
    path.write_text(
        "[other]\nx = 1\n\n[kafka]\n"
        'bootstrap_servers = ["a:9092", "b:9093"]\n'
        'topic_prefix = "prod-"\n'
        'security_protocol = "SASL_SSL"\n'
        'sasl_mechanism = "SCRAM-SHA-512"\n'
        'sasl_username = "proofreader"\n'
        'sasl_password_env = "SEGMEND_TEST_PW"\n'
        "request_timeout_s = 3\n"
    )
    monkeypatch.setenv("SEGMEND_TEST_PW", "s3cr3t-pw")
    monkeypatch.setenv("SEGMEND_CONFIG", str(path))
    settings = load_settings(topic_prefix="test-")
    assert settings.bootstrap_servers == "a:9092,b:9093"
    assert settings.bootstrap_hosts() == [("a", 9092), ("b", 9093)]
    assert settings.topic_prefix == "test-"
    assert settings.sasl_password == "s3cr3t-pw"
    assert settings.request_timeout_s == 3
    assert "s3cr3t-pw" not in repr(settings) and "s3cr3t-pw" not in str(settings)
    assert "sasl_password='***'" in repr(settings)
    kwargs = producer_kwargs(settings)
    assert kwargs["sasl_plain_password"] == "s3cr3t-pw"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[kafka\n", "not valid TOML"),
        ("[kafka]\nbootstrap_servers = 9092\n", r"\[kafka\] bootstrap_servers must be"),
        ("[kafka]\nbootstrap_server = 'a:1'\n", r"unknown key \[kafka\] bootstrap_server"),
        ("[kafka]\nbootstrap_servers = 'localhost'\n", "'localhost' is not host:port"),
        ("[kafka]\nssl_check_hostname = 'yes'\n", r"\[kafka\] ssl_check_hostname must be bool"),
        ("[kafka]\nrequest_timeout_s = true\n", r"\[kafka\] request_timeout_s must be"),
        ("[kafka]\nsecurity_protocol = 'SASL_SSL'\n", "needs a sasl_mechanism"),
        ("[kafka]\nsasl_password = 12\n", r"sasl_password must be str, got <hidden>"),
        ("[kafka]\nsasl_password_env = 'SEGMEND_NOT_SET_X'\n", "SEGMEND_NOT_SET_X is not set"),
        ("kafka = 3\n", "'kafka' must be a table"),
    ],
)
def test_malformed_config_names_the_file_and_key(no_config: Path, text: str, match: str) -> None:
    path = no_config / "bad.toml"
    path.write_text(text)
    with pytest.raises(KafkaConfigError, match=match) as info:
        load_settings(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, SegmendError)


def test_explicitly_named_missing_config_is_an_error(
    no_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(KafkaConfigError, match=r"nope\.toml: config file not found"):
        load_settings(no_config / "nope.toml")
    monkeypatch.setenv("SEGMEND_CONFIG", str(no_config / "gone.toml"))
    with pytest.raises(KafkaConfigError, match=r"gone\.toml: config file not found"):
        load_settings()


def test_bad_overrides_are_errors(no_config: Path) -> None:
    with pytest.raises(KafkaConfigError, match="unknown Kafka setting 'brokers'"):
        load_settings(brokers="a:1")
    with pytest.raises(KafkaConfigError, match="bootstrap_servers entry 'a' is not host:port"):
        load_settings(bootstrap_servers="a")


def test_password_never_appears_in_errors() -> None:
    with pytest.raises(ValueError) as info:
        KafkaSettings(
            bootstrap_servers="a:1", security_protocol="SASL_SSL", sasl_mechanism="PLAIN",
            sasl_password="pw-secret",
        )
    assert "needs a sasl_username" in str(info.value)
    assert "pw-secret" not in str(info.value)
    settings = KafkaSettings(
        bootstrap_servers="a:1", security_protocol="SASL_SSL", sasl_mechanism="PLAIN",
        sasl_username="u", sasl_password="pw-secret",
    )
    assert settings.redact("failed with pw-secret") == "failed with ***"


def test_producer_kwargs_keep_order_and_fit_kafka_python() -> None:
    kwargs = producer_kwargs(KafkaSettings(bootstrap_servers="h:1,[::1]:2"))
    assert kwargs["bootstrap_servers"] == ["h:1", "[::1]:2"]
    assert kwargs["acks"] == "all"
    assert kwargs["max_in_flight_requests_per_connection"] == 1
    assert kwargs["retries"] > 0
    known = import_kafka().KafkaProducer.DEFAULT_CONFIG
    assert set(kwargs) <= set(known)
    assert ("enable_idempotence" in kwargs) == ("enable_idempotence" in known)
    with pytest.raises(ValueError, match="Kafka is off"):
        producer_kwargs(KafkaSettings())


# --------------------------------------------------------------------------- sender, Kafka off


def test_sender_off_keeps_events_waiting(
    journal: Path, conn: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    links: list[object] = []
    monkeypatch.setattr(sender_module, "KafkaLink", lambda *args, **kw: links.append(args))
    seen: list[SenderStatus] = []
    sender = OutboxSender(journal, KafkaSettings(), repo_uuid="r", data_uuid="d")
    sender.status_changed.connect(seen.append)
    waiting = status_event(sender, lambda status: status.backlog == 3)
    with sender:
        assert sender.flush(5.0) is True  # empty outbox: nothing to wait for
        append_events(conn, 1, "merge", _payloads(3))
        conn.commit()
        sender.wake()
        assert waiting.wait(30.0), f"backlog 3 never reported: {sender.status()}"
        status = sender.status()
        assert status.state == "off" and status.broker is None and status.last_error is None
        assert status.topic == "dvidrepo-r-data-d"
        # Kafka off with events waiting: the sender answers the flush itself.  Were it left
        # to time out, this test would outlive pytest's own timeout (pyproject) and fail.
        assert sender.flush(3600.0) is False
    assert sender.stop() is True
    assert links == [], "a sender with Kafka off made a link to a broker"
    assert seen and all(s.state == "off" for s in seen)
    assert seen[-1].backlog == 3
    assert outbox.backlog(conn) == 3


def test_sender_reports_a_missing_journal(tmp_path: Path) -> None:
    sender = OutboxSender(tmp_path / "none.sqlite", KafkaSettings(), repo_uuid="r", data_uuid="d")
    failed = status_event(sender, lambda status: status.last_error is not None)
    with sender:
        assert failed.wait(30.0), f"no error reported: {sender.status()}"
        assert "does not exist" in (sender.status().last_error or "")
    assert not (tmp_path / "none.sqlite").exists()


def test_flush_of_a_stopped_sender_returns_false(journal: Path) -> None:
    sender = OutboxSender(journal, KafkaSettings(), repo_uuid="r", data_uuid="d")
    assert sender.flush(1.0) is False
    sender.start()
    sender.stop()
    assert sender.flush(1.0) is False
