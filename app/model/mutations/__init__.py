"""Mutation kinds: one module per kind, each a typed, immutable record.

See :mod:`app.model.mutations.base` for what a kind provides and
``docs/architecture.md`` for the journal's record schema.  Importing
this package registers every kind (:mod:`app.model.mutations.kinds`).
"""

from app.model.mutations import (  # noqa: F401  (each registers its kinds)
    history_lines,
    label_counters,
    merge,
    merge_undo,
    split,
    split_coarse,
)
from app.model.mutations.base import Mutation
from app.model.mutations.kinds import apply_line, record_from_json, register

__all__ = ["Mutation", "apply_line", "record_from_json", "register"]
