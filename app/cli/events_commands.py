"""``segmend events status|flush|tail`` and ``segmend blob get``.

The events of dataset ``FILE`` wait in the outbox of its journal
(``app.model.journal.sidecar.journal_path(FILE)``); these commands show the backlog
and the Kafka connection state, publish the backlog, list recent events, and
print blobs (split regions, oversized message fields) by reference.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from app.cli.output import SQLITE_MAX_INT, bounded_int, emit
from app.model.checkpoint_problem import read_checkpoint_problem
from app.model.errors import SegmendError
from app.model.events.outbox import OutboxEvent
from app.model.events.outbox_view import (
    outbox_counts,
    outbox_tail,
    read_blob,
    registered_instances,
)
from app.model.events.sender import OutboxSender, probe_broker
from app.model.events.settings import KafkaSettings, load_settings, topic_name
from app.model.journal.sidecar import journal_path

__all__ = ["cmd_blob_get", "cmd_events_flush", "cmd_events_status", "cmd_events_tail", "register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``events`` and ``blob`` to the ``segmend`` parser."""
    events = sub.add_parser("events", help="the Kafka event outbox: status, flush, tail")
    actions = events.add_subparsers(
        dest="events_command", metavar="ACTION", required=True, help="what to do"
    )

    p = actions.add_parser("status", help="backlog and Kafka connection state")
    _dataset_args(p, kafka=True)
    p.set_defaults(func=cmd_events_status)

    p = actions.add_parser("flush", help="publish every waiting event, then exit")
    _dataset_args(p, kafka=True)
    p.add_argument(
        "--timeout",
        type=_positive_float,
        default=60.0,
        metavar="S",
        help="give up after S seconds (default 60)",
    )
    p.set_defaults(func=cmd_events_flush)

    p = actions.add_parser("tail", help="the last events of the outbox")
    _dataset_args(p, kafka=False)
    p.add_argument(
        "-n", type=bounded_int(1, SQLITE_MAX_INT), default=10, metavar="N",
        help="how many (default 10)",
    )
    p.set_defaults(func=cmd_events_tail)

    blob = sub.add_parser("blob", help="the dataset's blob store")
    blob_actions = blob.add_subparsers(
        dest="blob_command", metavar="ACTION", required=True, help="what to do"
    )
    p = blob_actions.add_parser("get", help="a blob's bytes, to standard output by default")
    p.add_argument("file", help="the pyramid file")
    p.add_argument("ref", help="the blob reference (64 hex digits)")
    p.add_argument("--out", type=Path, metavar="PATH", help="write the bytes to PATH instead")
    p.set_defaults(func=cmd_blob_get)


