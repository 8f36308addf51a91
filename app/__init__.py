"""segmend: proofread large 3D segmentations stored as HDF5 label pyramids."""

__version__ = "0.1.0"
