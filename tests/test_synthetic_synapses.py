"""The synthetic synapses (app.model.annotations.synthetic) and their committed
file: geometry on a hand-made volume and on the real cube's ground truth, DVID's
element format, determinism, and tools/make_synthetic_synapses.py's output."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from numpy.typing import NDArray

from app.model.annotations.synthetic import synthetic_synapses
from app.model.demo import demo_cube_path
from tools.make_synthetic_synapses import BODIES, OUT, main

Elements = list[dict[str, Any]]


def hand_made() -> NDArray[np.uint64]:
    """(20, 30, 31): background for z < 4, below it nine columns (3 × 3 in y, x)
    with ids past 2**63, and a ball where four columns meet."""
    bodies = np.zeros((20, 30, 31), np.uint64)
    y, x = np.mgrid[:30, :31]
    bodies[4:] = np.uint64(2**63) + (y // 10 * 3 + x // 11).astype(np.uint64)
    z, y, x = np.ogrid[:20, :30, :31]
    bodies[(z - 12) ** 2 + (y - 10) ** 2 + (x - 11) ** 2 <= 16] = 7
    return bodies


@pytest.fixture(scope="module")
def cube_bodies() -> NDArray[np.uint64]:
    """The shipped cube's ground-truth bodies, read once."""
    with h5py.File(demo_cube_path(), "r") as f:
        return np.asarray(f[BODIES][:])


@pytest.fixture(scope="module")
def cube_elements(cube_bodies: NDArray[np.uint64]) -> Elements:
    """The cube's synthetic synapses with the defaults (300 T-bars, seed 0)."""
    return synthetic_synapses(cube_bodies)


@pytest.fixture(scope="module", params=["hand-made", "cube"])
def case(request: pytest.FixtureRequest) -> tuple[NDArray[np.uint64], Elements]:
    """(bodies, their synthetic synapses with the defaults) for both volumes."""
    if request.param == "cube":
        return request.getfixturevalue("cube_bodies"), request.getfixturevalue("cube_elements")
    bodies = hand_made()
    return bodies, synthetic_synapses(bodies)


def body_at(bodies: NDArray[np.uint64], pos: list[int]) -> int:
    """The body at a DVID position [x, y, z]."""
    x, y, z = pos
    return int(bodies[z, y, x])


def by_kind(elements: Elements, kind: str) -> list[dict[str, Any]]:
    """The elements of one kind; fails when there are none (every check below
    needs some)."""
    found = [e for e in elements if e["Kind"] == kind]
    assert found, f"no {kind}"
    return found


def test_presyn_inside_a_body_off_its_boundary(
    case: tuple[NDArray[np.uint64], Elements],
) -> None:
    bodies, elements = case
    for pre in by_kind(elements, "PreSyn"):
        x, y, z = pre["Pos"]
        body = int(bodies[z, y, x])
        assert body != 0
        neighbours = bodies[z - 1:z + 2, y - 1:y + 2, x - 1:x + 2]
        assert neighbours.shape == (3, 3, 3)
        assert np.all(neighbours[1, 1, :] == body)
        assert np.all(neighbours[1, :, 1] == body)
        assert np.all(neighbours[:, 1, 1] == body)


def test_postsyn_across_a_contact_in_another_body(
    case: tuple[NDArray[np.uint64], Elements],
) -> None:
    bodies, elements = case
    for post in by_kind(elements, "PostSyn"):
        (rel,) = post["Rels"]
        pre_body = body_at(bodies, rel["To"])
        assert body_at(bodies, post["Pos"]) not in (0, pre_body)
        assert np.linalg.norm(np.subtract(post["Pos"], rel["To"])) <= 6
        x, y, z = post["Pos"]
        touching = [bodies[z + dz, y + dy, x + dx]
                    for dz, dy, dx in np.vstack([np.eye(3, dtype=int), -np.eye(3, dtype=int)])
                    if 0 <= z + dz < bodies.shape[0] and 0 <= y + dy < bodies.shape[1]
                    and 0 <= x + dx < bodies.shape[2]]
        assert pre_body in touching


def test_relationships_are_reciprocal(case: tuple[NDArray[np.uint64], Elements]) -> None:
    _, elements = case
    at = {tuple(e["Pos"]): e for e in elements}
    for pre in by_kind(elements, "PreSyn"):
        assert {r["Rel"] for r in pre["Rels"]} == {"PreSynTo"}
        for rel in pre["Rels"]:
            post = at[tuple(rel["To"])]
            assert post["Kind"] == "PostSyn"
            assert post["Rels"] == [{"Rel": "PostSynTo", "To": pre["Pos"]}]
    for post in by_kind(elements, "PostSyn"):
        (rel,) = post["Rels"]
        assert rel["Rel"] == "PostSynTo"
        pre = at[tuple(rel["To"])]
        assert {"Rel": "PreSynTo", "To": post["Pos"]} in pre["Rels"]


