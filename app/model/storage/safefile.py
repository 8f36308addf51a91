"""Crash-safe HDF5 writing: a file object with buffered writes and a rollback file.

HDF5 has no journal: a process killed while the library writes its metadata
can leave a file that no longer opens.  segmend therefore hands HDF5 (through
h5py's ``fileobj`` driver) a :class:`SafeFile`, which keeps every write in
memory until :meth:`SafeFile.commit`, and commits the way SQLite's rollback
journal does:

1. the original bytes of every page about to be overwritten, and the file's
   original length, go to the rollback file, which is fsync'ed;
2. the buffered pages are written to the HDF5 file, which is fsync'ed;
3. the rollback file is deleted (the commit point).

:func:`recover` — run before every open — puts the pre-images back and
truncates the file if a commit was interrupted after step 1 began, so the file
is always exactly as it was after some completed commit: always openable.
Where nobody may recover it (a read-only folder), readers open a
:class:`CommittedView`, which reads the file as that rollback would leave it.
Callers flush HDF5 (``h5py.File.flush``) before committing, so that a
committed file is a complete, consistent HDF5 file.

A commit the disk refuses (full, I/O error) is rolled back at once; the
buffered pages stay, and the next commit writes them again.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

PAGE_SIZE = 1 << 16
_MAGIC = b"SEGMEND-ROLLBACK-1\n"
_HEADER = struct.Struct("<QQ")  # original length, number of pre-images
_ENTRY = struct.Struct("<QQ")  # offset, length
_TRAILER = struct.Struct("<I8s")  # crc32 of everything before, end marker
_END = b"COMPLETE"


class _NamedRawFile(io.RawIOBase):
    """A readable, seekable raw file object named by its path: h5py names a
    file object by its ``repr`` (``h5py.File.filename``, and the file name in
    HDF5's error messages)."""

    path: Path

    @property
    def name(self) -> str:
        """The HDF5 file's path."""
        return str(self.path)

    def __repr__(self) -> str:
        return str(self.path)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True


class SafeFile(_NamedRawFile):
    """A read/write file object whose writes reach the disk only on :meth:`commit`.

    Parameters
    ----------
    path : Path
        The HDF5 file (must exist).
    rollback : Path
        Where pre-images go during a commit.
    """

    def __init__(self, path: str | Path, rollback: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.rollback = Path(rollback)
        self._file = open(self.path, "r+b")  # noqa: SIM115 - closed in close()
        self._fd = self._file.fileno()
        self._committed_size = os.fstat(self._fd).st_size
        self._size = self._committed_size
        self._pos = 0
        self._dirty: dict[int, bytearray] = {}

    # io.RawIOBase interface used by h5py's fileobj driver
    def writable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        else:
            self._pos = self._size + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: WriteableBuffer) -> int:
        out = memoryview(buffer).cast("B")
        n = max(0, min(len(out), self._size - self._pos))
        if not self._dirty:
            got = os.preadv(self._fd, [out[:n]], self._pos) if n else 0
            out[got:n] = bytes(n - got)
        else:
            done = 0
            while done < n:
                pos = self._pos + done
                page, start = divmod(pos, PAGE_SIZE)
                take = min(n - done, PAGE_SIZE - start)
                buf = self._dirty.get(page)
                if buf is not None:
                    out[done : done + take] = buf[start : start + take]
                else:
                    got = os.preadv(self._fd, [out[done : done + take]], pos)
                    out[done + got : done + take] = bytes(take - got)
                done += take
        self._pos += n
        return n

    def write(self, data: ReadableBuffer) -> int:
        src = memoryview(data).cast("B")
        done = 0
        while done < len(src):
            page, start = divmod(self._pos + done, PAGE_SIZE)
            take = min(len(src) - done, PAGE_SIZE - start)
            self._page(page)[start : start + take] = src[done : done + take]
            done += take
        self._pos += done
        self._size = max(self._size, self._pos)
        return done

    def truncate(self, size: int | None = None) -> int:
        size = self._pos if size is None else size
        if size < self._size:
            for page in [p for p in self._dirty if p * PAGE_SIZE >= size]:
                del self._dirty[page]
            page, start = divmod(size, PAGE_SIZE)
            if page in self._dirty:
                self._dirty[page][start:] = bytes(PAGE_SIZE - start)
            elif start and size < self._committed_size:
                self._page(page)[start:] = bytes(PAGE_SIZE - start)
        self._size = size
        return size

    def flush(self) -> None:
        """Nothing to do: buffered writes wait for :meth:`commit`."""

    def _page(self, page: int) -> bytearray:
        buf = self._dirty.get(page)
        if buf is None:
            buf = bytearray(PAGE_SIZE)
            offset = page * PAGE_SIZE
            if offset < self._committed_size:
                got = os.preadv(self._fd, [buf], offset)
                buf[got:] = bytes(PAGE_SIZE - got)
            self._dirty[page] = buf
        return buf

    @property
    def pending_bytes(self) -> int:
        """Bytes buffered and not yet committed."""
        return len(self._dirty) * PAGE_SIZE

    def commit(self) -> None:
        """Make every buffered write durable, atomically (see the module docstring).

        The file never shrinks (bytes past HDF5's end of file are harmless), so
        the pre-images of overwritten pages are all a rollback needs.

        Raises
        ------
        OSError
            If the disk refuses the writes (full, I/O error).  The file is then
            rolled back at once, exactly as last committed, and the buffered
            pages stay: the next commit writes them again.
        """
        recover(self.path, self.rollback)  # a rollback an earlier failure could not finish
        if not self._dirty and self._size <= self._committed_size:
            return
        size = max(self._size, self._committed_size)
        try:
            _write_durably(self.rollback, self._rollback_parts())
            for page in sorted(self._dirty):
                offset = page * PAGE_SIZE
                length = min(PAGE_SIZE, size - offset)
                if length > 0:
                    _pwrite_all(self._fd, memoryview(self._dirty[page])[:length], offset)
            os.ftruncate(self._fd, size)
            os.fsync(self._fd)
            self.rollback.unlink()  # the commit point
        except OSError:
            with contextlib.suppress(OSError):  # else: done by the next commit or open
                recover(self.path, self.rollback)
            raise
        _fsync_dir(self.rollback.parent)
        self._dirty.clear()
        self._committed_size = size

    def _rollback_parts(self) -> list[bytes]:
        """The rollback file's contents: the file's length and the pre-images of
        the committed pages about to be overwritten, then a checksum."""
        overwritten = sorted(p for p in self._dirty if p * PAGE_SIZE < self._committed_size)
        parts = [_MAGIC, _HEADER.pack(self._committed_size, len(overwritten))]
        for page in overwritten:
            offset = page * PAGE_SIZE
            length = min(PAGE_SIZE, self._committed_size - offset)
            parts.append(_ENTRY.pack(offset, length))
            parts.append(os.pread(self._fd, length, offset))
        crc = 0
        for part in parts:
            crc = zlib.crc32(part, crc)
        parts.append(_TRAILER.pack(crc, _END))
        return parts

    def discard(self) -> None:
        """Drop every buffered write (the file stays as last committed)."""
        self._dirty.clear()
        self._size = self._committed_size

    def close(self) -> None:
        """Close without committing."""
        if not self._file.closed:
            self._file.close()
        super().close()


def recover(path: str | Path, rollback: str | Path) -> bool:
    """Undo an interrupted commit of ``path``; returns True if something was rolled back.

    A rollback file that is incomplete (the crash hit step 1) means the HDF5
    file was not touched yet: it is simply removed.
    """
    rollback = Path(rollback)
    if not rollback.exists():
        return False
    pending = _read_rollback(rollback)
    if pending is not None:
        size, pre_images = pending
        fd = os.open(path, os.O_RDWR)
        try:
            for offset, data in pre_images:
                _pwrite_all(fd, data, offset)
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)
    rollback.unlink()
    _fsync_dir(rollback.parent)
    return pending is not None


