"""Every mutation of a real editing session reaches Kafka in DVID's format, in order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from app.kernels import parse_rles
from app.model.dataset import open_dataset
from app.model.events.dvid_schemas import DVID_SCHEMAS, schema_problems
from app.model.events.settings import KafkaSettings, topic_name
from tests.kafka_fixtures import TansuBroker, kafka_broker, read_topic

__all__ = ["kafka_broker"]


@pytest.mark.kafka
def test_session_events_arrive_in_dvid_format(
    small_pyramid: Path, kafka_broker: TansuBroker, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    settings = KafkaSettings(bootstrap_servers=kafka_broker.bootstrap, topic_prefix="test-")
    with open_dataset(small_pyramid, "r+", kafka=settings, user="alice") as ds:
        s0 = ds.labels(0)[...]
        a, b = int(s0[18, 35, 50]), int(s0[36, 69, 100])
        merge_id = ds.merge(a, [b])
        mask = np.ones((10, 20, 30), bool)
        split = ds.split(a, mask=mask, offset=(14, 30, 40))
        coarse = ds.split_coarse(a, [(1, 2, 3)])
        ds.next_label(2)
        ds.set_max_label(ds.max_label + 5)
        ds.undo()  # of the coarse split: a merge back
        ds.undo()  # of the split: a merge back
        ds.undo()  # of the merge: a split restoring b
        assert ds.wait(events_timeout=30)
        status = ds.events_status()
        assert status is not None and status.state == "connected" and status.backlog == 0
        topic = topic_name("test-", ds.repo_uuid, ds.uuid)
        version = ds.repo_uuid
        split_voxels = int((ds.labels(0)[...] == split.label).sum())
    records = read_topic(kafka_broker.bootstrap, topic, expect=14)
    messages = [json.loads(r.value) for r in records]
    actions = [m["Action"] for m in messages]
    assert actions == [
        "merge",
        "merge-complete",
        "split",
        "split-complete",
        "splitcoarse",
        "splitcoarse-complete",
        "post-nextlabel",
        "post-maxlabel",
        "merge",
        "merge-complete",
        "merge",
        "merge-complete",
        "split",
        "split-complete",
    ]
    for msg in messages:
        assert schema_problems(msg) == [], msg
        assert set(DVID_SCHEMAS[msg["Action"]]) <= set(msg)
        assert msg.get("App") == (None if msg["Action"].startswith("post-") else "segmend")
        assert msg["UUID"] == version  # the version node's UUID (segmend's one version)
    assert all(r.key == records[0].key for r in records)  # one partition key per dataset
    assert messages[0]["MutationID"] == merge_id and messages[0]["Labels"] == [b]
    assert messages[0]["User"] == "alice"
    assert messages[3]["NewLabel"] == split.label
    assert messages[5]["NewLabel"] == coarse.label
    assert messages[8]["Labels"] == [coarse.label] and messages[10]["Labels"] == [split.label]
    assert messages[12]["NewLabel"] == b and messages[12]["Target"] == a
    assert split_voxels == 0  # undone

    main(["blob", "get", str(small_pyramid), messages[2]["Split"]])
    spans = parse_rles(capsysbinary.readouterr().out, headered=False)
    assert int(spans[:, 3].sum()) == mask.size  # the region as posted (canonical RLE)
    assert spans[:, 3].tolist() == [30] * 200 and spans[0, :3].tolist() == [40, 30, 14]


@pytest.mark.kafka
def test_edits_never_wait_for_a_broker_that_is_down(
    small_pyramid: Path, kafka_broker: TansuBroker
) -> None:
    bootstrap = kafka_broker.bootstrap
    kafka_broker.stop()
    settings = KafkaSettings(bootstrap_servers=bootstrap, connect_timeout_s=1.0)
    with open_dataset(small_pyramid, "r+", kafka=settings) as ds:
        s0 = ds.labels(0)[...]
        ds.merge(int(s0[18, 35, 50]), [int(s0[36, 69, 100])])
        assert not ds.wait(events_timeout=1.0)
        status = ds.events_status()
        assert status is not None and status.state == "down" and status.backlog == 2
        assert status.last_error
        topic = topic_name("", ds.repo_uuid, ds.uuid)
    kafka_broker.start()
    with open_dataset(small_pyramid, "r+", kafka=settings) as ds:  # a later session sends them
        assert ds.wait(events_timeout=30)
    actions = [json.loads(r.value)["Action"] for r in read_topic(bootstrap, topic, expect=2)]
    assert actions == ["merge", "merge-complete"]
