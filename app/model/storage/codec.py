"""Block codecs that match an HDF5 dataset's declared filter pipeline.

h5py holds one global lock around every HDF5 call, including the filter
pipeline.  segmend therefore moves whole compressed chunks through HDF5 with
``read_direct_chunk``/``write_direct_chunk`` (cheap, under the lock) and runs
the codec here, outside that lock, in a codec that releases the GIL.  The bytes
produced are exactly what the dataset's declared filter expects, so any HDF5
reader (h5py with hdf5plugin, h5dump with the plugin path, Fiji, ...) decodes
the file unchanged.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import blosc
import h5py
import hdf5plugin
import numpy as np
from numpy.typing import NDArray

from app.model.storage.layout import COMPRESSIONS

blosc.set_releasegil(True)
blosc.set_nthreads(1)

BLOSC_FILTER_ID = 32001
DEFLATE_FILTER_ID = 1
SHUFFLE_FILTER_ID = 2

_BLOSC_CNAMES = ("blosclz", "lz4", "lz4hc", "snappy", "zlib", "zstd")

def dataset_filter_kwargs(compression: str) -> dict[str, Any]:
    """Keyword arguments for ``h5py.Group.create_dataset`` declaring ``compression``.

    ``blosc-lz4`` is Blosc with LZ4 and *no* byte shuffle: for uint64 labels,
    whose high bytes are almost always zero and whose runs are long, shuffling
    costs time and compresses worse.
    """
    if compression == "blosc-lz4":
        return dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.NOSHUFFLE))
    if compression == "blosc-zstd":
        return dict(hdf5plugin.Blosc(cname="zstd", clevel=3, shuffle=hdf5plugin.Blosc.NOSHUFFLE))
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": 1}
    if compression == "none":
        return {}
    raise ValueError(
        f"unknown compression {compression!r}; choose one of {', '.join(COMPRESSIONS)}"
    )


@dataclass(frozen=True)
class BlockCodec:
    """Encode and decode whole HDF5 chunks of one dataset.

    Parameters
    ----------
    dtype : numpy.dtype
        The dataset's element type.
    chunk_shape : tuple of int
        The dataset's chunk shape (z, y, x); every chunk is stored full-size,
        also at the volume's far edges.
    filters : tuple
        ``(filter_id, cd_values)`` pairs in pipeline order.
    """

    dtype: np.dtype[Any]
    chunk_shape: tuple[int, int, int]
    filters: tuple[tuple[int, tuple[int, ...]], ...]

    @classmethod
    def for_dataset(cls, dset: h5py.Dataset) -> BlockCodec | None:
        """The codec for ``dset``, or None if its layout or filters need HDF5's own path."""
        if dset.chunks is None or len(dset.chunks) != 3:
            return None
        plist = dset.id.get_create_plist()
        filters = tuple(
            (int(fid), tuple(int(v) for v in cd))
            for fid, _flags, cd, _name in (plist.get_filter(i) for i in range(plist.get_nfilters()))
        )
        codec = cls(np.dtype(dset.dtype), tuple(dset.chunks), filters)
        return codec if codec.supported else None

    @property
    def supported(self) -> bool:
        """True if this module can produce and read the pipeline's bytes itself."""
        ids = tuple(fid for fid, _ in self.filters)
        return ids in (
            (),
            (BLOSC_FILTER_ID,),
            (DEFLATE_FILTER_ID,),
            (SHUFFLE_FILTER_ID, DEFLATE_FILTER_ID),
        )

    @property
    def chunk_nbytes(self) -> int:
        """Bytes of one decoded full chunk."""
        return int(np.prod(self.chunk_shape)) * self.dtype.itemsize

    def encode(self, chunk: NDArray[Any]) -> bytes:
        """Compress one full chunk.

        Parameters
        ----------
        chunk : ndarray of ``dtype``, shape ``chunk_shape``
            C-contiguous.
        """
        data: Any = np.ascontiguousarray(chunk, dtype=self.dtype)
        for fid, cd in self.filters:
            if fid == SHUFFLE_FILTER_ID:
                data = _byte_shuffle(np.frombuffer(data, np.uint8), self.dtype.itemsize)
            elif fid == DEFLATE_FILTER_ID:
                data = zlib.compress(memoryview(data), cd[0] if cd else 6)
            elif fid == BLOSC_FILTER_ID:
                data = blosc.compress(
                    memoryview(data),
                    typesize=self.dtype.itemsize,
                    clevel=cd[4] if len(cd) > 4 else 5,
                    shuffle=cd[5] if len(cd) > 5 else blosc.SHUFFLE,
                    cname=_BLOSC_CNAMES[cd[6]] if len(cd) > 6 else "blosclz",
                )
        return bytes(data)

    def encode_clipped(self, block: NDArray[Any]) -> bytes:
        """Compress a block clipped at the volume's far edge as the full chunk
        HDF5 stores (zero-padded to ``chunk_shape``).

        Parameters
        ----------
        block : ndarray of ``dtype``, shape at most ``chunk_shape`` per axis
        """
        if block.shape != self.chunk_shape:
            full = np.zeros(self.chunk_shape, self.dtype)
            full[tuple(slice(0, n) for n in block.shape)] = block
            block = full
        return self.encode(block)

    def decode(self, payload: bytes, out: NDArray[Any] | None = None) -> NDArray[Any]:
        """Decompress one chunk into an array of shape ``chunk_shape``.

        Parameters
        ----------
        out : ndarray of ``dtype``, shape ``chunk_shape``, C-contiguous, optional
            Scratch to decode into (Blosc decodes straight into it); else a new array.

        Raises
        ------
        ValueError
            If the payload does not decode to exactly one chunk.
        """
        if self.filters and self.filters[-1][0] == BLOSC_FILTER_ID and len(self.filters) == 1:
            return self._decode_blosc(payload, out)
        data: Any = payload
        for fid, _cd in reversed(self.filters):
            if fid == BLOSC_FILTER_ID:
                data = blosc.decompress(data)
            elif fid == DEFLATE_FILTER_ID:
                data = zlib.decompress(data)
            elif fid == SHUFFLE_FILTER_ID:
                data = _byte_unshuffle(np.frombuffer(data, np.uint8), self.dtype.itemsize)
        arr = np.frombuffer(data, dtype=self.dtype)
        got = arr.size * self.dtype.itemsize
        if got != self.chunk_nbytes:
            raise ValueError(f"chunk decodes to {got} bytes, expected {self.chunk_nbytes}")
        return arr.reshape(self.chunk_shape)

    def _decode_blosc(self, payload: bytes, out: NDArray[Any] | None) -> NDArray[Any]:
        """Blosc straight into ``out`` or a new array (no intermediate bytes object)."""
        nbytes, _cbytes, _blocksize = blosc.get_cbuffer_sizes(payload)
        if nbytes != self.chunk_nbytes:
            raise ValueError(f"chunk decodes to {nbytes} bytes, expected {self.chunk_nbytes}")
        arr = np.empty(self.chunk_shape, self.dtype) if out is None else out
        blosc.decompress_ptr(payload, arr.__array_interface__["data"][0])
        return arr


def _byte_shuffle(raw: NDArray[np.uint8], itemsize: int) -> NDArray[np.uint8]:
    """HDF5's shuffle filter: byte k of every element, then byte k+1, ..."""
    return np.ascontiguousarray(raw.reshape(-1, itemsize).T).reshape(-1)


def _byte_unshuffle(raw: NDArray[np.uint8], itemsize: int) -> NDArray[np.uint8]:
    """Inverse of :func:`_byte_shuffle`."""
    return np.ascontiguousarray(raw.reshape(itemsize, -1).T).reshape(-1)