def _dataset_args(p: argparse.ArgumentParser, *, kafka: bool) -> None:
    p.add_argument("file", help="the pyramid file")
    if kafka:
        p.add_argument("--kafka", metavar="HOST:PORT", help="the broker (overrides the config)")
        p.add_argument("--topic-prefix", metavar="P", help="prefix of the topic name")
        p.add_argument("--config", type=Path, metavar="PATH", help="config file ([kafka] section)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= threading.TIMEOUT_MAX:
        raise argparse.ArgumentTypeError(
            f"must be a positive number of seconds up to {threading.TIMEOUT_MAX:g}, got {text}"
        )
    return value


# --------------------------------------------------------------------------- helpers


def _uuids(path: str | Path) -> tuple[str, str]:
    """``(repo_uuid, data_uuid)`` of the dataset (h5py loads here, not with the parser)."""
    from app.model.dataset_ids import dataset_uuids

    return dataset_uuids(path)


def _outbox_counts(path: str | Path) -> dict[str, int]:
    return dataclasses.asdict(outbox_counts(path))


def _settings(args: argparse.Namespace) -> KafkaSettings:
    return load_settings(
        getattr(args, "config", None),
        bootstrap_servers=getattr(args, "kafka", None),
        topic_prefix=getattr(args, "topic_prefix", None),
    )


# --------------------------------------------------------------------------- commands


def cmd_events_status(args: argparse.Namespace) -> int:
    """``segmend events status FILE``: backlog, topics, and whether the broker answers."""
    settings = _settings(args)
    repo_uuid, data_uuid = _uuids(args.file)
    counts = _outbox_counts(args.file)
    others = [
        {
            "name": name,
            "type": kind,
            "data_uuid": uuid,
            "topic": topic_name(settings.topic_prefix, repo_uuid, uuid),
        }
        for name, kind, uuid in registered_instances(args.file)
    ]
    state, error = probe_broker(settings)
    result: dict[str, Any] = {
        "file": str(args.file),
        "journal": str(journal_path(args.file)),
        "topic": topic_name(settings.topic_prefix, repo_uuid, data_uuid),
        "instances": others,
        "broker": settings.bootstrap_servers,
        "state": state,
        **counts,
        "last_error": error,
        "checkpoint_problem": read_checkpoint_problem(Path(args.file)),
    }
    emit(args, result, _format_status)
    return 0


def _format_status(r: dict[str, Any]) -> str:
    kafka = "off (no broker configured)" if r["state"] == "off" else f"{r['broker']} ({r['state']})"
    lines = [
        f"topic:    {r['topic']}",
        *(f"instance: {i['name']} ({i['type']}) -> {i['topic']}" for i in r["instances"]),
        f"kafka:    {kafka}",
        f"backlog:  {r['backlog']} event(s) waiting "
        f"(sent up to seq {r['last_sent_seq']} of {r['last_seq']})",
    ]
    if r["last_error"]:
        lines.append(f"error:    {r['last_error']}")
    if r["checkpoint_problem"]:
        lines.append(f"file:     {r['checkpoint_problem']}")
    return "\n".join(lines)


def cmd_events_flush(args: argparse.Namespace) -> int:
    """``segmend events flush FILE``: publish the backlog; fails if some is left."""
    settings = _settings(args)
    repo_uuid, data_uuid = _uuids(args.file)
    before = _outbox_counts(args.file)
    topic = topic_name(settings.topic_prefix, repo_uuid, data_uuid)
    result: dict[str, Any] = {
        "topic": topic,
        "instances": [name for name, _kind, _uuid in registered_instances(args.file)],
        "broker": settings.bootstrap_servers,
    }
    if before["backlog"] == 0:
        emit(args, {**result, "sent": 0, "backlog": 0, "state": "idle"}, _format_flush)
        return 0
    if not settings.enabled:
        raise SegmendError(
            f"{before['backlog']} event(s) waiting but no Kafka broker is configured: "
            "pass --kafka HOST:PORT or set bootstrap_servers in the [kafka] config section"
        )
    state, error = probe_broker(settings)  # a broker that is down fails at once, not at --timeout
    if state == "down":
        broker = str(settings.bootstrap_servers)
        where = "" if error and broker in error else f"broker {broker}: "
        raise SegmendError(f"{before['backlog']} event(s) still waiting (sent 0): {where}{error}")
    start = time.monotonic()
    sender = OutboxSender(
        journal_path(args.file), settings, repo_uuid=repo_uuid, data_uuid=data_uuid
    ).start()
    try:
        done = sender.flush(args.timeout)
        status = sender.status()
    finally:
        sender.stop(timeout=settings.request_timeout_s)
    after = _outbox_counts(args.file)
    result.update(
        sent=after["last_sent_seq"] - before["last_sent_seq"],
        backlog=after["backlog"],
        state=status.state,
        seconds=round(time.monotonic() - start, 3),
    )
    if not done or after["backlog"]:
        reason = status.last_error or f"not done within {args.timeout:g} s"
        raise SegmendError(
            f"{after['backlog']} event(s) still waiting (sent {result['sent']}): {reason}"
        )
    emit(args, result, _format_flush)
    return 0


def _format_flush(r: dict[str, Any]) -> str:
    if r["sent"] == 0 and r["backlog"] == 0:
        return f"nothing to send: the outbox of {r['topic']} is empty"
    others = f" and the topics of {', '.join(r['instances'])}" if r["instances"] else ""
    return f"sent {r['sent']} event(s) to {r['topic']}{others} at {r['broker']}"


def _event_json(event: OutboxEvent) -> dict[str, Any]:
    try:
        message: Any = json.loads(event.payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        message = event.payload.decode("utf-8", errors="replace")
    return {
        "seq": event.seq,
        "mutation_id": event.mutation_id,
        "action": event.action,
        "sent": event.sent,
        "instance": event.instance,
        "message": message,
    }


def cmd_events_tail(args: argparse.Namespace) -> int:
    """``segmend events tail FILE [-n N]``: the last N events, oldest first."""
    _uuids(args.file)  # a pyramid file (not a missing file, nor another HDF5)
    events = outbox_tail(args.file, args.n)
    emit(args, [_event_json(e) for e in events], _format_tail)
    return 0


def _format_tail(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "the outbox is empty"
    return "\n".join(
        f"{r['seq']:>8}  {'sent   ' if r['sent'] else 'waiting'}  {r['instance'] or 'labels':<10} "
        f"mutation {r['mutation_id']:<6} {json.dumps(r['message'], separators=(',', ':'))}"
        for r in rows
    )


def cmd_blob_get(args: argparse.Namespace) -> int:
    """``segmend blob get FILE REF [--out PATH]``: the blob's bytes."""
    data = read_blob(args.file, args.ref)
    if args.out is not None:
        try:
            args.out.write_bytes(data)
        except OSError as exc:
            raise SegmendError(f"{args.out}: cannot write the blob ({exc.strerror})") from None
        return 0
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    return 0
