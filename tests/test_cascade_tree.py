"""CascadeTree: a parent is ready once the blocks below it are final."""

from __future__ import annotations

from app.model.engine.cascade_tree import CascadeTree


def test_a_parent_waits_for_all_its_children() -> None:
    children = [(0, 0, 0), (0, 0, 1), (1, 1, 1)]
    tree = CascadeTree([*children, (2, 0, 0)], n_scales=3)
    assert tree.resolve(0, (0, 0, 0), True) == []
    assert tree.resolve(0, (0, 0, 1), False) == []
    assert tree.resolve(0, (1, 1, 1), True) == [(1, (0, 0, 0), [(0, 0, 0), (1, 1, 1)])]
    # s1 (0,0,0) changed; the s2 parent also waits for s1 (1,0,0), above s0 (2,0,0)
    assert tree.resolve(1, (0, 0, 0), True) == []
    assert tree.resolve(0, (2, 0, 0), True) == [(1, (1, 0, 0), [(2, 0, 0)])]
    assert tree.resolve(1, (1, 0, 0), False) == [(2, (0, 0, 0), [(0, 0, 0)])]
    assert tree.resolve(2, (0, 0, 0), True) == []  # the top level has no parent


def test_unchanged_branches_end_and_free_their_ancestors() -> None:
    tree = CascadeTree([(0, 0, 0), (4, 0, 0)], n_scales=4)
    # nothing changed under s1 (0,0,0): s2 (0,0,0) is final unchanged at once,
    # and s3 (0,0,0) still waits for the other branch
    assert tree.resolve(0, (0, 0, 0), False) == []
    assert tree.resolve(0, (4, 0, 0), True) == [(1, (2, 0, 0), [(4, 0, 0)])]
    assert tree.resolve(1, (2, 0, 0), True) == [(2, (1, 0, 0), [(2, 0, 0)])]
    assert tree.resolve(2, (1, 0, 0), True) == [(3, (0, 0, 0), [(1, 0, 0)])]


def test_nothing_changed_means_nothing_to_refresh() -> None:
    tree = CascadeTree([(z, y, x) for z in range(2) for y in range(2) for x in range(2)], 5)
    ready = [
        tree.resolve(0, (z, y, x), False) for z in range(2) for y in range(2) for x in range(2)
    ]
    assert ready == [[]] * 8
