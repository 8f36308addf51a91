"""Pure Numba kernels over NumPy arrays (no I/O, no Qt, no app.model).

Every public function here is a front end that validates its arguments (dtype,
ndim, shape, contiguity) and dispatches to a single-threaded ``@njit(nogil=True)``
kernel, so callers may run them in parallel on a thread pool.
"""

from app.kernels.counting import count_equal, count_in, label_counts
from app.kernels.downsample import (
    RULES,
    downsample_image,
    downsample_image_into,
    downsample_labels,
    downsample_labels_into,
    downsample_palette_into,
    downsampled_shape,
)
from app.kernels.element_text import element_positions_json
from app.kernels.mapping import check_mapping, map_block, map_ids
from app.kernels.palette import gather, palettize, split_index
from app.kernels.relabel import (
    index_dtype,
    relabel_indexed,
    relabel_inplace,
    remap_inplace,
)
from app.kernels.rle import (
    canonical_rles,
    check_rles_in_bounds,
    encode_rles,
    mask_to_rles,
    parse_rles,
    rles_by_block,
    rles_cover_box,
    rles_to_mask,
    rles_voxel_count,
)

__all__ = [
    "RULES",
    "canonical_rles",
    "check_mapping",
    "check_rles_in_bounds",
    "count_equal",
    "count_in",
    "downsample_image",
    "downsample_image_into",
    "downsample_labels",
    "downsample_labels_into",
    "downsample_palette_into",
    "downsampled_shape",
    "element_positions_json",
    "encode_rles",
    "gather",
    "index_dtype",
    "label_counts",
    "map_block",
    "map_ids",
    "mask_to_rles",
    "palettize",
    "parse_rles",
    "relabel_indexed",
    "relabel_inplace",
    "remap_inplace",
    "rles_by_block",
    "rles_cover_box",
    "rles_to_mask",
    "rles_voxel_count",
    "split_index",
]
