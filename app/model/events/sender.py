"""The outbox sender: a background thread publishing outbox events to Kafka.

:class:`OutboxSender` reads the outbox of a journal with its own SQLite
connection and produces each event, in ``seq`` order, to its data instance's
topic with that instance's data UUID as the key (one partition key per topic,
so Kafka keeps their order): the dataset's ``data_uuid`` for the labels' events,
the registry's (:mod:`app.model.events.instances`) for the other instances'.
It marks events sent only once the broker has
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

import contextlib
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from psygnal import Signal

from app.model.events.instances import instance_uuids
from app.model.events.kafka_client import import_kafka
from app.model.events.kafka_link import (
    BrokerDown,
    KafkaLink,
    Routed,
    check_broker,
    close_quietly,
    kafka_log_tap,
)
from app.model.events.outbox import OutboxEvent, backlog, last_sent_seq, mark_sent, pending
from app.model.events.settings import KafkaSettings, topic_name
from app.model.journal.journal_db import connect

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
        The Kafka topic of the labels (the other instances' are theirs).
    broker : str or None
        The bootstrap servers (None when off).
    """

    state: SenderState
    backlog: int
    last_error: str | None
    last_sent_seq: int
    topic: str
    broker: str | None


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
    error = check_broker(settings)
    return ("connected", None) if error is None else ("down", error)


