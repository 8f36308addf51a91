"""Which of a few labels each voxel holds: one GIL-free pass over the voxels.

The model's entry to the kernel the app's highlight layer needs (the UI calls
kernels only through the model).  It loads Numba code: the app imports it once
the dataset is open, when the kernels are loaded already.
"""

from __future__ import annotations

from typing import Any

from numpy.typing import NDArray

from app.kernels import relabel_indexed


def label_positions(labels: NDArray[Any], sorted_ids: NDArray[Any]) -> NDArray[Any]:
    """Per voxel, ``k + 1`` where it holds ``sorted_ids[k]``, else 0.

    Parameters
    ----------
    labels : NDArray[uint8 | uint16 | uint32 | uint64], any shape
        The voxels; not modified.
    sorted_ids : NDArray[uint64], shape (n,), n >= 1
        Sorted, distinct labels to look for.

    Returns
    -------
    NDArray[unsigned int], same shape as ``labels``
        A new array of the narrowest unsigned dtype that holds ``n``.
    """
    _relabelled, index, _n = relabel_indexed(labels, sorted_ids, 0)
    return index
