"""An annotation set's and the body annotations' events reach Kafka on their own
topics: a consumer of the set's topic rebuilds each body's elements from the
stream alone, through merges, splits and undos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.model.annotations.body_values import INSTANCE
from app.model.dataset import open_dataset
from app.model.events.outbox_view import registered_instances
from app.model.events.settings import KafkaSettings, topic_name
from tests.kafka_fixtures import TansuBroker, kafka_broker, read_topic
from tests.test_annotations import expected_bodies, synapses, two_bodies_with_elements

__all__ = ["kafka_broker"]


@pytest.mark.kafka
def test_a_consumer_rebuilds_each_bodys_elements_from_the_topic(
        small_pyramid: Path, kafka_broker: TansuBroker) -> None:
    settings = KafkaSettings(bootstrap_servers=kafka_broker.bootstrap, topic_prefix="test-")
    with open_dataset(small_pyramid, "r+", kafka=settings, user="alice") as ds:
        elements = synapses(ds, 50, seed=8)
        ds.annotations.post("synapses", json.dumps(elements))
        a, b = two_bodies_with_elements(ds, elements)
        ds.body_annotations.update(b, status="Traced")
        ds.merge(a, [b])
        x, y, z = next(e["Pos"] for e in elements if e["Kind"] == "PreSyn" and int(
            ds.labels(0)[e["Pos"][2], e["Pos"][1], e["Pos"][0]]) == a)  # type: ignore[index]
        lo = np.maximum(np.array([z, y, x]) - 4, 0)
        ds.split(a, mask=np.ones((9, 9, 9), bool), offset=tuple(lo.tolist()))
        ds.undo()
        ds.undo()
        expected = expected_bodies(ds, elements)
        assert ds.wait(events_timeout=30)
        repo = ds.repo_uuid
    uuids = {name: uuid for name, _type, uuid in registered_instances(small_pyramid)}
    records = read_topic(kafka_broker.bootstrap, topic_name("test-", repo, uuids["synapses"]),
                         expect=5)
    bodies: dict[int, set[tuple[str, tuple[int, ...]]]] = {}
    actions = []
    for record in records:
        msg = json.loads(record.value)
        actions.append(msg["Action"])
        assert record.key == uuids["synapses"].encode()
        for e in msg["Delta"]["Del"] or []:
            bodies[e["Label"]].remove((e["Kind"], tuple(e["Pos"])))
        for e in msg["Delta"]["Add"] or []:
            bodies.setdefault(e["Label"], set()).add((e["Kind"], tuple(e["Pos"])))
    assert {k: v for k, v in bodies.items() if v} == expected
    assert actions[0] == "element-post" and actions[1] == "merge" and "split" in actions
    kv = read_topic(kafka_broker.bootstrap, topic_name("test-", repo, uuids[INSTANCE]),
                    expect=3)
    assert [(m["Action"], m["Key"]) for m in map(json.loads, (r.value for r in kv))] == [
        ("postkv", str(b)), ("delete", str(b)), ("postkv", str(b))]
