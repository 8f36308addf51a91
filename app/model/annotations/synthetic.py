"""Synthetic synapses: a plausible but invented set of T-bars and their
partners, made from a segmentation, in DVID's annotation element JSON.

The shipped FIB-SEM cube has no synapse annotations, so tests and the demo use
this set instead. **None of it is real biology.** It is made like this:

1. **Contacts.** Every pair of face-adjacent voxels in two different non-zero
   bodies is a contact, seen from both sides: the *pre* voxel's body is the
   presynaptic one, the voxel across the face is on the postsynaptic side.
2. **Candidate sites.** From each contact, step 1 or 2 voxels (at random) back
   into the pre body, along the face normal. That voxel is a candidate PreSyn
   if it belongs to the pre body and is interior: its 6 neighbours are in the
   volume and the same body.
3. **T-bars.** The candidates are put in a random order, drawn without
   replacement with weights that give each body a chance growing as the square
   root of its number of candidates: large bodies get more T-bars, but not all
   of them. They are tried in that order; a site closer than
   :data:`MIN_TBAR_SPACING` to an accepted PreSyn is skipped.
4. **Partners.** Each T-bar draws how many PostSyn partners it wants, 1–4
   (:data:`PARTNER_ODDS`). A partner is a voxel of another non-zero body that
   touches the PreSyn's body (across the contact), within
   :data:`PARTNER_RADIUS` of the PreSyn, at least :data:`MIN_PARTNER_SPACING`
   from the T-bar's other partners and at no position another element has.
   The voxel across the site's own contact comes first; the others are drawn
   at random, each in a body not yet used, and a site without enough bodies
   around it is skipped. Only after :data:`MAX_MISSES` such sites in a row (a
   volume with few bodies) may partners share a body, or be fewer than wanted.
5. **Elements.** Each PreSyn and PostSyn gets ``"Tags": []`` and ``"Prop"``
   ``{"conf": "0.9xx", "synthetic": "true"}`` (a random confidence), and the
   relationships both ways: ``PreSynTo`` each partner, ``PostSynTo`` the PreSyn.

All the randomness comes from one seeded generator, so a seed always gives the
same list.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

Coords = NDArray[np.int64]
"""Voxel coordinates (z, y, x): shape (n, 3), or (3,) for one voxel."""

MIN_TBAR_SPACING = 5.0
"""Least distance (voxels, Euclidean) between two PreSyn elements."""

PARTNER_RADIUS = 6.0
"""Greatest distance (voxels, Euclidean) from a PreSyn to its PostSyn partners."""

MIN_PARTNER_SPACING = 2.0
"""Least distance (voxels, Euclidean) between two partners of one T-bar."""

PARTNER_ODDS = {1: 0.15, 2: 0.35, 3: 0.30, 4: 0.20}
"""Probability of each number of partners a T-bar wants."""

MAX_MISSES = 100
"""Sites a T-bar may refuse for lack of partners in different bodies before it
accepts partners sharing a body (volumes with few bodies)."""

DEPTHS = (1, 2)
"""How far (voxels) a PreSyn sits behind the voxel at its contact, drawn uniformly."""

CONFIDENCE = (0.9, 1.0)
"""Range of the ``conf`` property: a uniform draw written with three decimals."""


def synthetic_synapses(
    bodies: NDArray[np.uint64], *, tbars: int = 300, seed: int = 0
) -> list[dict[str, Any]]:
    """Invent synapses on a segmentation: T-bars (PreSyn) at contacts between
    bodies, each with 1–4 PostSyn partners across the contact.

    Parameters
    ----------
    bodies : ndarray of uint64, shape (Z, Y, X)
        The segmentation, indexed [z, y, x]; 0 is background.
    tbars : int
        How many T-bars to make; fewer when the volume has too few sites.
    seed : int
        Seed of the random generator: the same seed gives the same list.

    Returns
    -------
    list of dict
        DVID annotation elements (``Pos``, ``Kind``, ``Tags``, ``Prop``,
        ``Rels``), ``Pos`` as [x, y, z]. T-bars are ordered by position
        (z, y, x), each PreSyn followed by its PostSyn partners.
    """
    rng = np.random.default_rng(seed)
    pre, post = _candidate_sites(bodies, rng)
    order = _weighted_order(bodies.ravel()[pre], rng)
    synapses = _place_tbars(bodies, pre[order], post[order], tbars, rng)
    synapses.sort(key=lambda synapse: tuple(synapse[0]))
    return [element for tbar, partners in synapses
            for element in _elements(tbar, partners, rng)]


def _interior(bodies: NDArray[np.uint64]) -> NDArray[np.bool_]:
    """Voxels in a non-zero body whose 6 neighbours are all inside the volume
    and the same body.

    Parameters
    ----------
    bodies : ndarray of uint64, shape (Z, Y, X)

    Returns
    -------
    ndarray of bool, shape (Z, Y, X)
    """
    inside = np.zeros(bodies.shape, bool)
    inside[1:-1, 1:-1, 1:-1] = bodies[1:-1, 1:-1, 1:-1] != 0
    for axis in range(3):
        lower, upper = _halves(axis)
        same = bodies[lower] == bodies[upper]
        inside[lower] &= same
        inside[upper] &= same
    return inside


def _halves(axis: int) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Slices of every voxel but the last, and every voxel but the first, along
    ``axis``: their elements are neighbours along it."""
    lower = [slice(None)] * 3
    upper = [slice(None)] * 3
    lower[axis] = slice(None, -1)
    upper[axis] = slice(1, None)
    return tuple(lower), tuple(upper)


