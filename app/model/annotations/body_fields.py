"""The fields and statuses of body annotations (NeuTu's), for the model and the
command line alike (no heavy imports)."""

STATUSES = (
    "Orphan-artifact", "Orphan", "Orphan hotknife", "Not examined", "0.5assign", "Leaves",
    "Anchor", "Cervical Anchor", "Soma Anchor", "Hard to trace", "Unimportant",
    "Partially traced", "Prelim Roughly traced", "Roughly traced", "Traced in ROI", "Traced",
    "Finalized",
)
"""NeuTu's statuses (its ``body_status_v2``), least to most finished."""
PROTECTED = ("Finalized",)
"""The statuses that refuse merges and splits by default."""
FIELDS = ("status", "name", "class", "comment")
"""The fields a body annotation's update sets (others are kept as written)."""
