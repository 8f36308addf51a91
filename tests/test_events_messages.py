"""DVID message conformance, Go timestamps, the blob store and DataRef."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.model.events import blobstore, encoding, gotime, messages
from app.model.events.dvid_schemas import (
    ANNOTATION_SCHEMAS,
    DVID_SCHEMAS,
    SVSPLITS_SCHEMA,
    schema_problems,
)
from app.model.events.messages import encode_message

# the message reference among the project's seed documents, beside the checkout
SEED = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "002_e1e8912e9f16532b.txt"
UUID = "28841c8277e044a7b187dda03e18da13"
TS = "2026-11-22 03:04:05.123456789 +0000 UTC"
TS_DONE = "2026-11-22 03:04:05.2 +0000 UTC"
REF = blobstore.blob_ref(b"some rle spans")

EXTRAS = {"User", "App"}


# --------------------------------------------------------------------------- samples


def _samples() -> dict[str, dict[str, Any]]:
    """One message per action, as the builders produce it, keyed by a unique name."""
    common: dict[str, Any] = {"uuid": UUID, "mutation_id": 42, "timestamp": TS, "user": "alice"}
    merge = messages.merge_start(target=7, labels=[8, 9], **common)
    split = messages.split_start(target=7, new_label=12, split_ref=REF, **common)
    coarse = messages.splitcoarse_start(target=7, new_label=13, split_ref=REF, **common)
    return {
        "merge": merge,
        "merge-complete": messages.complete(merge, TS_DONE),
        "split": split,
        "split (labelmap)": messages.split_start(
            target=7, new_label=12, split_ref=REF, sv_splits={100: (101, 102)}, **common
        ),
        "split-complete": messages.complete(split, TS_DONE),
        "splitcoarse": coarse,
        "splitcoarse-complete": messages.complete(coarse, TS_DONE),
        "post-maxlabel": messages.maxlabel(max_label=2**63 + 5, uuid=UUID, timestamp=TS),
        "post-nextlabel": messages.nextlabel(start=15, end=24, uuid=UUID, timestamp=TS),
    }


def _schema_for(name: str) -> dict[str, type]:
    return SVSPLITS_SCHEMA if name == "split (labelmap)" else DVID_SCHEMAS[name]


SAMPLES = _samples()

# What each -complete message repeats (DVID's Go code: the start message's map,
# re-stamped; datatype/labelmap/mutate.go MergeLabels, SplitLabels).
COMPLETE_EXTRAS = {
    "merge-complete": {"Target", "Labels"},
    "split-complete": {"Target", "NewLabel", "Split"},
    "splitcoarse-complete": {"Target", "NewLabel", "Split"},
}


# --------------------------------------------------------------------------- the seed reference


_GO_TYPES: list[tuple[str, type]] = [
    (r"\[\]uint64", list),
    (r"map\[uint64\]SVSplit", dict),
    (r"DeltaModifyElements", dict),
    (r"uint64", int),
    (r"len\(data\)", int),
    (r"string", str),
    (r"time\.Now\(\)\.String\(\)", str),
]


def _go_type(text: str) -> type:
    for pattern, kind in _GO_TYPES:
        if re.match(pattern, text):
            return kind
    raise AssertionError(f"unknown Go type in the seed: {text!r}")


def _seed_schemas() -> list[tuple[str, str, dict[str, type]]]:
    """(section, action, field -> type) for every message block of the reference."""
    text = SEED.read_text()
    out = []
    section = ""
    block: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped in ("labelmap", "labelarray", "keyvalue", "annotation"):
            section = stripped
        if stripped == "{":
            block = []
            continue
        if stripped == "}" and block is not None:
            fields: dict[str, type] = {}
            action = None
            for entry in block:
                m = re.match(r'"([^"]+)":\s*(.+?),*\s*(//.*)?$', entry)
                if not m:
                    continue
                name, value = m.group(1), m.group(2)
                if name == "Action":
                    action = value.strip('"')
                    fields[name] = str
                else:
                    fields[name] = _go_type(value)
            if action is not None:
                out.append((section, action, fields))
            block = None
            continue
        if block is not None:
            block.append(stripped)
    return out


@pytest.mark.skipif(not SEED.exists(), reason="the seed reference is not on this machine")
def test_schemas_match_the_seed_reference() -> None:
    seen = _seed_schemas()
    actions = {(s, a) for s, a, _ in seen}
    # labelmap 10, labelarray 6, keyvalue 1, annotation 6
    assert len(seen) == 23, f"parsed {len(seen)} message blocks from the seed, expected 23"
    for section, action, fields in seen:
        if section == "annotation":
            ours = ANNOTATION_SCHEMAS[action]
        elif section == "labelmap" and action == "split":
            ours = SVSPLITS_SCHEMA
        else:
            ours = DVID_SCHEMAS[action]
        assert ours == fields, f"{section} {action}: ours {ours} != seed {fields}"
    # every action we know is in the reference
    for action in DVID_SCHEMAS:
        assert any(a == action for _, a in actions), action
    for action in ANNOTATION_SCHEMAS:
        assert ("annotation", action) in actions, action


# --------------------------------------------------------------------------- builders


@pytest.mark.parametrize("name", list(SAMPLES))
def test_every_action_has_exactly_the_documented_fields_and_types(name: str) -> None:
    msg = SAMPLES[name]
    schema = _schema_for(name)
    action = name.split(" ")[0]
    assert msg["Action"] == action
    documented = set(schema)
    allowed = documented | EXTRAS | COMPLETE_EXTRAS.get(action, set())
    assert documented <= set(msg), f"missing {documented - set(msg)}"
    assert set(msg) <= allowed, f"unexpected {set(msg) - allowed}"
    # through JSON, as a consumer sees it
    decoded = json.loads(encode_message(msg, lambda b: pytest.fail("no blob expected")))
    assert decoded == msg
    assert schema_problems(decoded, schema) == []
    for field, kind in schema.items():
        value = decoded[field]
        assert type(value) is kind, f"{name}.{field} is {type(value).__name__}, want {kind}"
    if "App" in msg:
        assert msg["App"] == "segmend"


@pytest.mark.parametrize("name", list(COMPLETE_EXTRAS))
def test_complete_messages_are_the_start_message_stamped_at_completion(name: str) -> None:
    msg = SAMPLES[name]
    start = SAMPLES[name.removesuffix("-complete")]
    assert msg == {**start, "Action": name, "Timestamp": TS_DONE}
    assert msg["User"] == "alice" and msg["App"] == "segmend"


def test_label_messages_carry_no_user_or_app() -> None:
    # handlers.go: post-maxlabel and post-nextlabel maps have no User or App.
    assert set(SAMPLES["post-maxlabel"]) == {"Action", "MaxLabel", "UUID", "Timestamp"}
    assert set(SAMPLES["post-nextlabel"]) == {"Action", "Start Label", "End Label", "UUID",
                                              "Timestamp"}


def test_kafka_values_have_their_keys_sorted_as_go_writes_a_map() -> None:
    msg = messages.split_start(target=1, new_label=2, split_ref=REF, uuid=UUID, mutation_id=3,
                               sv_splits={10: (11, 12), 9: (13, 14)}, timestamp=TS)
    text = encode_message(msg, lambda b: pytest.fail("no blob expected")).decode()
    assert text == (
        '{"Action":"split","App":"segmend","MutationID":3,"NewLabel":2,'
        '"SVSplits":{"10":{"Split":11,"Remain":12},"9":{"Split":13,"Remain":14}},'
        f'"Split":"{REF}","Target":1,"Timestamp":"{TS}","UUID":"{UUID}"}}'
    )


def test_nextlabel_uses_dvid_names_with_spaces() -> None:
    msg = SAMPLES["post-nextlabel"]
    assert msg["Start Label"] == 15 and msg["End Label"] == 24
    assert "StartLabel" not in msg and "start" not in msg
    with pytest.raises(ValueError, match="End Label 3 is below Start Label 4"):
        messages.nextlabel(start=4, end=3, uuid=UUID)


def test_svsplits_is_a_map_of_decimal_keys_to_split_remain() -> None:
    msg = messages.split_start(
        target=1, new_label=2, split_ref=REF, uuid=UUID, mutation_id=3,
        sv_splits={2**40: {"Split": 5, "Remain": 6}, 7: (8, 9)},
    )
    assert msg["SVSplits"] == {
        str(2**40): {"Split": 5, "Remain": 6},
        "7": {"Split": 8, "Remain": 9},
    }
    with pytest.raises(ValueError, match=r"SVSplits\[7\]"):
        messages.split_start(
            target=1, new_label=2, split_ref=REF, uuid=UUID, mutation_id=3, sv_splits={7: 8}
        )


def test_uint64_values_are_json_integers_even_from_numpy() -> None:
    msg = messages.merge_start(
        target=np.uint64(2**64 - 1), labels=np.array([1, 2**63], dtype=np.uint64),
        uuid=UUID, mutation_id=np.int64(5),
    )
    decoded = json.loads(encode_message(msg, lambda b: ""))
    assert decoded["Target"] == 2**64 - 1 and decoded["Labels"] == [1, 2**63]
    assert all(type(v) is int for v in decoded["Labels"])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"target": True}, "Target"),
        ({"target": -1}, "Target"),
        ({"target": 2**64}, "Target"),
        ({"target": 1.5}, "Target"),
        ({"labels": [1, "2"]}, r"Labels\[1\]"),
        ({"labels": "12"}, "Labels"),
        ({"uuid": ""}, "UUID"),
        ({"mutation_id": None}, "MutationID"),
        ({"timestamp": "yesterday"}, "Go time"),
        ({"user": 5}, "User"),
    ],
)
def test_bad_input_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"target": 1, "labels": [2], "uuid": UUID, "mutation_id": 1}
    args.update(kwargs)
    with pytest.raises(ValueError, match=field):
        messages.merge_start(**args)


def test_split_ref_must_be_a_blob_reference() -> None:
    with pytest.raises(ValueError, match="Split must be a blob reference"):
        messages.split_start(target=1, new_label=2, split_ref="abc", uuid=UUID, mutation_id=1)


def test_schema_problems_catches_wrong_types() -> None:
    bad = dict(SAMPLES["merge"], Target="7", Labels=[1, True], MutationID=-1)
    del bad["UUID"]
    problems = schema_problems(bad)
    assert any("missing field 'UUID'" in p for p in problems)
    assert any(p.startswith("Target must be a JSON integer") for p in problems)
    assert any(p.startswith("Labels[1]") for p in problems)
    assert any(p.startswith("MutationID must fit uint64") for p in problems)
    assert schema_problems({"Action": "nope"}) == ["unknown Action 'nope'"]


# --------------------------------------------------------------------------- Go timestamps


@pytest.mark.parametrize(
    ("dt", "text"),
    [
        (datetime(2026, 11, 22, 3, 4, 5, 123456, UTC), "2026-11-22 03:04:05.123456 +0000 UTC"),
        (datetime(2026, 11, 22, 3, 4, 5, 500000, UTC), "2026-11-22 03:04:05.5 +0000 UTC"),
        (datetime(2026, 11, 22, 3, 4, 5, 10, UTC), "2026-11-22 03:04:05.00001 +0000 UTC"),
        (datetime(2026, 11, 22, 3, 4, 5, 0, UTC), "2026-11-22 03:04:05 +0000 UTC"),
        (
            datetime(2026, 11, 21, 23, 4, 5, 1, timezone(timedelta(hours=-4))),
            "2026-11-22 03:04:05.000001 +0000 UTC",
        ),
        (datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC), "0999-01-02 03:04:05 +0000 UTC"),
    ],
)
def test_go_time_string(dt: datetime, text: str) -> None:
    assert gotime.go_time_string(dt) == text
    assert gotime.parse_go_time(text) == dt


def test_go_time_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="naive"):
        gotime.go_time_string(datetime(2026, 1, 1))


def test_now_go_has_nanoseconds_trimmed_like_go() -> None:
    before = datetime.now(UTC)
    text = gotime.now_go()
    after = datetime.now(UTC)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{0,8}[1-9])? \+0000 UTC", text), text
    parsed = gotime.parse_go_time(text)
    assert before - timedelta(microseconds=1) <= parsed <= after


def test_parse_go_time_accepts_dvid_forms() -> None:
    local = gotime.parse_go_time("2019-11-10 13:04:05.123456789 -0500 EST m=+0.004512345")
    assert local == datetime(2019, 11, 10, 18, 4, 5, 123456, UTC)
    assert local.utcoffset() == timedelta(hours=-5)
    bad_values = [
        "2026-11-22T03:04:05Z", "2026-11-22 03:04:05 UTC", "", "2026-13-01 00:00:00 +0000 UTC"
    ]
    for bad in bad_values:
        with pytest.raises(ValueError, match="Go"):
            gotime.parse_go_time(bad)


# --------------------------------------------------------------------------- blob store / DataRef


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    c = sqlite3.connect(tmp_path / "journal.sqlite")
    blobstore.create_blob_schema(c)
    c.commit()
    yield c
    c.close()


def _putter(conn: sqlite3.Connection) -> Callable[[bytes], str]:
    return lambda data: blobstore.put_blob(conn, data)


def test_blob_roundtrip_is_content_addressed_and_idempotent(conn: sqlite3.Connection) -> None:
    ref = blobstore.put_blob(conn, b"\x00\x01binary\xff")
    assert ref == blobstore.blob_ref(b"\x00\x01binary\xff") and len(ref) == 64
    assert blobstore.put_blob(conn, b"\x00\x01binary\xff") == ref
    assert conn.execute("SELECT COUNT(*) FROM blobs").fetchone()[0] == 1
    assert blobstore.get_blob(conn, ref) == b"\x00\x01binary\xff"
    assert blobstore.put_blob(conn, b"") == blobstore.blob_ref(b"")


def test_put_blob_does_not_commit(conn: sqlite3.Connection) -> None:
    ref = blobstore.put_blob(conn, b"uncommitted")
    conn.rollback()
    with pytest.raises(KeyError, match=ref):
        blobstore.get_blob(conn, ref)


def test_get_blob_errors(conn: sqlite3.Connection) -> None:
    missing = "0" * 64
    with pytest.raises(KeyError, match=f"no blob {missing}"):
        blobstore.get_blob(conn, missing)
    for bad in ["abc", "A" * 64, "g" * 64, "0" * 65]:
        with pytest.raises(ValueError, match="not a blob reference"):
            blobstore.get_blob(conn, bad)
    with pytest.raises(TypeError, match="bytes"):
        blobstore.put_blob(conn, "text")  # type: ignore[arg-type]


def test_big_message_is_sent_by_dataref_to_the_whole_message(conn: sqlite3.Connection) -> None:
    # DVID's cleave (datatype/labelmap/mutate.go CleaveLabel): the blob holds the
    # whole marshalled message; the message sent drops the bulky field and
    # carries "DataRef" (no other field names it).
    labels = list(range(2**40, 2**40 + 80_000))  # ~1.1 MB of JSON
    msg = messages.merge_start(target=1, labels=labels, uuid=UUID, mutation_id=3, timestamp=TS)
    data = encode_message(msg, _putter(conn))
    assert len(data) <= encoding.MESSAGE_LIMIT
    decoded = json.loads(data)
    assert set(decoded) == (set(msg) - {"Labels"}) | {"DataRef"}
    assert blobstore.is_blob_ref(decoded["DataRef"])
    blob = blobstore.get_blob(conn, decoded["DataRef"])
    assert blob == encoding.go_json(msg)
    assert json.loads(blob) == msg
    assert schema_problems(decoded) == []
    assert encoding.resolve_data_ref(decoded, _getter(conn)) == msg
    assert {k: v for k, v in decoded.items() if k != "DataRef"} == {
        k: v for k, v in msg.items() if k != "Labels"
    }


def _getter(conn: sqlite3.Connection) -> Callable[[str], bytes]:
    return lambda ref: blobstore.get_blob(conn, ref)


def test_message_just_under_the_limit_is_sent_whole(conn: sqlite3.Connection) -> None:
    msg = messages.merge_start(target=1, labels=range(1000), uuid=UUID, mutation_id=3)
    size = len(encode_message(msg, _putter(conn)))
    whole = json.loads(encode_message(msg, _putter(conn), limit=size))
    assert whole == msg
    assert encoding.resolve_data_ref(whole, lambda ref: pytest.fail("no blob expected")) == msg
    decoded = json.loads(encode_message(msg, _putter(conn), limit=size - 1))
    assert "Labels" not in decoded and "DataRef" in decoded


def test_every_bulky_field_is_left_out(conn: sqlite3.Connection) -> None:
    msg = messages.split_start(
        target=1, new_label=2, split_ref=REF, uuid=UUID, mutation_id=1,
        sv_splits={sv: (sv + 1, sv + 2) for sv in range(0, 30_000, 3)},
    )
    decoded = json.loads(encode_message(msg, _putter(conn), limit=100_000))
    assert "SVSplits" not in decoded and decoded["Split"] == REF
    assert schema_problems(decoded) == []
    assert encoding.resolve_data_ref(decoded, _getter(conn)) == msg


def test_oversized_message_without_a_bulky_field_is_an_error(conn: sqlite3.Connection) -> None:
    msg = messages.merge_start(target=1, labels=[2], uuid=UUID, mutation_id=3, user="k" * 2000)
    with pytest.raises(
        ValueError, match=r"merge message is \d+ bytes without its bulky fields, over the "
        r"1000-byte limit"
    ):
        encode_message(msg, _putter(conn), limit=1000)


def test_go_json_sorts_keys_and_escapes_as_go() -> None:
    # encoding/json Marshal: map keys sorted, HTML-safe escapes, UTF-8 otherwise.
    text = encoding.go_json({"b": 1, "a": "<x&y>\u2028é", "End Label": 2**64 - 1})
    assert text == (
        b'{"End Label":18446744073709551615,"a":"\\u003cx\\u0026y\\u003e\\u2028'
        + "é".encode() + b'","b":1}'
    )
    with pytest.raises(ValueError, match="not valid Unicode"):
        encoding.go_json({"User": "\udce9"})


def test_go_json_writes_raw_json_values_as_they_are_in_sorted_place() -> None:
    raw = encoding.RawJSON('{"Add":[{"Label":1,"Kind":"PreSyn","Pos":[1,2,3]}],"Del":null}')
    text = encoding.go_json({"UUID": "<u>", "Delta": raw, "Action": "merge"})
    assert text == (b'{"Action":"merge","Delta":' + raw.encode()
                    + b',"UUID":"\\u003cu\\u003e"}')
    assert json.loads(text)["Delta"] == json.loads(raw)
