"""Body meshes (app.model.meshes): per-block marching cubes stitched into the
whole body's mesh, exactly; the cache an edit invalidates block by block."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from app.model.bulk.build import build_pyramid
from app.model.dataset import Dataset, open_dataset
from app.model.meshes import BodyMesh, BodyMesher, MeshCache, mesh_plan, mesh_whole, stitch, to_s0
from app.model.meshes.blocks import EMPTY, NEIGHBOURS, BlockMesh, block_mask, mesh_mask
from app.model.meshes.cache import holders_bits
from app.model.meshes.mesher import meshed_blocks


def canonical_faces(vertices: NDArray[np.floating[Any]],
                    faces: NDArray[np.int32]) -> NDArray[np.float64]:
    """Each triangle as its 3 vertex positions, rotated (orientation kept) to start at
    its smallest vertex, rows sorted: equal for equal oriented triangle sets."""
    tri = np.asarray(vertices, dtype=np.float64)[faces]  # (m, 3, 3)
    keys = tri[:, :, 0] * 1e8 + tri[:, :, 1] * 1e4 + tri[:, :, 2]
    first = np.argmin(keys, axis=1)
    order = (first[:, None] + np.arange(3)[None, :]) % 3
    rot = np.take_along_axis(tri, order[:, :, None], axis=1).reshape(len(tri), 9)
    return rot[np.lexsort(rot.T[::-1])]


def assert_watertight(faces: NDArray[np.int32]) -> None:
    """Every directed edge appears once and its reverse once (closed, oriented)."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).astype(np.int64)
    n = int(faces.max()) + 1
    fwd = edges[:, 0] * n + edges[:, 1]
    rev = edges[:, 1] * n + edges[:, 0]
    assert len(np.unique(fwd)) == len(fwd), "a directed edge used twice"
    assert np.array_equal(np.sort(fwd), np.sort(rev)), "an edge without its twin"


def reference_mesh(level: NDArray[np.uint64], label: int, scale: int) -> BlockMesh:
    """One marching-cubes call over the body's bounding box at ``scale`` (welded)."""
    mask = level == np.uint64(label)
    idx = np.argwhere(mask)
    lo, hi = idx.min(axis=0), idx.max(axis=0) + 1
    box = mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    return stitch([mesh_whole(box, lo.tolist())], level.shape)


def assert_same_mesh(got: BodyMesh, want: BlockMesh, scale: int) -> None:
    assert len(got.vertices) == len(want.vertices2)
    assert np.array_equal(canonical_faces(got.vertices, got.faces),
                          canonical_faces(to_s0(want.vertices2, scale), want.faces))


def largest(ds: Dataset, n: int) -> list[int]:
    return [b.label for b in ds.bodies(top=n)]


# ------------------------------------------------------------------ exactness
def test_stitched_mesh_equals_whole_body_mesh_at_every_scale(ds: Dataset) -> None:
    mesher = BodyMesher(ds)
    for scale in range(ds.n_scales):
        level = ds.labels(scale)[...]
        present = set(np.unique(level).tolist())
        for label in largest(ds, 6):
            if label not in present:
                continue
            got = mesher.mesh(label, scale)
            assert got is not None
            assert got.computed == got.blocks
            assert_same_mesh(got, reference_mesh(level, label, scale), scale)
            assert_watertight(got.faces)


def test_bodies_touching_the_volume_border_are_closed(ds: Dataset) -> None:
    level = ds.labels(0)[...]
    border = np.unique(np.concatenate([level[-1].ravel(), level[:, :, -1].ravel(),
                                       level[:, 0].ravel()]))
    mesher = BodyMesher(ds)
    for label in [int(v) for v in border[border > 0][:5]]:
        got = mesher.mesh(label, 0)
        assert got is not None and not got.empty
        assert_watertight(got.faces)
        assert_same_mesh(got, reference_mesh(level, label, 0), 0)