def test_positions_unique_and_inside_the_volume(
    case: tuple[NDArray[np.uint64], Elements],
) -> None:
    bodies, elements = case
    positions = np.array([e["Pos"] for e in elements])
    assert len(np.unique(positions, axis=0)) == len(elements)
    assert np.all(positions >= 0)
    assert np.all(positions < bodies.shape[::-1])


def test_one_to_four_partners_spaced_tbars(case: tuple[NDArray[np.uint64], Elements]) -> None:
    _, elements = case
    pres = by_kind(elements, "PreSyn")
    assert all(1 <= len(pre["Rels"]) <= 4 for pre in pres)
    spots = np.array([pre["Pos"] for pre in pres])
    gaps = np.linalg.norm(spots[:, None] - spots[None], axis=2)
    np.fill_diagonal(gaps, np.inf)
    assert gaps.min() >= 5


def test_dvid_element_format(case: tuple[NDArray[np.uint64], Elements]) -> None:
    _, elements = case
    assert json.loads(json.dumps(elements)) == elements
    for element in elements:
        assert list(element) == ["Pos", "Kind", "Tags", "Prop", "Rels"]
        assert element["Kind"] in ("PreSyn", "PostSyn")
        assert all(type(v) is int for v in element["Pos"])
        assert element["Tags"] == []
        assert element["Prop"]["synthetic"] == "true"
        assert 0.9 <= float(element["Prop"]["conf"]) < 1
        assert all(type(v) is str for v in element["Prop"].values())


def test_tbars_in_order_each_followed_by_its_partners(
    case: tuple[NDArray[np.uint64], Elements],
) -> None:
    _, elements = case
    zyx = [pre["Pos"][::-1] for pre in by_kind(elements, "PreSyn")]
    assert zyx == sorted(zyx)
    rest = iter(elements)
    for element in rest:
        assert element["Kind"] == "PreSyn"
        partners = [next(rest)["Pos"] for _ in element["Rels"]]
        assert partners == [rel["To"] for rel in element["Rels"]]


def test_cube_counts_and_partner_mix(
    cube_bodies: NDArray[np.uint64], cube_elements: Elements,
) -> None:
    pres = by_kind(cube_elements, "PreSyn")
    assert len(pres) == 300
    counts = Counter(len(pre["Rels"]) for pre in pres)
    assert set(counts) == {1, 2, 3, 4}
    assert counts[2] + counts[3] > counts[1] + counts[4]
    # spread over many bodies, the large ones with more but not all
    bodies = Counter(body_at(cube_bodies, pre["Pos"]) for pre in pres)
    assert len(bodies) >= 50
    assert bodies.most_common(1)[0][1] <= 30
    # partners of one T-bar in different bodies
    for pre in pres:
        partner_bodies = [body_at(cube_bodies, rel["To"]) for rel in pre["Rels"]]
        assert len(set(partner_bodies)) == len(partner_bodies)


def test_tbars_caps_the_count() -> None:
    elements = synthetic_synapses(hand_made(), tbars=7, seed=3)
    assert len(by_kind(elements, "PreSyn")) == 7


def test_two_bodies_still_get_several_partners() -> None:
    bodies = np.ones((16, 16, 16), np.uint64)
    bodies[:, :, 8:] = 2
    pres = by_kind(synthetic_synapses(bodies, tbars=20, seed=1), "PreSyn")
    assert max(len(pre["Rels"]) for pre in pres) > 1


def test_no_contacts_no_synapses() -> None:
    bodies = np.zeros((12, 12, 12), np.uint64)
    bodies[2:10, 2:10, 2:10] = 5
    assert synthetic_synapses(bodies) == []


def test_same_seed_same_set_other_seed_other_set() -> None:
    bodies = hand_made()
    first = synthetic_synapses(bodies, tbars=20, seed=4)
    assert synthetic_synapses(bodies, tbars=20, seed=4) == first
    other = synthetic_synapses(bodies, tbars=20, seed=5)
    assert {tuple(e["Pos"]) for e in other} != {tuple(e["Pos"]) for e in first}


def test_committed_file_is_what_the_tool_makes(tmp_path: Path) -> None:
    out = tmp_path / "synapses.json"
    main([str(demo_cube_path()), str(out)])
    assert out.read_bytes() == OUT.read_bytes()
    assert len(json.loads(OUT.read_text(encoding="utf-8"))) > 0
    assert OUT.stat().st_size < 300_000