def _candidate_sites(
    bodies: NDArray[np.uint64], rng: np.random.Generator
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Every place a T-bar may go: a PreSyn voxel 1–2 voxels behind a contact,
    and the voxel across that contact.

    Parameters
    ----------
    bodies : ndarray of uint64, shape (Z, Y, X)
    rng : numpy.random.Generator
        Draws each candidate's depth from :data:`DEPTHS`.

    Returns
    -------
    pre : ndarray of intp, shape (n,)
        Flat (C-order) indices of the candidate PreSyn voxels: interior voxels
        of their body.
    post : ndarray of intp, shape (n,)
        Flat index of the voxel across each one's contact: another non-zero body.
    """
    flat = bodies.ravel()
    interior = _interior(bodies).ravel()
    pres, posts = [], []
    for axis in range(3):
        stride = int(np.prod(bodies.shape[axis + 1:]))
        lower, upper = _halves(axis)
        a, b = bodies[lower], bodies[upper]
        contact = np.zeros(bodies.shape, bool)
        contact[lower] = (a != b) & (a != 0) & (b != 0)
        low = np.flatnonzero(contact)
        for near, across, sign in ((low, low + stride, 1), (low + stride, low, -1)):
            depth = rng.choice(DEPTHS, size=len(near)) * sign
            along = near // stride % bodies.shape[axis] - depth
            pre = near - depth * stride
            keep = (along >= 0) & (along < bodies.shape[axis])
            keep[keep] = interior[pre[keep]] & (flat[pre[keep]] == flat[near[keep]])
            pres.append(pre[keep])
            posts.append(across[keep])
    return np.concatenate(pres), np.concatenate(posts)


def _weighted_order(labels: NDArray[np.uint64], rng: np.random.Generator) -> NDArray[np.intp]:
    """A random order of the candidates, drawn without replacement with weights
    that give each body a share growing as the square root of its number of
    candidates (exponential keys divided by the weights, ascending).

    Parameters
    ----------
    labels : ndarray of uint64, shape (n,)
        Each candidate's body.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of intp, shape (n,)
        Indices into the candidates, most favoured first.
    """
    _, body_of, counts = np.unique(labels, return_inverse=True, return_counts=True)
    keys = rng.exponential(size=len(labels)) * np.sqrt(counts[body_of])
    return np.argsort(keys, kind="stable")


def _place_tbars(
    bodies: NDArray[np.uint64], pre: NDArray[np.intp], post: NDArray[np.intp], tbars: int,
    rng: np.random.Generator,
) -> list[tuple[Coords, Coords]]:
    """Accept candidate sites in order until ``tbars`` are placed.

    Each T-bar draws how many partners it wants (:data:`PARTNER_ODDS`), then
    takes the first site at least :data:`MIN_TBAR_SPACING` from every accepted
    PreSyn that offers that many partners in different bodies; after
    :data:`MAX_MISSES` sites that do not, the next site with any free partner.

    Parameters
    ----------
    bodies : ndarray of uint64, shape (Z, Y, X)
    pre, post : ndarray of intp, shape (n,)
        Flat indices of the candidate PreSyn voxels and of the voxels across
        their contacts, in the order to try them.
    tbars : int
        How many T-bars to place at most.
    rng : numpy.random.Generator

    Returns
    -------
    list of (ndarray of int64 shape (3,), ndarray of int64 shape (k, 3))
        Each T-bar's PreSyn voxel and its 1–4 partner voxels (z, y, x).
    """
    placed: list[tuple[Coords, Coords]] = []
    accepted = np.empty((0, 3), np.int64)
    taken: set[tuple[int, ...]] = set()
    wanted, misses = _partner_count(rng), 0
    for at_pre, at_post in zip(pre.tolist(), post.tolist(), strict=True):
        if len(placed) == tbars:
            break
        site = _voxel(at_pre, bodies.shape)
        if np.any(np.sum((accepted - site) ** 2, axis=1) < MIN_TBAR_SPACING**2):
            continue
        strict = misses < MAX_MISSES
        partners = _pick_partners(bodies, site, _voxel(at_post, bodies.shape), wanted,
                                  taken, rng, repeat_bodies=not strict)
        if len(partners) < (wanted if strict else 1):
            misses += 1
            continue
        placed.append((site, partners))
        accepted = np.vstack([accepted, site])
        taken.update(map(tuple, partners.tolist()))
        wanted, misses = _partner_count(rng), 0
    return placed


def _partner_count(rng: np.random.Generator) -> int:
    """How many partners a T-bar wants: 1–4, drawn with :data:`PARTNER_ODDS`."""
    return int(rng.choice(list(PARTNER_ODDS), p=list(PARTNER_ODDS.values())))


def _voxel(index: int, shape: tuple[int, ...]) -> Coords:
    """The voxel (z, y, x), int64 shape (3,), at a flat (C-order) index."""
    return np.array(np.unravel_index(index, shape), np.int64)


def _partner_voxels(bodies: NDArray[np.uint64], site: Coords) -> tuple[Coords, NDArray[np.uint64]]:
    """Voxels that may be a partner of a PreSyn: in another non-zero body, face
    adjacent to the PreSyn's body, within :data:`PARTNER_RADIUS` of it.

    Parameters
    ----------
    bodies : ndarray of uint64, shape (Z, Y, X)
    site : ndarray of int64, shape (3,)
        The PreSyn voxel (z, y, x).

    Returns
    -------
    voxels : ndarray of int64, shape (m, 3)
        The candidates (z, y, x), in C order.
    labels : ndarray of uint64, shape (m,)
        Their bodies.
    """
    reach = int(PARTNER_RADIUS) + 1
    start = np.maximum(site - reach, 0)
    stop = np.minimum(site + reach + 1, bodies.shape)
    window = bodies[tuple(slice(a, b) for a, b in zip(start, stop, strict=True))]
    own = window == bodies[tuple(site)]
    touches = np.zeros_like(own)
    for axis in range(3):
        lower, upper = _halves(axis)
        touches[lower] |= own[upper]
        touches[upper] |= own[lower]
    local = np.argwhere(touches & ~own & (window != 0))
    voxels = local.astype(np.int64) + start
    near = np.sum((voxels - site) ** 2, axis=1) <= PARTNER_RADIUS**2
    return voxels[near], window[tuple(local[near].T)]


def _pick_partners(
    bodies: NDArray[np.uint64], site: Coords, across: Coords, wanted: int,
    taken: set[tuple[int, ...]], rng: np.random.Generator, *, repeat_bodies: bool,
) -> Coords:
    """Choose up to ``wanted`` partners of a PreSyn: the voxel across its
    contact first, then random candidates in bodies not yet used, each at
    least :data:`MIN_PARTNER_SPACING` from the others and none in ``taken``.

    Parameters
    ----------
    bodies : ndarray of uint64, shape (Z, Y, X)
    site, across : ndarray of int64, shape (3,)
        The PreSyn voxel and the voxel across its contact (z, y, x).
    wanted : int
        How many partners to choose at most (1–4).
    taken : set of tuple of int
        Positions (z, y, x) other elements already have.
    rng : numpy.random.Generator
    repeat_bodies : bool
        When the bodies run out, go on with partners in bodies already used.

    Returns
    -------
    ndarray of int64, shape (k, 3)
        The partners (z, y, x), 0 ≤ k ≤ ``wanted``.
    """
    voxels, labels = _partner_voxels(bodies, site)
    first = np.all(voxels == across, axis=1)
    order = np.concatenate([np.flatnonzero(first), rng.permutation(np.flatnonzero(~first))])
    free = [i for i in order.tolist() if tuple(voxels[i].tolist()) not in taken]
    chosen: list[int] = []
    for allow_repeat in (False, True) if repeat_bodies else (False,):
        for i in free:
            if len(chosen) == wanted:
                break
            if not allow_repeat and np.any(labels[chosen] == labels[i]):
                continue
            # the spacing also keeps a voxel from being chosen twice
            if np.all(np.sum((voxels[chosen] - voxels[i]) ** 2, axis=1)
                      >= MIN_PARTNER_SPACING**2):
                chosen.append(i)
    return voxels[chosen]


def _elements(
    tbar: Coords, partners: Coords, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """One T-bar's DVID elements: its PreSyn, then one PostSyn per partner,
    related both ways.

    Parameters
    ----------
    tbar : ndarray of int64, shape (3,)
        The PreSyn voxel (z, y, x).
    partners : ndarray of int64, shape (k, 3)
        The PostSyn voxels (z, y, x).
    rng : numpy.random.Generator
        Draws each element's confidence from :data:`CONFIDENCE`.

    Returns
    -------
    list of dict
        k + 1 elements with ``Pos`` as [x, y, z].
    """
    pre_pos = _pos(tbar)
    post_pos = [_pos(voxel) for voxel in partners]
    pre = _element(pre_pos, "PreSyn", "PreSynTo", post_pos, rng)
    return [pre] + [_element(pos, "PostSyn", "PostSynTo", [pre_pos], rng) for pos in post_pos]


def _pos(voxel: Coords) -> list[int]:
    """A voxel (z, y, x), shape (3,), as DVID's ``Pos`` [x, y, z] of ints."""
    return [int(v) for v in voxel[::-1]]


def _element(
    pos: list[int], kind: str, rel: str, to: list[list[int]], rng: np.random.Generator
) -> dict[str, Any]:
    """A DVID element in its field order (``Pos``, ``Kind``, ``Tags``, ``Prop``,
    ``Rels``), marked synthetic, with a random confidence (strings only, as
    DVID's ``Prop`` holds)."""
    conf = rng.uniform(*CONFIDENCE)
    return {
        "Pos": pos,
        "Kind": kind,
        "Tags": [],
        "Prop": {"conf": f"{np.floor(conf * 1000) / 1000:.3f}", "synthetic": "true"},
        "Rels": [{"Rel": rel, "To": target} for target in to],
    }
