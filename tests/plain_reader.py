"""A plain HDF5 reader for the concurrent readers' stress test.

Usage: python tests/plain_reader.py DATASET SECONDS RULE

For SECONDS, opens DATASET with h5py's default settings (HDF5's own file
locking on), reads every label level and checks that each is the exact
downsampling of the one above (a chunk of a half-written checkpoint would
break it), then closes it.  Prints one JSON line: reads (complete and
consistent), refused (HDF5's file lock refused the open: a checkpoint was
committing), inconsistent, failed (any other error, with the first message).
"""

from __future__ import annotations

import itertools
import json
import sys
import time

import h5py
import hdf5plugin  # noqa: F401 - registers the Blosc filter, as any reader of the file does
import numpy as np

from app.kernels import reference


def main(path: str, seconds: float, rule: str) -> None:
    counts = {"reads": 0, "refused": 0, "inconsistent": 0, "failed": 0}
    first_failure = ""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            with h5py.File(path, "r") as f:
                group = f["labels"]
                levels = [group[f"s{i}"][...] for i in range(len(group))]
        except OSError as exc:
            if "unable to lock file" in str(exc):
                counts["refused"] += 1
                continue
            counts["failed"] += 1
            first_failure = first_failure or str(exc)
            continue
        consistent = all(
            np.array_equal(reference.downsample_labels_ref(above, rule), below)
            for above, below in itertools.pairwise(levels)
        )
        counts["reads" if consistent else "inconsistent"] += 1
    print(json.dumps({**counts, "first_failure": first_failure}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), sys.argv[3])
