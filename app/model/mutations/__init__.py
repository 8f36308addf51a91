"""Mutation kinds: one module per kind, each a typed, immutable record.

See :mod:`app.model.mutations.base` for what a kind provides and
``docs/architecture.md`` for the journal's record schema.  Importing
this package registers every kind (:mod:`app.model.mutations.kinds`).
"""

# Each registers its kinds, in this order (that of ``segmend apply``'s help).
from app.model.mutations import merge, split, split_coarse  # noqa: I001, F401
from app.model.mutations import body_merge, cleave, split_supervoxel, body_split  # noqa: F401
from app.model.mutations import history_lines, label_counters  # noqa: F401
from app.model.mutations.base import Mutation
from app.model.mutations.kinds import apply_line, is_known, record_from_json, register

__all__ = ["Mutation", "apply_line", "is_known", "record_from_json", "register"]