class OutboxSender:
    """Publishes a journal's outbox to Kafka from a daemon thread.

    Parameters
    ----------
    journal : str or Path
        The journal's SQLite file (created, with the outbox schema, by its
        owner).  The sender opens its own connection
        (:func:`app.model.journal.journal_db.connect`), in its own thread.
    settings : KafkaSettings
        Where to send; ``bootstrap_servers=None`` keeps the sender ``"off"``.
    repo_uuid, data_uuid : str
        Name the labels' topic (:func:`~app.model.events.settings.topic_name`);
        ``data_uuid`` is also the key of their records.  The events of another
        data instance go to the topic named by ``repo_uuid`` and the
        instance's data UUID (its key), read from the journal's registry when
        the sender first meets the instance.
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
        self.repo_uuid = repo_uuid
        self.topic = topic_name(settings.topic_prefix, repo_uuid, data_uuid)
        self.key = data_uuid.encode()
        # (the sender thread's: instance (None: the labels) -> topic, key)
        self._routes: dict[str | None, tuple[str, bytes]] = {None: (self.topic, self.key)}
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.poll_interval = poll_interval
        self.min_backoff = min_backoff
        if settings.enabled:
            import_kafka()  # here, in the caller's thread (see import_kafka)
            kafka_log_tap()
        self._cond = threading.Condition()
        self._stopping = False
        self._new_events = False
        self._kicked = False
        self._flush_gen = 0
        self._flushed_gen = 0
        self._gave_up_gen = 0
        self._fail_fast: set[int] = set()
        self._held_after: int | None = None  # (hold(): the last seq that may be sent)
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

    def hold(self, upto: int) -> None:
        """Send no event after seq ``upto`` until :meth:`release`.  For commits
        that are not durable yet (a group commit,
        :meth:`app.model.journal.journal.Journal.deferred`): Kafka must not see
        a mutation a power cut could still take back.  The thread filters each
        batch it read by the limit it reads afterwards, so an event committed
        after the hold began is never sent before the release."""
        self._held_after = upto

    def release(self) -> None:
        """Send again what :meth:`hold` held back."""
        self._held_after = None
        self.wake()

    def flush(self, timeout: float, *, give_up_on_failure: bool = False) -> bool:
        """Block until every event committed before this call is acknowledged.

        A sender backing off after a failure retries at once.

        Parameters
        ----------
        timeout : float
            Longest wait in seconds.
        give_up_on_failure : bool
            Return False as soon as a delivery attempt fails, instead of
            waiting for the retries (a command about to exit: its events wait
            in the outbox for the next sender).

        Returns
        -------
        bool
            True if the backlog was seen empty; False on timeout, when Kafka is
            off with events waiting, when the sender is not running, or (if
            asked) at the first failed attempt.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._thread is None or not self._thread.is_alive() or self._stopping:
                return False
            self._flush_gen += 1
            mine = self._flush_gen
            if give_up_on_failure:
                self._fail_fast.add(mine)
            self._kicked = True
            self._cond.notify_all()
            try:
                while self._flushed_gen < mine:
                    failed = give_up_on_failure and mine not in self._fail_fast
                    if failed or self._gave_up_gen >= mine:
                        return False
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not self._thread.is_alive():
                        return False
                    self._cond.wait(min(remaining, 0.5))
                return True
            finally:
                self._fail_fast.discard(mine)

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
            KafkaLink(self.settings, lambda: self._stopping)
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
                        conn = connect(self.journal, readonly=False)
                        cursor = last_sent_seq(conn)
                    if link is None:
                        self._idle_off(conn, gen)
                        continue
                    events = self._read_batch(conn, cursor)
                    held_after = self._held_after  # (read after the batch: see hold())
                    if held_after is not None and events and events[-1].seq > held_after:
                        events = [e for e in events if e.seq <= held_after]
                        if not events:
                            self._sleep(self.poll_interval, on_new_events=True)
                            continue
                    if not events:
                        self._set_status(backlog=0, last_sent_seq=max(cursor, last_sent_seq(conn)))
                        self._answer_flush(gen, ok=True)
                        self._sleep(self.poll_interval, on_new_events=True)
                        continue
                    cursor = self._send(conn, link, events)
                    backoff = self.min_backoff
                except BrokerDown as exc:
                    if link is not None:
                        link.close()
                    backlog_now = self._status.backlog
                    if conn is not None:
                        with contextlib.suppress(sqlite3.Error):
                            backlog_now = backlog(conn)
                    self._set_status(state="down", last_error=str(exc), backlog=backlog_now)
                    self._give_up_fail_fast()
                    self._sleep(backoff, on_new_events=False)
                    backoff = min(backoff * 2, self.settings.max_backoff_s)
                except sqlite3.Error as exc:
                    if conn is not None:
                        close_quietly(conn)
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
                    if link is not None:
                        self._give_up_fail_fast()
                    self._sleep(backoff, on_new_events=False)
                    backoff = min(backoff * 2, self.settings.max_backoff_s)
        finally:
            if link is not None:
                link.close()
            if conn is not None:
                close_quietly(conn)
            with self._cond:
                self._cond.notify_all()

    def _send(self, conn: sqlite3.Connection, link: KafkaLink, events: list[OutboxEvent]) -> int:
        """Produce ``events`` (connecting first if needed) and mark the acknowledged ones sent.

        Returns
        -------
        int
            The last ``seq`` of ``events``, all acknowledged.

        Raises
        ------
        BrokerDown
            If some were not acknowledged (those that were are marked sent).
        """
        records = self._routed(conn, events)
        self._set_status(backlog=backlog(conn))
        if link.producer is None:
            if self._status.state != "down":
                self._set_status(state="connecting")
            link.connect()
            self._set_status(state="connected")
        acked, error = link.send(records)
        if acked is not None:
            mark_sent(conn, acked)
            self._set_status(
                state="connected" if error is None else "down",
                backlog=backlog(conn),
                last_sent_seq=acked,
                last_error=error,
            )
        if error is not None:
            raise BrokerDown(error)
        assert acked is not None
        return acked

    def _routed(self, conn: sqlite3.Connection, events: list[OutboxEvent]) -> list[Routed]:
        """``events`` with their topic and key; the registry is read again for
        an instance not seen yet (registered after the sender started).

        Raises
        ------
        LookupError
            If an event names an instance the registry does not have.
        """
        records = []
        for event in events:
            route = self._routes.get(event.instance)
            if route is None:
                for name, data_uuid in instance_uuids(conn).items():
                    topic = topic_name(self.settings.topic_prefix, self.repo_uuid, data_uuid)
                    self._routes[name] = (topic, data_uuid.encode())
                route = self._routes.get(event.instance)
                if route is None:
                    raise LookupError(
                        f"outbox event {event.seq} is of data instance {event.instance!r}, "
                        "which is not registered"
                    )
            records.append(Routed(route[0], route[1], event))
        return records

    def _idle_off(self, conn: sqlite3.Connection, gen: int) -> None:
        """Kafka off: keep the status current, answer flushes, sleep."""
        waiting = backlog(conn)
        self._set_status(state="off", backlog=waiting, last_sent_seq=last_sent_seq(conn))
        self._answer_flush(gen, ok=waiting == 0)
        self._sleep(self.poll_interval, on_new_events=True)

    def _give_up_fail_fast(self) -> None:
        """A delivery attempt failed: the flushes that asked to give up then return False."""
        with self._cond:
            self._fail_fast.clear()
            self._cond.notify_all()

    def _answer_flush(self, gen: int, *, ok: bool) -> None:
        with self._cond:
            if ok:
                self._flushed_gen = max(self._flushed_gen, gen)
            else:
                self._gave_up_gen = max(self._gave_up_gen, gen)
            self._cond.notify_all()
