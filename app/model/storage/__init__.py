"""The HDF5 label pyramid: its layout, block codec and I/O, the block cache, the
staged blocks of edits, the crash-safe file object, and lazily read arrays."""