def _read_rollback(rollback: Path) -> tuple[int, list[tuple[int, memoryview]]] | None:
    """A complete rollback file's original length and pre-images (offset,
    bytes), in the order written; None if it is missing or incomplete."""
    try:
        data = rollback.read_bytes()
    except FileNotFoundError:
        return None
    body, trailer = memoryview(data)[: -_TRAILER.size], data[-_TRAILER.size :]
    if not (
        len(data) >= len(_MAGIC) + _HEADER.size + _TRAILER.size
        and data.startswith(_MAGIC)
        and _TRAILER.unpack(trailer) == (zlib.crc32(body), _END)
    ):
        return None
    size, count = _HEADER.unpack_from(body, len(_MAGIC))
    at = len(_MAGIC) + _HEADER.size
    pre_images = []
    for _ in range(count):
        offset, length = _ENTRY.unpack_from(body, at)
        at += _ENTRY.size
        pre_images.append((offset, body[at : at + length]))
        at += length
    return size, pre_images


class CommittedView(_NamedRawFile):
    """A file opened read-only as it was after its last completed commit: the
    file itself, or — while a rollback file says a commit was cut short and
    nobody may roll it back (a read-only folder) — the file with that
    commit's pre-images read in place of its bytes, cut to its former length.

    Parameters
    ----------
    path : Path
        The HDF5 file.
    rollback : Path
        Its rollback file (read once, when opened).
    """

    def __init__(self, path: str | Path, rollback: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._file = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        self._fd = self._file.fileno()
        pending = _read_rollback(Path(rollback))
        self._pre_images = [] if pending is None else pending[1]
        self._size = os.fstat(self._fd).st_size if pending is None else pending[0]
        self._pos = 0

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: WriteableBuffer) -> int:
        out = memoryview(buffer).cast("B")
        start = self._pos
        n = os.preadv(self._fd, [out[: max(0, min(len(out), self._size - start))]], start)
        for offset, data in self._pre_images:
            lo, hi = max(offset, start), min(offset + len(data), start + n)
            if lo < hi:
                out[lo - start : hi - start] = data[lo - offset : hi - offset]
        self._pos += n
        return n

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        super().close()


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    """Write all of ``data`` at ``offset``: a disk filling up writes part of it,
    then refuses the rest (OSError)."""
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], offset + done)


def _write_durably(path: Path, parts: list[bytes]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        for part in parts:
            data = memoryview(part)
            while data:
                data = data[os.write(fd, data) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
