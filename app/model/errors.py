"""Exceptions raised by the model; every message names what was wrong."""


class SegmendError(Exception):
    """Base class of every error segmend reports to a user."""


class FormatError(SegmendError):
    """The file is not a readable pyramid (foreign, corrupt or of an unknown version)."""


class ReadOnlyError(SegmendError):
    """A write was attempted on a dataset opened read-only."""


class WriterLockedError(SegmendError):
    """Another process holds the dataset open for writing."""


class InvalidMutationError(SegmendError, ValueError):
    """A mutation's arguments are invalid; nothing was changed."""


class NothingToUndoError(SegmendError):
    """``undo`` or ``redo`` was asked for with an empty stack."""


class CancelledError(SegmendError):
    """A long job was cancelled by its caller."""


class FileBusyError(SegmendError):
    """Another program has the HDF5 file open: a checkpoint cannot write it now."""


class JournalWriteError(SegmendError):
    """The journal could not be written (disk full, I/O error); the edit was not made."""


class CheckpointError(SegmendError):
    """The HDF5 file could not be written; the edits it lacks are safe in the journal."""


class StagingFullError(SegmendError):
    """An edit was refused: checkpoints fail and too many edited blocks wait in memory."""


class FileWriteError(SegmendError):
    """An edit was refused: it needed to write the HDF5 file first, which failed."""
