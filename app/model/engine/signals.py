"""The engine's plain (psygnal) events."""

from __future__ import annotations

from psygnal import Signal


class EngineSignals:
    """Events of the engine, emitted while a mutation holds the engine, from the
    thread running it (``mutation_started`` and ``labels_changed``: from the
    engine's commit thread; ``blocks_changed`` after a labelmap merge or
    cleave: from a pool thread): slots must return quickly and must not call back
    into the dataset (hand work to another thread or a Qt queue)."""

    mutation_started = Signal(object)
    """A mutation's s0 phase is durable: its record
    (:class:`app.model.mutations.base.Mutation`)."""
    mutation_completed = Signal(object)
    """Every level of a mutation is written (or a mutation without voxels is
    durable): its record."""
    blocks_changed = Signal(int, list)
    """``(scale, [block coords])`` now show new data."""
    labels_changed = Signal(list)
    """Labels whose size or blocks changed."""
