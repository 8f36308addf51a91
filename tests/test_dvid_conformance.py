"""segmend's Kafka stream as DVID's own code emits it, and as DVID's clients read it.

A recorded session (merge, split, split-coarse, next/max label, undo, redo) on
the real crop goes through a real broker.  The first test asserts, action by
action, the exact fields and JSON types of each message, naming the Go code
each expectation comes from (janelia-flyem/dvid).  The client tests read the
topic the way a DVID client does (what neuclease's ``read_kafka_messages``
with its DAG filter and ``compute_affected_bodies`` do; its DataFrame helpers
need labelmap's ``SVSplits`` and know no ``splitcoarse``, see
docs/architecture.md): keep the records of the repo's node, resolve
``DataRef`` through the blob store, decode every ``Split`` as DVID RLE, and
rebuild the final labels of every body from the stream alone.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from app.kernels import canonical_rles, encode_rles, parse_rles
from app.model.dataset import open_dataset
from app.model.events.encoding import go_json, resolve_data_ref
from app.model.events.gotime import parse_go_time
from app.model.events.outbox_view import read_blob
from app.model.events.settings import KafkaSettings, topic_name
from tests.dvid_client import affected_bodies, client_messages, replay_stream
from tests.kafka_fixtures import KafkaRecord, TansuBroker, kafka_broker, read_topic

__all__ = ["kafka_broker"]

BLOCK = (16, 16, 16)

# ------------------------------------------------------------------ what DVID's code emits
# Keys of each message map, besides "User" and "App", which DVID adds only when
# the request named them (``if info.User != "" { msginfo["User"] = info.User }``).
EXPECTED_KEYS: dict[str, set[str]] = {
    # datatype/labelmap/mutate.go MergeLabels: the "merge" map; "merge-complete"
    # is the same map with Action and Timestamp set again.
    "merge": {"Action", "Target", "Labels", "UUID", "MutationID", "Timestamp"},
    "merge-complete": {"Action", "Target", "Labels", "UUID", "MutationID", "Timestamp"},
    # Voxel mode is DVID's labelarray: its split message (the reference's
    # labelarray section) has no SVSplits, which labelmap's SplitLabels adds;
    # "split-complete" is the map re-stamped, as SplitLabels does.
    "split": {"Action", "Target", "NewLabel", "Split", "UUID", "MutationID", "Timestamp"},
    "split-complete": {"Action", "Target", "NewLabel", "Split", "UUID", "MutationID",
                       "Timestamp"},
    # labelarray split-coarse: DVID's message reference (no Go code sends it);
    # the same fields as a split, its Split in block coordinates.
    "splitcoarse": {"Action", "Target", "NewLabel", "Split", "UUID", "MutationID",
                    "Timestamp"},
    "splitcoarse-complete": {"Action", "Target", "NewLabel", "Split", "UUID", "MutationID",
                             "Timestamp"},
    # datatype/labelmap/handlers.go, POST /nextlabel and POST /maxlabel: no
    # MutationID, User or App; post-maxlabel only when the max label changed.
    "post-nextlabel": {"Action", "Start Label", "End Label", "UUID", "Timestamp"},
    "post-maxlabel": {"Action", "MaxLabel", "UUID", "Timestamp"},
}
UINT64_FIELDS = {"Target", "NewLabel", "MutationID", "Start Label", "End Label", "MaxLabel"}
STRING_FIELDS = {"Action", "UUID", "Timestamp", "Split", "User", "App", "DataRef"}
WITH_USER = {"merge", "split", "splitcoarse"}  # (and their -complete)


@dataclass
class Session:
    """What the recorded session did, and what it left."""

    base: Path
    """A copy of the file before the session."""
    path: Path
    topic: str
    version: str
    records: list[KafkaRecord]
    messages: list[dict[str, Any]]
    final: NDArray[np.uint64]
    blob: Callable[[str], bytes]
    posted_spans: NDArray[np.int32]
    posted_blocks: list[tuple[int, int, int]]
    max_label_ids: tuple[int | None, int | None]
    ids: dict[str, int]


def _a_block_without(s0: NDArray[np.uint64], label: int) -> tuple[int, int, int]:
    grid = [-(-n // b) for n, b in zip(s0.shape, BLOCK, strict=True)]
    for z in range(grid[0]):
        for y in range(grid[1]):
            for x in range(grid[2]):
                box = s0[z * 16:(z + 1) * 16, y * 16:(y + 1) * 16, x * 16:(x + 1) * 16]
                if not (box == label).any():
                    return (z, y, x)
    raise AssertionError("every block holds the label")


@pytest.fixture
def session(small_pyramid: Path, kafka_broker: TansuBroker, tmp_path: Path) -> Iterator[Session]:
    base = tmp_path / "base.h5"
    shutil.copy(small_pyramid, base)
    settings = KafkaSettings(bootstrap_servers=kafka_broker.bootstrap, topic_prefix="")
    with open_dataset(small_pyramid, "r+", kafka=settings, user="alice") as ds:
        s0 = ds.labels(0)[...]
        a, b = int(s0[18, 35, 50]), int(s0[36, 69, 100])
        ids = {"merge": ds.merge(a, [b])}
        # posted out of order, one span twice, one run cut in two: DVID stores
        # the spans as posted; segmend their canonical form (same voxels)
        box = np.array([[40 + dx, y, z, 10] for z in range(14, 24) for y in range(30, 50)
                        for dx in (0, 10)], np.int32)
        posted = np.concatenate([box[::-1], box[:1]])
        split = ds.split(a, encode_rles(posted))
        ids["split"] = split.mutation_id
        blocks = [(1, 2, 3), _a_block_without(s0, a), (1, 2, 3)]
        coarse = ds.split_coarse(a, blocks)
        ids["splitcoarse"] = coarse.mutation_id
        ds.next_label(2)
        raised = ds.set_max_label(ds.max_label + 5)
        unchanged = ds.set_max_label(ds.max_label)  # DVID sends nothing: nothing changed
        ids["undo-coarse"] = ds.undo()
        ids["undo-split"] = ds.undo()
        ids["undo-merge"] = ds.undo()
        ids["redo-merge"] = ds.redo()
        assert ds.wait(events_timeout=30)
        topic = topic_name("", ds.repo_uuid, ds.uuid)
        version = ds.repo_uuid
        final = ds.labels(0)[...]
    records = read_topic(kafka_broker.bootstrap, topic, expect=16)
    messages = [json.loads(r.value) for r in records]
    yield Session(base, small_pyramid, topic, version, records, messages, final,
                  partial(read_blob, small_pyramid), posted, sorted(set(blocks)),
                  (raised, unchanged), ids)


@pytest.mark.kafka
def test_each_message_has_the_fields_and_types_dvid_code_emits(session: Session) -> None:
    msgs = session.messages
    assert [m["Action"] for m in msgs] == [
        "merge", "merge-complete", "split", "split-complete", "splitcoarse",
        "splitcoarse-complete", "post-nextlabel", "post-maxlabel",
        "merge", "merge-complete",  # undo of the split-coarse: its label merged back
        "merge", "merge-complete",  # undo of the split
        "split", "split-complete",  # undo of the merge: b given back its voxels
        "merge", "merge-complete",  # redo of the merge
    ]
    assert session.max_label_ids[0] is not None and session.max_label_ids[1] is None
    starts: dict[int, dict[str, Any]] = {}
    for record, msg in zip(session.records, msgs, strict=True):
        action = msg["Action"]
        base = action.removesuffix("-complete")
        extras = {"User", "App"} if base in WITH_USER else set()
        assert set(msg) == EXPECTED_KEYS[action] | extras, action
        if extras:  # (DVID: only when the request named them)
            assert msg["User"] == "alice" and msg["App"] == "segmend"
        for field, value in msg.items():
            if field in UINT64_FIELDS:
                assert type(value) is int and 0 <= value < 2**64, (action, field)
            elif field in STRING_FIELDS:
                assert type(value) is str and value, (action, field)
            elif field == "Labels":
                assert value and all(type(v) is int and 0 < v < 2**64 for v in value)
        # datastore UUIDFromVersion(v): the version node, segmend's repo root
        assert msg["UUID"] == session.version
        # time.Now().String(): Go's form; a -complete is stamped when it completed
        when = parse_go_time(msg["Timestamp"])
        if action.endswith("-complete"):
            start = starts[msg["MutationID"]]
            assert {**msg, "Action": base, "Timestamp": start["Timestamp"]} == start
            assert when >= parse_go_time(start["Timestamp"])
        elif "MutationID" in msg:
            starts[msg["MutationID"]] = msg
        # json.Marshal of the map: keys sorted, compact; the same bytes
        assert record.value == go_json(msg)
    assert msgs[0]["MutationID"] == session.ids["merge"]
    assert msgs[2]["MutationID"] == session.ids["split"]
    assert msgs[4]["MutationID"] == session.ids["splitcoarse"]
    assert msgs[14]["MutationID"] == session.ids["redo-merge"]


@pytest.mark.kafka
def test_split_blobs_hold_the_posted_region(session: Session) -> None:
    # mutate.go SplitLabels: PutBlob(split.MarshalBinary()) of the posted RLEs
    split = parse_rles(session.blob(session.messages[2]["Split"]), headered=False)
    np.testing.assert_array_equal(split, canonical_rles(session.posted_spans))
    # split-coarse: the posted blocks, as block-coordinate RLE (x, y, z, length)
    coarse = parse_rles(session.blob(session.messages[4]["Split"]), headered=False)
    blocks = sorted((int(z), int(y), int(x) + i) for x, y, z, n in coarse for i in range(n))
    assert blocks == session.posted_blocks
    np.testing.assert_array_equal(coarse, canonical_rles(coarse))


# ------------------------------------------------------------------ a DVID client
@pytest.mark.kafka
def test_a_dvid_client_rebuilds_every_body_from_the_stream(session: Session) -> None:
    values = [r.value for r in session.records]
    view = {done: client_messages(values, session.version, session.blob, completes=done)
            for done in (False, True)}
    assert client_messages(values, "another", session.blob, completes=False) == []
    with open_dataset(session.base, "r") as before:
        original = before.labels(0)[...]
    for msgs in view.values():
        rebuilt = replay_stream(original, msgs, session.blob, BLOCK)
        np.testing.assert_array_equal(rebuilt, session.final)
    msgs = view[False]
    new, changed, removed = affected_bodies(msgs)
    a = session.messages[0]["Target"]
    b = session.messages[0]["Labels"][0]
    split, coarse = session.messages[2]["NewLabel"], session.messages[4]["NewLabel"]
    # (splitcoarse is labelarray's: neuclease's labelmap parser knows it not)
    assert (new, changed, removed) == (set(), {a}, {b, split, coarse})
    assert not np.isin(session.final, [b, split, coarse]).any()


# ------------------------------------------------------------------ DataRef, end to end
@pytest.fixture
def many_bodies(tmp_path: Path) -> Path:
    """A pyramid of 160,000 one-voxel bodies and a background body."""
    from app.model.bulk.build import build_pyramid

    labels = np.zeros((40, 64, 64), np.uint64)
    flat = labels.reshape(-1)
    flat[:160_001] = np.arange(1, 160_002, dtype=np.uint64)
    source = tmp_path / "many.npy"
    np.save(source, labels)
    return build_pyramid(str(source), tmp_path / "many.h5", block_size=(16, 64, 64))


@pytest.mark.kafka
def test_an_oversized_merge_is_sent_by_dataref_and_resolves(
    many_bodies: Path, kafka_broker: TansuBroker
) -> None:
    settings = KafkaSettings(bootstrap_servers=kafka_broker.bootstrap)
    merged = list(range(2, 160_002))
    with open_dataset(many_bodies, "r+", kafka=settings) as ds:
        ds.merge(1, merged)
        assert ds.wait(events_timeout=60)
        topic = topic_name("", ds.repo_uuid, ds.uuid)
        records = read_topic(kafka_broker.bootstrap, topic, expect=2)
        sent = [json.loads(r.value) for r in records]
        assert [m["Action"] for m in sent] == ["merge", "merge-complete"]
        for msg in sent:
            # mutate.go CleaveLabel: the bulky field dropped, "DataRef" added, the rest kept
            assert "Labels" not in msg and set(msg) >= {"Target", "MutationID", "UUID", "DataRef"}
            whole = resolve_data_ref(msg, ds.blob)
            assert whole == {**{k: v for k, v in msg.items() if k != "DataRef"},
                             "Labels": merged}
            assert ds.blob(msg["DataRef"]) == go_json(whole)  # the whole message's JSON
        ref = sent[0]["DataRef"]
    blob = subprocess.run([sys.executable, "-m", "app", "blob", "get", str(many_bodies), ref],
                          capture_output=True, check=True).stdout
    assert json.loads(blob)["Labels"] == merged


# ------------------------------------------------------------------ GET /mutations
@pytest.mark.kafka
def test_log_in_dvid_format_holds_the_complete_records(session: Session) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "app", "log", str(session.path), "--format", "dvid"],
        capture_output=True, check=True, text=True,
    ).stdout
    lines = out.splitlines()
    # server/mutationlog.go LogJSONMutation: the bytes sent for each -complete
    # message, in completion order (label reservations are not logged)
    completes = [r.value for r in session.records
                 if json.loads(r.value)["Action"].endswith("-complete")]
    assert [line.encode() for line in lines] == completes
    replayable = subprocess.run(
        [sys.executable, "-m", "app", "log", str(session.path)],
        capture_output=True, check=True, text=True,
    ).stdout.splitlines()
    assert [json.loads(line)["Action"] for line in replayable][:3] == [
        "merge", "split", "splitcoarse"
    ]


# ------------------------------------------------------------------ journals of earlier versions
def test_an_earlier_journal_is_restamped_and_its_coarse_split_redone_in_blocks(
    small_pyramid: Path,
) -> None:
    """Before this version, records carried the data UUID and a split-coarse's
    blob held the moved voxels (voxel coordinates)."""
    import sqlite3

    from app.model.events import blobstore
    from app.model.journal.sidecar import journal_path

    with open_dataset(small_pyramid, "r+") as ds:
        s0 = ds.labels(0)[...]
        a = int(s0[18, 35, 50])
        ds.split_coarse(a, [(1, 2, 3)])
        ds.undo()
        data_uuid, version = ds.uuid, ds.repo_uuid
    # as the earlier version wrote it
    with closing(sqlite3.connect(journal_path(small_pyramid))) as conn, conn:
        voxels = encode_rles(np.array([[48, 32, 16, 16]], np.int32))[12:]
        old_ref = blobstore.put_blob(conn, voxels)
        for mid, text in conn.execute("SELECT id, record FROM mutations").fetchall():
            record = {**json.loads(text), "UUID": data_uuid}
            if record["Action"] == "splitcoarse":
                record["Split"] = old_ref
            conn.execute("UPDATE mutations SET record = ? WHERE id = ?",
                         (json.dumps(record), mid))
        conn.execute("DELETE FROM meta WHERE key = 'records_uuid'")
    with open_dataset(small_pyramid, "r+") as ds:
        ds.redo()
        rows = ds.mutations()
        assert {row["UUID"] for row in rows} == {version}
        redone = rows[-1]
        assert redone["Action"] == "splitcoarse" and redone["Split"] != old_ref
        spans = parse_rles(ds.blob(redone["Split"]), headered=False)
        assert spans.tolist() == [[3, 2, 1, 1]]  # block (z, y, x) = (1, 2, 3)
    log = subprocess.run(
        [sys.executable, "-m", "app", "log", str(small_pyramid), "--format", "dvid"],
        capture_output=True, check=True, text=True,
    ).stdout.splitlines()
    assert len(log) == 3 and {json.loads(line)["UUID"] for line in log} == {version}
