"""The outbox sender: a background thread publishing outbox events to Kafka.

:class:`OutboxSender` reads the outbox of a journal with its own SQLite
connection and produces each event, in ``seq`` order, to the dataset's topic
with the dataset's ``data_uuid`` as the key (one partition key per dataset, so
Kafka keeps their order).  It marks events sent only once the broker has
acknowledged them (``acks=all``); a crash at any point therefore loses nothing
and at worst sends some events again (at-least-once delivery).  Each record
carries the headers ``segmend-seq`` and ``segmend-action`` so consumers can
drop duplicates.

Nothing the broker does reaches the caller: an unreachable, slow or
misconfigured broker only turns :meth:`OutboxSender.status` to ``"down"``
with a ``last_error`` (never containing the SASL password), while the sender
retries with a capped exponential back-off and recreates its producer.
Events keep waiting on disk meanwhile; appending them never waits for Kafka.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from psygnal import Signal

from app.model.events.outbox import OutboxEvent, backlog, last_sent_seq, mark_sent, pending
from app.model.events.settings import (
    KafkaSettings,
    admin_kwargs,
    import_kafka,
    producer_kwargs,
    topic_name,
)

__all__ = ["OutboxSender", "SenderState", "SenderStatus", "probe_broker"]

log = logging.getLogger(__name__)

SenderState = Literal["off", "connecting", "connected", "down"]


@dataclass(frozen=True, slots=True)
class SenderStatus:
    """A snapshot of the sender.

    Attributes
    ----------
    state : {"off", "connecting", "connected", "down"}
        ``off``: no broker configured, events wait in the outbox.
        ``connecting``: (re)connecting.  ``connected``: the last exchange with
        the broker succeeded.  ``down``: the last attempt failed; retrying.
    backlog : int
        Events not yet acknowledged by the broker.
    last_error : str or None
        The last failure, for people (no secrets); None once delivery succeeds.
    last_sent_seq : int
        The highest outbox ``seq`` acknowledged.
    topic : str
        The Kafka topic.
    broker : str or None
        The bootstrap servers (None when off).
    """

    state: SenderState
    backlog: int
    last_error: str | None
    last_sent_seq: int
    topic: str
    broker: str | None


class _BrokerDown(Exception):
    """The broker could not be reached or did not acknowledge (message is for people)."""


class _KafkaLogTap(logging.Handler):
    """Keeps kafka-python's recent error log lines, to explain failures in ``last_error``.

    Installed on the ``kafka`` logger, it also keeps those lines off stderr
    when the application has configured no logging (``logging.lastResort``).
    """

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self._lines: collections.deque[tuple[float, str]] = collections.deque(maxlen=32)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a malformed log call must not break anything
            return
        self._lines.append((time.monotonic(), text.rsplit(">: ", 1)[-1].strip()))

    def latest_since(self, since: float) -> str | None:
        for when, text in reversed(self._lines):
            if when >= since and "Bootstrap failed" not in text:
                return text
        return None


_tap_lock = threading.Lock()
_tap: _KafkaLogTap | None = None


def _kafka_log_tap() -> _KafkaLogTap:
    global _tap
    with _tap_lock:
        if _tap is None:
            _tap = _KafkaLogTap()
            logging.getLogger("kafka").addHandler(_tap)
        return _tap


def _probe_tcp(settings: KafkaSettings) -> None:
    """Raise :class:`_BrokerDown` unless some bootstrap server accepts a TCP connection.

    Done with a plain socket before kafka-python is involved, so that an
    unreachable broker is reported clearly and quickly.
    """
    problems = []
    timeout = settings.connect_timeout_s
    for host, port in settings.bootstrap_hosts():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return
        except socket.gaierror as exc:
            problems.append(f"cannot resolve host {host!r} ({exc.strerror})")
        except ConnectionRefusedError:
            problems.append(f"connection refused by {host}:{port} (is the broker running?)")
        except TimeoutError:
            problems.append(f"no answer from {host}:{port} within {timeout:g} s")
        except OSError as exc:
            problems.append(f"cannot connect to {host}:{port}: {exc.strerror or exc}")
    raise _BrokerDown("Kafka unreachable: " + "; ".join(problems))


def _recording_factory(client_class: Any) -> tuple[Callable[..., Any] | None, list[Any]]:
    """A ``kafka_client`` factory remembering the clients it made (to close them on failure)."""
    made: list[Any] = []
    base = getattr(client_class, "DEFAULT_CONFIG", {}).get("kafka_client")
    if base is None:
        return None, made

    def factory(*args: Any, **kwargs: Any) -> Any:
        client = base(*args, **kwargs)
        made.append(client)
        return client

    return factory, made


def _close_quietly(obj: Any, *args: Any, **kwargs: Any) -> None:
    with contextlib.suppress(Exception):
        obj.close(*args, **kwargs)


class _KafkaLink:
    """A producer (created lazily) for one topic; every failure becomes :class:`_BrokerDown`."""

    def __init__(
        self, settings: KafkaSettings, topic: str, stopping: Callable[[], bool] = lambda: False
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.stopping = stopping
        self.producer: Any = None

    def _explain(self, exc: BaseException, since: float) -> str:
        name, message = type(exc).__name__, str(exc)
        text = message if message.startswith(name) else f"{name}: {message}" if message else name
        detail = _kafka_log_tap().latest_since(since)
        if detail and detail not in text:
            text = f"{text} ({detail})"
        if self.settings.security_protocol != "PLAINTEXT":
            text += f" [security_protocol={self.settings.security_protocol}"
            if self.settings.sasl_mechanism:
                text += f", sasl_mechanism={self.settings.sasl_mechanism}"
            text += "]"
        return self.settings.redact(f"Kafka at {self.settings.bootstrap_servers}: {text}")

    def connect(self) -> None:
        """Create the producer and make sure the topic exists."""
        if self.producer is not None:
            return
        _probe_tcp(self.settings)
        kafka = import_kafka()
        since = time.monotonic()
        kwargs = producer_kwargs(self.settings)
        factory, made = _recording_factory(kafka.KafkaProducer)
        if factory is not None:
            kwargs["kafka_client"] = factory
        try:
            self.producer = kafka.KafkaProducer(**kwargs)
        except Exception as exc:
            for client in made:
                _close_quietly(client)
            raise _BrokerDown(self._explain(exc, since)) from None
        self._ensure_topic(kafka)

    def _ensure_topic(self, kafka: Any) -> None:
        """Create the topic (one partition) if missing; failures are left to auto-creation."""
        kwargs = admin_kwargs(self.settings)
        factory, made = _recording_factory(kafka.KafkaAdminClient)
        if factory is not None:
            kwargs["kafka_client"] = factory
        admin = None
        try:
            admin = kafka.KafkaAdminClient(**kwargs)
            if self.topic not in admin.list_topics():
                new_topic = kafka.admin.NewTopic(self.topic, num_partitions=1, replication_factor=1)
                admin.create_topics([new_topic])
        except kafka.errors.TopicAlreadyExistsError:
            pass
        except Exception as exc:
            reason = self.settings.redact(str(exc))
            log.warning("could not create Kafka topic %s: %s", self.topic, reason)
        finally:
            if admin is not None:
                _close_quietly(admin)
            else:
                for client in made:
                    _close_quietly(client)

    def send(self, events: list[OutboxEvent], key: bytes) -> tuple[int | None, str | None]:
        """Produce ``events`` in order and wait for their acknowledgement.

        Returns
        -------
        (last_acked_seq, error)
            The last ``seq`` of the acknowledged prefix of ``events`` (None if
            none) and, when not all were acknowledged, why.
        """
        since = time.monotonic()
        producer = self.producer
        futures = []
        error: str | None = None
        try:
            for event in events:
                headers = [
                    ("segmend-seq", str(event.seq).encode()),
                    ("segmend-action", event.action.encode()),
                ]
                future = producer.send(self.topic, key=key, value=event.payload, headers=headers)
                futures.append((event.seq, future))
            self._wait_for_acks(producer, futures)
        except _BrokerDown as exc:
            error = str(exc)
        except Exception as exc:
            error = self._explain(exc, since)
        acked: int | None = None
        for seq, future in futures:
            if not (future.is_done and future.succeeded()):
                if error is None:
                    reason = future.exception if future.is_done else None
                    error = self._explain(reason or TimeoutError("no acknowledgement"), since)
                break
            acked = seq
        if error is None and len(futures) < len(events):
            error = "Kafka: not every event could be queued"
        return acked, error

    def _wait_for_acks(self, producer: Any, futures: list[tuple[int, Any]]) -> None:
        """Wait until every future is done, up to ``request_timeout_s``.

        Every second without completion the broker's port is probed, so that
        a broker that went away is reported at once rather than at the timeout.
        """
        deadline = time.monotonic() + self.settings.request_timeout_s
        while not all(future.is_done for _, future in futures):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.stopping():
                return
            with contextlib.suppress(import_kafka().errors.KafkaTimeoutError):
                producer.flush(timeout=min(1.0, remaining))
            if not all(future.is_done for _, future in futures):
                _probe_tcp(self.settings)

    def close(self) -> None:
        """Close the producer, dropping records not yet acknowledged (they stay in the outbox)."""
        producer, self.producer = self.producer, None
        if producer is not None:
            _close_producer(producer)


def _close_producer(producer: Any, timeout: float = 2.0) -> None:
    """Close a kafka-python producer even when its records cannot be delivered.

    ``KafkaProducer.close()`` first flushes, and gives up (raising, leaving the
    producer and its I/O thread alive) when records cannot be delivered — the
    usual case here, as the broker is gone.  Force-closing its I/O thread first
    fails those records, so that ``close`` then completes.
    """
    io_thread = getattr(producer, "_sender", None)
    if io_thread is not None and hasattr(io_thread, "force_close"):
        with contextlib.suppress(Exception):
            io_thread.force_close()
            io_thread.join(timeout)
    try:
        producer.close(timeout=timeout)
    except Exception as exc:
        log.debug("closing the Kafka producer: %s", exc)


def probe_broker(settings: KafkaSettings) -> tuple[SenderState, str | None]:
    """Try to reach the broker once (TCP, then a Kafka handshake).

    Returns
    -------
    (state, error)
        ``("off", None)`` when Kafka is off, ``("connected", None)`` or
        ``("down", reason)``.  Never raises for broker problems.
    """
    if not settings.enabled:
        return "off", None
    _kafka_log_tap()
    link = _KafkaLink(settings, topic="")
    try:
        _probe_tcp(settings)
        kafka = import_kafka()
        since = time.monotonic()
        kwargs = admin_kwargs(settings)
        factory, made = _recording_factory(kafka.KafkaAdminClient)
        if factory is not None:
            kwargs["kafka_client"] = factory
        try:
            admin = kafka.KafkaAdminClient(**kwargs)
        except Exception as exc:
            for client in made:
                _close_quietly(client)
            raise _BrokerDown(link._explain(exc, since)) from None
        _close_quietly(admin)
        return "connected", None
    except _BrokerDown as exc:
        return "down", str(exc)


class OutboxSender:
    """Publishes a journal's outbox to Kafka from a daemon thread.

    Parameters
    ----------
    journal : str or Path
        The journal's SQLite file (created, with the outbox schema, by its
        owner; WAL mode is the owner's business).  The sender opens its own
        connection, in its own thread.
    settings : KafkaSettings
        Where to send; ``bootstrap_servers=None`` keeps the sender ``"off"``.
    repo_uuid, data_uuid : str
        Name the topic (:func:`~app.model.events.settings.topic_name`);
        ``data_uuid`` is also every record's key.
    batch_size : int
        Most events produced before waiting for acknowledgements.
    batch_bytes : int
        Most payload bytes per batch (at least one event is always sent).
    poll_interval : float
        Seconds between looks at the outbox when idle (other processes may
        append without calling :meth:`wake`).
    min_backoff : float
        First retry delay after a failure; it doubles up to ``settings.max_backoff_s``.

    Notes
    -----
    ``status_changed(SenderStatus)`` is emitted **from the sender thread**
    whenever the status changes; Qt code must hand it to the GUI thread (e.g.
    ``sender.status_changed.connect(slot, thread=...)`` or a queued signal).
    """

    #: Emitted, from the sender thread, with the new :class:`SenderStatus`.
    status_changed = Signal(SenderStatus)

    def __init__(
        self,
        journal: str | Path,
        settings: KafkaSettings,
        *,
        repo_uuid: str,
        data_uuid: str,
        batch_size: int = 500,
        batch_bytes: int = 8 << 20,
        poll_interval: float = 1.0,
        min_backoff: float = 0.2,
    ) -> None:
        if batch_size <= 0 or batch_bytes <= 0:
            raise ValueError("batch_size and batch_bytes must be positive")
        if poll_interval <= 0 or min_backoff <= 0:
            raise ValueError("poll_interval and min_backoff must be positive")
        self.journal = Path(journal)
        self.settings = settings
        self.topic = topic_name(settings.topic_prefix, repo_uuid, data_uuid)
        self.key = data_uuid.encode()
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.poll_interval = poll_interval
        self.min_backoff = min_backoff
        if settings.enabled:
            import_kafka()  # here, in the caller's thread (see import_kafka)
            _kafka_log_tap()
        self._cond = threading.Condition()
        self._stopping = False
        self._new_events = False
        self._kicked = False
        self._flush_gen = 0
        self._flushed_gen = 0
        self._gave_up_gen = 0
        self._status = SenderStatus(
            state="off" if not settings.enabled else "connecting",
            backlog=0,
            last_error=None,
            last_sent_seq=0,
            topic=self.topic,
            broker=settings.bootstrap_servers,
        )
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- public API

    def start(self) -> OutboxSender:
        """Start the sender thread (once); returns ``self``."""
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"segmend-outbox-{self.topic[-12:]}", daemon=True
                )
                self._thread.start()
        return self

    def __enter__(self) -> OutboxSender:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def status(self) -> SenderStatus:
        """The current status (thread-safe; never blocks on the broker)."""
        with self._cond:
            return self._status

    def wake(self) -> None:
        """Tell the sender that new events were committed to the outbox."""
        with self._cond:
            self._new_events = True
            self._cond.notify_all()

    def flush(self, timeout: float) -> bool:
        """Block until every event committed before this call is acknowledged.

        A sender backing off after a failure retries at once.

        Parameters
        ----------
        timeout : float
            Longest wait in seconds.

        Returns
        -------
        bool
            True if the backlog was seen empty; False on timeout, when Kafka is
            off with events waiting, or when the sender is not running.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._thread is None or not self._thread.is_alive() or self._stopping:
                return False
            self._flush_gen += 1
            mine = self._flush_gen
            self._kicked = True
            self._cond.notify_all()
            while self._flushed_gen < mine:
                if self._gave_up_gen >= mine:
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._cond.wait(min(remaining, 0.5))
            return True

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the thread (events not yet sent stay in the outbox).

        Returns
        -------
        bool
            Whether the thread ended within ``timeout`` seconds.
        """
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    # ----------------------------------------------------------------- the thread

    def _set_status(self, **changes: Any) -> None:
        with self._cond:
            old = self._status
            new = SenderStatus(
                state=changes.get("state", old.state),
                backlog=changes.get("backlog", old.backlog),
                last_error=changes.get("last_error", old.last_error),
                last_sent_seq=changes.get("last_sent_seq", old.last_sent_seq),
                topic=old.topic,
                broker=old.broker,
            )
            self._status = new
        if new != old:
            try:
                self.status_changed.emit(new)
            except Exception:  # a faulty slot must not stop the sender
                log.exception("a status_changed slot raised")

    def _sleep(self, seconds: float, *, on_new_events: bool) -> None:
        """Wait ``seconds``, or less if stopped, flushed, or (if asked) woken by new events."""
        deadline = time.monotonic() + seconds
        with self._cond:
            while not (self._stopping or self._kicked or (on_new_events and self._new_events)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            self._kicked = False
            if on_new_events:
                self._new_events = False

    def _open_journal(self) -> sqlite3.Connection:
        if not self.journal.exists():
            raise sqlite3.OperationalError(f"journal {self.journal} does not exist")
        conn = sqlite3.connect(f"{self.journal.resolve().as_uri()}?mode=rw", uri=True, timeout=5.0)
        conn.execute("PRAGMA busy_timeout = 5000")
        return conn

    def _read_batch(self, conn: sqlite3.Connection, cursor: int) -> list[OutboxEvent]:
        events = pending(conn, cursor, self.batch_size)
        total = 0
        for i, event in enumerate(events):
            total += len(event.payload)
            if total > self.batch_bytes and i > 0:
                return events[:i]
        return events

    def _run(self) -> None:
        link = (
            _KafkaLink(self.settings, self.topic, lambda: self._stopping)
            if self.settings.enabled
            else None
        )
        conn: sqlite3.Connection | None = None
        cursor = 0
        backoff = self.min_backoff
        try:
            while True:
                with self._cond:
                    if self._stopping:
                        break
                    gen = self._flush_gen
                    self._new_events = False
                    self._kicked = False
                try:
                    if conn is None:
                        conn = self._open_journal()
                        cursor = last_sent_seq(conn)
                    if link is None:
                        self._idle_off(conn, gen)
                        continue
                    events = self._read_batch(conn, cursor)
                    if not events:
                        self._set_status(backlog=0, last_sent_seq=max(cursor, last_sent_seq(conn)))
                        self._answer_flush(gen, ok=True)
                        self._sleep(self.poll_interval, on_new_events=True)
                        continue
                    self._set_status(backlog=backlog(conn))
                    if link.producer is None:
                        if self._status.state != "down":
                            self._set_status(state="connecting")
                        link.connect()
                        self._set_status(state="connected")
                    acked, error = link.send(events, self.key)
                    if acked is not None:
                        mark_sent(conn, acked)
                        cursor = acked
                        self._set_status(
                            state="connected" if error is None else "down",
                            backlog=backlog(conn),
                            last_sent_seq=acked,
                            last_error=None if error is None else error,
                        )
                    if error is not None:
                        raise _BrokerDown(error)
                    backoff = self.min_backoff
                except _BrokerDown as exc:
                    if link is not None:
                        link.close()
                    backlog_now = self._status.backlog
                    if conn is not None:
                        with contextlib.suppress(sqlite3.Error):
                            backlog_now = backlog(conn)
                    self._set_status(state="down", last_error=str(exc), backlog=backlog_now)
                    self._sleep(backoff, on_new_events=False)
                    backoff = min(backoff * 2, self.settings.max_backoff_s)
                except sqlite3.Error as exc:
                    if conn is not None:
                        _close_quietly(conn)
                        conn = None
                    self._set_status(last_error=f"journal {self.journal}: {exc}")
                    self._sleep(backoff, on_new_events=False)
                    backoff = min(backoff * 2, self.settings.max_backoff_s)
                except Exception as exc:  # never let the thread die
                    log.exception("outbox sender for %s failed", self.topic)
                    if link is not None:
                        link.close()
                    self._set_status(
                        state="down" if link is not None else "off",
                        last_error=self.settings.redact(f"{type(exc).__name__}: {exc}"),
                    )
                    self._sleep(backoff, on_new_events=False)
                    backoff = min(backoff * 2, self.settings.max_backoff_s)
        finally:
            if link is not None:
                link.close()
            if conn is not None:
                _close_quietly(conn)
            with self._cond:
                self._cond.notify_all()

    def _idle_off(self, conn: sqlite3.Connection, gen: int) -> None:
        """Kafka off: keep the status current, answer flushes, sleep."""
        waiting = backlog(conn)
        self._set_status(state="off", backlog=waiting, last_sent_seq=last_sent_seq(conn))
        self._answer_flush(gen, ok=waiting == 0)
        self._sleep(self.poll_interval, on_new_events=True)

    def _answer_flush(self, gen: int, *, ok: bool) -> None:
        with self._cond:
            if ok:
                self._flushed_gen = max(self._flushed_gen, gen)
            else:
                self._gave_up_gen = max(self._gave_up_gen, gen)
            self._cond.notify_all()
