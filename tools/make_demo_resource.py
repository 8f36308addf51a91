"""Make ``resources/fib-medulla-250.h5`` from the neuroproof training sample.

Usage: python tools/make_demo_resource.py SOURCE.h5 resources/fib-medulla-250.h5

Keeps the grayscale, the automated supervoxels with their agglomeration
mapping, the automated segmentation mapped to its bodies (what the demo
proofreads) and the ground-truth bodies (for scoring), gzip-compressed so that
any HDF5 reader opens it.
"""

from __future__ import annotations

import sys

import h5py
import numpy as np


def map_bodies(supervoxels: np.ndarray, mapping: np.ndarray) -> np.ndarray:
    """Apply a (supervoxel, body) table; unmapped supervoxels keep their id."""
    order = np.argsort(mapping[:, 0])
    keys, values = mapping[order, 0], mapping[order, 1]
    idx = np.clip(np.searchsorted(keys, supervoxels), 0, len(keys) - 1)
    return np.where(keys[idx] == supervoxels, values[idx], supervoxels)


def main(src: str, out: str) -> None:
    with h5py.File(src, "r") as f, h5py.File(out, "w") as g:
        kw = dict(chunks=(64, 64, 64), compression="gzip", compression_opts=9, shuffle=True)
        sv = f["automated/supervoxels"][:]
        mapping = f["automated/mapping"][:]
        g.create_dataset("raw", data=f["raw"][:], **kw)
        g.create_dataset("automated/supervoxels", data=sv, **kw)
        g.create_dataset("automated/mapping", data=mapping, compression="gzip")
        g.create_dataset("automated/bodies", data=map_bodies(sv, mapping), **kw)
        g.create_dataset("groundtruth/bodies", data=f["groundtruth/bodies"][:], **kw)
        g.attrs["source"] = "janelia-flyem/neuroproof_examples (commit ce839e17), training_sample2"
        g.attrs["licence"] = "Creative Commons attribution; see fib-medulla-250.LICENSE.txt"
        g.attrs["voxel_size_nm"] = np.array([10.0, 10.0, 10.0])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
