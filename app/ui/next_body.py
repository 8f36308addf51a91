"""*Next body*: walk the bodies ranked by their PostSyn synapses, most first.

Each step reads the ranking (``Dataset.annotations.top("synapses", n)``, as
DVID's labelsz serves it) on the session's worker pool, deep enough to hold a
body not visited yet, and emits the first such body; the proofreading dock
then goes to it and selects it.  The ranking is read again at each step, so
it follows the edits made meanwhile (a merge moves the synapses of the merged
bodies).  When every ranked body has been visited the walk starts again from
the top; it starts afresh with each dataset opened.  GUI thread only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtCore import QObject, Signal, Slot

from app.ui.annotation_jobs import SYNAPSES
from app.ui.controller import Session

if TYPE_CHECKING:
    from app.model.dataset import Dataset

Ranking = list[dict[str, int]]
"""``[{"Label": body, "Size": PostSyn count}]``, most first."""


class NextBody(QObject):
    """The walk down the PostSyn ranking.

    Parameters
    ----------
    session : Session
        Whose dataset's ``synapses`` set ranks the bodies.
    """

    found = Signal(int, str)
    """``(body, what it is)``: the next body and a line saying its rank. GUI thread."""
    message = Signal(str)
    """A one-line status (no ranked body, or a read failed). GUI thread."""

    def __init__(self, session: Session, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.visited: list[int] = []
        """The bodies the walk went to, in order."""
        self._busy = False
        session.opened.connect(self._on_opened)

    @Slot(object)
    def _on_opened(self, _dataset: Dataset) -> None:
        self.visited = []
        self._busy = False

    def next(self) -> None:
        """Read the ranking on the pool and emit the next body (one step at a time)."""
        if self._busy or self.session.dataset is None:
            return
        depth = len(self.visited) + 1

        def failed(exc: BaseException) -> None:
            self._busy = False
            self.message.emit(self.session.reporter.error(exc, context="next body"))

        job = self.session.read(lambda ds: ds.annotations.top(SYNAPSES, depth), self._ranked,
                                name="rank bodies by synapses", on_error=failed)
        self._busy = job is not None

    def _ranked(self, ranking: Ranking) -> None:
        self._busy = False
        if not ranking:
            self.message.emit(self.session.reporter.error(
                f"no body has PostSyn elements in a {SYNAPSES!r} annotation set",
                context="next body"))
            return
        visited = set(self.visited)
        rank, entry = next(((i, e) for i, e in enumerate(ranking, 1)
                            if e["Label"] not in visited), (0, None))
        again = ""
        if entry is None:  # every ranked body was visited: from the top again
            self.visited, rank, entry = [], 1, ranking[0]
            again = "; every ranked body visited, from the top again"
        body = int(entry["Label"])
        self.visited.append(body)
        self.found.emit(body, f"#{rank} by PostSyn count: {entry['Size']:,}{again}")
