"""Background block reads for the napari reader's layers.

napari calls a reader on the GUI thread and wants the layers' data at once.
The reader's layers read like the app's: a :class:`~app.ui.lazy.CachedLevel`
answers from blocks already in memory, missing blocks are read by a
:class:`~app.ui.lazy.BlockLoader` on a worker pool, and the layers showing a
level are refreshed (on the GUI thread) when its blocks arrive.  So opening a
file with napari never reads HDF5 on the GUI thread, and the file is open only
while a worker reads it.  A proofreading widget that adopts the layers gives
them its own levels; these then go idle.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import QObject, Slot

from app.ui.lazy import BlockLoader, BlockSource, CachedLevel, Level
from app.ui.workers import TaskRunner

_alive: list[ReaderLoads] = []
"""Every reader's loads, kept for the session (napari holds only the data)."""


class ReaderLoads(QObject):
    """The worker pool, loader and levels of one file opened by the reader.

    Parameters
    ----------
    source : BlockSource
        Where blocks are read (a dataset, or plain volumes).
    """

    def __init__(self, source: BlockSource) -> None:
        super().__init__()
        self.runner = TaskRunner(parent=self)
        self.loader = BlockLoader(source, self.runner, self)
        self.loader.loaded.connect(self._on_loaded)
        _alive.append(self)

    def level(self, array: Level, block_size: tuple[int, int, int]) -> CachedLevel:
        """A level for a layer, reading through this loader."""
        return CachedLevel(array, block_size, self.loader)

    @Slot(str, int)
    def _on_loaded(self, kind: str, scale: int) -> None:
        """GUI thread: refresh the layers that show blocks of ``kind``/``scale``."""
        import napari

        viewer = napari.current_viewer()
        if viewer is None:
            return
        for layer in viewer.layers:
            if any(_reads_through(d, self.loader, kind, scale) for d in _levels_of(layer)):
                layer.refresh()


def _levels_of(layer: Any) -> list[Any]:
    return list(layer.data) if getattr(layer, "multiscale", False) else [layer.data]


def _reads_through(data: Any, loader: BlockLoader, kind: str, scale: int) -> bool:
    return (isinstance(data, CachedLevel) and data.loader is loader and data.kind == kind
            and data.scale == scale)
