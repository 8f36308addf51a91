"""Annotation writes from the app: durable journal commits, never on the GUI thread.

A bookmark added or deleted, a body's status or name set: each is one durable
journal transaction (an fsync) that waits for any edit under way (the model
closes the edits' gate).  :func:`write` runs it on the session's edit lane
(:data:`~app.ui.controller.LANE`), after the edits already asked for and
before a close, and marks it essential (it runs even at shutdown); its
result, or its one-line error, comes back on the GUI thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.ui.controller import LANE, Session
from app.ui.workers import Job

if TYPE_CHECKING:
    from app.model.dataset import Dataset

SYNAPSES = "synapses"
"""The annotation set of the synapses (PreSyn and PostSyn elements)."""
BOOKMARKS = "bookmarks"
"""The annotation set of the proofreader's bookmarks (Note elements)."""


def write(session: Session, fn: Callable[[Dataset], Any], on_done: Callable[[Any], None], *,
          name: str, context: str, on_error: Callable[[str], None]) -> Job | None:
    """Run the annotation write ``fn(dataset)`` on the edit lane.

    Parameters
    ----------
    session : Session
        Its open dataset (writable) is written.
    fn : callable
        The write, run on a pool thread.
    on_done : callable
        Called on the GUI thread with ``fn``'s result (not if the dataset was
        closed meanwhile).
    name : str
        What the job does (the status bar's pending work).
    context : str
        How its error line begins.
    on_error : callable
        Called on the GUI thread with the line shown (the session's reporter
        shows it too, even after a close) when the write is refused or fails:
        nothing changed.

    Returns
    -------
    Job or None
        The job, or None if refused at once (no dataset, or read-only).
    """
    dataset = session.dataset
    if dataset is None or not session.writable:
        why = "no dataset is open" if dataset is None else \
            f"{dataset.path.name} is open read-only"
        on_error(session.reporter.error(why, context=context))
        return None
    generation = session.generation

    def done(result: Any) -> None:
        if generation == session.generation:
            on_done(result)

    def failed(exc: BaseException) -> None:
        line = session.reporter.error(exc, context=context)
        if generation == session.generation:
            on_error(line)

    return session.runner.submit(lambda _job: fn(dataset), name=name, lane=LANE,
                                 essential=True, on_done=done, on_error=failed)
