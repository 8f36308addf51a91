"""OME-Zarr output (NGFF 0.5, Zarr v3, sharded): :mod:`~app.model.omezarr.metadata`
(the attributes), :mod:`~app.model.omezarr.writer` (creating the store and its
arrays), :mod:`~app.model.omezarr.export` (``segmend export``)."""