def test_vertices_lie_in_the_bodys_bounding_box(ds: Dataset) -> None:
    s0 = ds.labels(0)[...]
    mesher = BodyMesher(ds)
    for label in largest(ds, 4):
        idx = np.argwhere(s0 == np.uint64(label))
        lo, hi = idx.min(axis=0), idx.max(axis=0) + 1
        for scale in range(ds.n_scales):
            got = mesher.mesh(label, scale)
            assert got is not None and got.vertices.dtype == np.float32
            f = 2**scale
            box_lo = (lo // f) * f - 0.5
            box_hi = -(-hi // f) * f - 0.5
            assert np.all(got.vertices >= box_lo) and np.all(got.vertices <= box_hi)
            if scale == 0:  # tight: the surface passes half a voxel outside the body
                assert np.array_equal(got.vertices.min(axis=0), lo - 0.5)
                assert np.array_equal(got.vertices.max(axis=0), hi - 0.5)


def test_absent_label_gives_an_empty_mesh(ds: Dataset) -> None:
    got = BodyMesher(ds).mesh(ds.max_label + 10, 0)
    assert got is not None and got.empty and got.blocks == 0 and len(got.vertices) == 0


@pytest.mark.parametrize("shape", [(2, 2, 2), (3, 5, 7), (1, 4, 4), (5, 1, 1)])
def test_a_body_filling_the_volume_is_its_box(tmp_path: Path, shape: tuple[int, int, int]) -> None:
    import h5py

    src = tmp_path / "full.h5"
    with h5py.File(src, "w") as f:
        f.create_dataset("seg", data=np.full(shape, 7, dtype=np.uint64))
    path = build_pyramid(f"{src}:/seg", tmp_path / "p.h5", block_size=(2, 2, 2))
    with open_dataset(path, "r+") as dataset:
        got = BodyMesher(dataset).mesh(7, 0)
    assert got is not None
    assert_watertight(got.faces)
    assert np.array_equal(got.vertices.min(axis=0), [-0.5, -0.5, -0.5])
    assert np.array_equal(got.vertices.max(axis=0), np.asarray(shape) - 0.5)


@pytest.mark.parametrize("label", [0, 1, 2**63 + 5])
def test_block_mask_reads_only_holders_and_pads(label: int) -> None:
    block_size, shape = (4, 4, 4), (6, 5, 8)
    vol = np.full(shape, 9, dtype=np.uint64)
    vol[3:6, 0:5, 2:7] = np.uint64(label)
    vol[0, 0, 0] = np.uint64(label)
    holders = {(0, 0, 0), (0, 0, 1), (1, 0, 0), (1, 1, 1)}
    reads: list[tuple[int, int, int]] = []

    def box(b: tuple[int, ...]) -> tuple[slice, ...]:
        return tuple(slice(c * s, (c + 1) * s) for c, s in zip(b, block_size, strict=True))

    def read(b: tuple[int, int, int]) -> NDArray[np.uint64]:
        reads.append(b)
        return vol[box(b)]

    seen = np.full(shape, 9, dtype=np.uint64)  # what the holders show; the rest is not read
    for b in holders:
        seen[box(b)] = vol[box(b)]
    samples = np.pad(seen == np.uint64(label), 1)  # samples -1 .. n
    for coord, want_start in (((1, 1, 1), (3, 3, 3)), ((0, 0, 0), (-1, -1, -1)),
                              ((1, 0, 1), (3, -1, 3))):
        mask, start = block_mask(label, coord, block_size, shape, holders, read)
        assert start == want_start
        stop = [min((c + 1) * s, n) for c, s, n in zip(coord, block_size, shape, strict=True)]
        stop = [e + 1 if e == n else e for e, n in zip(stop, shape, strict=True)]
        want = samples[tuple(slice(a + 1, e + 1) for a, e in zip(start, stop, strict=True))]
        assert np.array_equal(mask, want)
    assert set(reads) <= holders


def test_mesh_mask_of_nothing_or_everything_is_empty() -> None:
    assert mesh_mask(np.zeros((3, 3, 3), bool), (0, 0, 0)) is EMPTY
    assert mesh_mask(np.ones((3, 3, 3), bool), (0, 0, 0)) is EMPTY
    one = np.zeros((3, 3, 3), bool)
    one[1, 1, 1] = True
    m = mesh_mask(one, (5, 6, 7))
    assert_watertight(m.faces)
    assert np.array_equal(m.vertices2.min(axis=0), [11, 13, 15])
    assert np.array_equal(m.vertices2.max(axis=0), [13, 15, 17])


# -------------------------------------------------------------------- plan
@pytest.mark.parametrize(("voxels", "n_scales", "want"), [
    (0, 3, [0]), (100, 1, [0]), (1 << 17, 3, [0]), ((1 << 17) + 1, 3, [1, 0]),
    (1 << 20, 3, [1, 0]), ((1 << 20) + 1, 3, [2, 0]), (1 << 40, 3, [2, 0]), (1 << 40, 1, [0]),
])
def test_mesh_plan(voxels: int, n_scales: int, want: list[int]) -> None:
    assert mesh_plan(voxels, n_scales) == want


# --------------------------------------------------------- cache, edits
def test_second_mesh_comes_from_the_cache(ds: Dataset) -> None:
    mesher = BodyMesher(ds)
    label = largest(ds, 1)[0]
    first = mesher.mesh(label, 0)
    again = mesher.mesh(label, 0)
    assert first is not None and again is not None
    assert first.computed == first.blocks > 1 and again.computed == 0
    assert np.array_equal(first.vertices, again.vertices)
    assert np.array_equal(first.faces, again.faces)


def test_merge_remeshes_only_changed_blocks_and_gives_the_union(ds: Dataset) -> None:
    a, b = largest(ds, 2)
    mesher = BodyMesher(ds)
    mesher.cache.connect(ds.signals)
    changed: dict[int, set[tuple[int, int, int]]] = {}
    ds.signals.blocks_changed.connect(
        lambda scale, coords: changed.setdefault(scale, set()).update(map(tuple, coords)))
    before = {s: ds.labels(s)[...] for s in range(ds.n_scales)}
    for s in range(ds.n_scales):
        mesher.mesh(a, s)
        mesher.mesh(b, s)
    ds.merge(a, [b])
    for s in range(ds.n_scales):
        got = mesher.mesh(a, s)
        assert got is not None
        stale = {(c[0] + d0, c[1] + d1, c[2] + d2) for c in changed.get(s, ())
                 for d0 in (0, 1) for d1 in (0, 1) for d2 in (0, 1)}
        level = ds.labels(s)[...]
        holders = {tuple(int(v) // ds.block_size[i] for i, v in enumerate(p))
                   for p in np.argwhere(level == np.uint64(a))}
        grid = [-(-n // k) for n, k in zip(level.shape, ds.block_size, strict=True)]
        meshed = meshed_blocks({(c[0] >> s, c[1] >> s, c[2] >> s) for c in ds.label_blocks(a)},
                               grid)
        assert holders <= set(meshed)
        assert got.computed == len(stale & set(meshed))
        if s == 0:
            assert 0 < got.computed < got.blocks
        assert_same_mesh(got, reference_mesh(level, a, s), s)
        assert_watertight(got.faces)
        if s == 0:
            union = np.isin(before[0], [a, b])
            assert np.array_equal(level == np.uint64(a), union)
            ref = stitch([mesh_whole(union, (0, 0, 0))], level.shape)
            assert_same_mesh(got, ref, 0)
    gone = mesher.mesh(b, 0)
    assert gone is not None and gone.empty
    mesher.cache.disconnect()


def test_undo_restores_the_meshes(ds: Dataset) -> None:
    a, b = largest(ds, 2)
    mesher = BodyMesher(ds)
    mesher.cache.connect(ds.signals)
    old_a, old_b = mesher.mesh(a, 0), mesher.mesh(b, 0)
    ds.merge(a, [b])
    mesher.mesh(a, 0)
    ds.undo()
    new_a, new_b = mesher.mesh(a, 0), mesher.mesh(b, 0)
    for old, new in ((old_a, new_a), (old_b, new_b)):
        assert old is not None and new is not None and new.computed > 0
        assert np.array_equal(canonical_faces(old.vertices, old.faces),
                              canonical_faces(new.vertices, new.faces))


class LaggingIndex:
    """A dataset whose label index lags behind its blocks (as between an edit's
    staged blocks and its commit)."""

    def __init__(self, ds: Dataset, blocks: dict[int, dict[tuple[int, int, int], int]]) -> None:
        self._ds, self._blocks = ds, blocks

    def label_blocks(self, label: int) -> dict[tuple[int, int, int], int]:
        return self._blocks[label]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ds, name)


def test_meshes_made_with_a_lagging_index_are_not_reused(ds: Dataset) -> None:
    a, b = largest(ds, 2)
    old = ds.label_blocks(a)
    ds.merge(a, [b])
    cache = MeshCache()
    lagging = BodyMesher(LaggingIndex(ds, {a: old}), cache).mesh(a, 0)  # type: ignore[arg-type]
    got = BodyMesher(ds, cache).mesh(a, 0)
    assert lagging is not None and got is not None and 0 < got.computed < got.blocks
    assert_same_mesh(got, reference_mesh(ds.labels(0)[...], a, 0), 0)
    assert_watertight(got.faces)


def test_put_after_an_invalidation_is_refused() -> None:
    cache = MeshCache()
    mesh = mesh_mask(np.pad(np.ones((2, 2, 2), bool), 1), (0, 0, 0))
    epoch = cache.epoch(0, (1, 1, 1))
    assert cache.invalidate(0, [(0, 1, 0)]) == 0  # (1, 1, 1) reads a plane of (0, 1, 0)
    assert not cache.put(5, 0, (1, 1, 1), mesh, 3, epoch)
    assert cache.put(5, 0, (1, 1, 1), mesh, 3, cache.epoch(0, (1, 1, 1)))
    assert cache.put(5, 1, (1, 1, 1), mesh, 3, cache.epoch(1, (1, 1, 1)))
    assert cache.invalidate(0, [(2, 2, 2), (0, 0, 2)]) == 0  # neither is read by (1, 1, 1)
    assert cache.invalidate(0, [(1, 0, 1)]) == 1  # only scale 0's mesh
    assert cache.get(5, 0, (1, 1, 1), 3) is None and cache.get(5, 1, (1, 1, 1), 3) is mesh
    assert len(cache) == 1 and cache.nbytes == mesh.nbytes


def test_a_mesh_is_reused_only_with_the_same_holders() -> None:
    cache = MeshCache()
    mesh = mesh_mask(np.pad(np.ones((2, 2, 2), bool), 1), (0, 0, 0))
    holders = {(1, 1, 1), (0, 1, 1), (0, 0, 0), (5, 5, 5)}
    bits = holders_bits((1, 1, 1), holders)
    assert bits == (1 << NEIGHBOURS.index((0, 0, 0))) | (1 << NEIGHBOURS.index((1, 0, 0))) | (
        1 << NEIGHBOURS.index((1, 1, 1)))
    assert holders_bits((1, 1, 1), set()) == 0
    assert cache.put(5, 0, (1, 1, 1), mesh, bits, 0)
    assert cache.get(5, 0, (1, 1, 1), bits) is mesh
    # the index now names one more holder among the blocks read: meshed again
    assert cache.get(5, 0, (1, 1, 1), holders_bits((1, 1, 1), {*holders, (1, 0, 1)})) is None


def test_cache_drops_least_recently_used_beyond_capacity() -> None:
    mesh = mesh_mask(np.pad(np.ones((2, 2, 2), bool), 1), (0, 0, 0))
    cache = MeshCache(max_bytes=2 * mesh.nbytes)
    for i in range(3):
        assert cache.put(i, 0, (0, 0, i), mesh, 0, 0)
        cache.get(0, 0, (0, 0, 0), 0)  # label 0 stays recent
    assert cache.get(1, 0, (0, 0, 1), 0) is None
    assert cache.get(0, 0, (0, 0, 0), 0) is mesh and cache.get(2, 0, (0, 0, 2), 0) is mesh
    assert cache.nbytes == 2 * mesh.nbytes and len(cache) == 2


def test_cancelled_mesh_returns_none_and_keeps_what_it_made(ds: Dataset) -> None:
    mesher = BodyMesher(ds)
    label = largest(ds, 1)[0]
    asked = []

    def cancelled() -> bool:
        asked.append(1)
        return len(asked) > 2

    assert mesher.mesh(label, 0, cancelled) is None
    assert len(mesher.cache) == 2
    whole = mesher.mesh(label, 0)
    assert whole is not None and whole.computed == whole.blocks - 2
