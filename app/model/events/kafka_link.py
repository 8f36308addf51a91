"""The link to the Kafka broker: a producer (each record naming its topic), and a
reachability check.

Every failure to reach the broker, connect to it or have it acknowledge becomes
a :class:`BrokerDown` whose message is for people: it names the broker, adds
kafka-python's own latest error log line (kept by a handler on the ``kafka``
logger, which also keeps those lines off stderr) and never contains the SASL
password.  A plain TCP probe runs before kafka-python is involved, so that an
unreachable broker is reported clearly and quickly.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from app.model.events.kafka_client import admin_kwargs, import_kafka, producer_kwargs
from app.model.events.outbox import OutboxEvent
from app.model.events.settings import KafkaSettings

__all__ = [
    "BrokerDown",
    "KafkaLink",
    "Routed",
    "check_broker",
    "close_quietly",
    "kafka_log_tap",
]

log = logging.getLogger(__name__)


class BrokerDown(Exception):
    """The broker could not be reached or did not acknowledge (message is for people)."""


class Routed(NamedTuple):
    """An outbox event with where it goes: its instance's topic, and the record key."""

    topic: str
    key: bytes
    event: OutboxEvent


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


def kafka_log_tap() -> _KafkaLogTap:
    global _tap
    with _tap_lock:
        if _tap is None:
            _tap = _KafkaLogTap()
            logging.getLogger("kafka").addHandler(_tap)
        return _tap


def _probe_tcp(settings: KafkaSettings) -> None:
    """Raise :class:`BrokerDown` unless some bootstrap server accepts a TCP connection.

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
    raise BrokerDown("Kafka unreachable: " + "; ".join(problems))


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


def close_quietly(obj: Any, *args: Any, **kwargs: Any) -> None:
    with contextlib.suppress(Exception):
        obj.close(*args, **kwargs)


class KafkaLink:
    """A producer (created lazily) for records of any topic; every failure becomes
    :class:`BrokerDown`.  Each topic is created (one partition) before its
    first record, once per connection."""

    def __init__(
        self, settings: KafkaSettings, stopping: Callable[[], bool] = lambda: False
    ) -> None:
        self.settings = settings
        self.stopping = stopping
        self.producer: Any = None
        self._topics: set[str] = set()  # (made sure of since the producer was created)

    def _explain(self, exc: BaseException, since: float) -> str:
        name, message = type(exc).__name__, str(exc)
        text = message if message.startswith(name) else f"{name}: {message}" if message else name
        detail = kafka_log_tap().latest_since(since)
        if detail and detail not in text:
            text = f"{text} ({detail})"
        if self.settings.security_protocol != "PLAINTEXT":
            text += f" [security_protocol={self.settings.security_protocol}"
            if self.settings.sasl_mechanism:
                text += f", sasl_mechanism={self.settings.sasl_mechanism}"
            text += "]"
        return self.settings.redact(f"Kafka at {self.settings.bootstrap_servers}: {text}")

    def connect(self) -> None:
        """Create the producer (the topics are made sure of by :meth:`send`)."""
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
                close_quietly(client)
            raise BrokerDown(self._explain(exc, since)) from None
        self._topics.clear()

    def _ensure_topics(self, topics: list[str]) -> None:
        """Create the topics (one partition each) that are missing; failures are
        left to auto-creation."""
        kafka = import_kafka()
        self._topics.update(topics)
        kwargs = admin_kwargs(self.settings)
        factory, made = _recording_factory(kafka.KafkaAdminClient)
        if factory is not None:
            kwargs["kafka_client"] = factory
        admin = None
        try:
            admin = kafka.KafkaAdminClient(**kwargs)
            existing = set(admin.list_topics())
            for topic in topics:
                if topic in existing:
                    continue
                new_topic = kafka.admin.NewTopic(topic, num_partitions=1, replication_factor=1)
                with contextlib.suppress(kafka.errors.TopicAlreadyExistsError):
                    admin.create_topics([new_topic])
        except Exception as exc:
            reason = self.settings.redact(str(exc))
            log.warning("could not create Kafka topics %s: %s", ", ".join(topics), reason)
        finally:
            if admin is not None:
                close_quietly(admin)
            else:
                for client in made:
                    close_quietly(client)

    def send(self, records: Sequence[Routed]) -> tuple[int | None, str | None]:
        """Produce ``records`` in order, each to its topic with its key, and wait
        for their acknowledgement (creating each topic first if it is new).

        Returns
        -------
        (last_acked_seq, error)
            The last ``seq`` of the acknowledged prefix of ``records`` (None if
            none) and, when not all were acknowledged, why.
        """
        new_topics = [t for t in dict.fromkeys(r.topic for r in records) if t not in self._topics]
        if new_topics:
            self._ensure_topics(new_topics)
        since = time.monotonic()
        producer = self.producer
        futures = []
        error: str | None = None
        try:
            for topic, key, event in records:
                headers = [
                    ("segmend-seq", str(event.seq).encode()),
                    ("segmend-action", event.action.encode()),
                ]
                future = producer.send(topic, key=key, value=event.payload, headers=headers)
                futures.append((event.seq, future))
            self._wait_for_acks(producer, futures)
        except BrokerDown as exc:
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
        if error is None and len(futures) < len(records):
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
        self._topics.clear()
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




def check_broker(settings: KafkaSettings) -> str | None:
    """Reach the broker once (TCP, then a Kafka handshake).

    Returns
    -------
    str or None
        None if the broker answered, else why not (for people, no secrets).
        Never raises for broker problems.
    """
    kafka_log_tap()
    link = KafkaLink(settings)
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
                close_quietly(client)
            raise BrokerDown(link._explain(exc, since)) from None
        close_quietly(admin)
        return None
    except BrokerDown as exc:
        return str(exc)
