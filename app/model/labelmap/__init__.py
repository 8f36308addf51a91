"""Labelmap mode: supervoxels in the voxels, bodies in a mapping (DVID labelmap)."""

from app.model.labelmap.mapping import Mapping, read_mapping

__all__ = ["Mapping", "read_mapping"]
