"""Permanent status-bar indicators: pending work, mutations, outbox backlog, Kafka state;
while checkpoints fail, that the HDF5 file is not being written; while a dataset
opens, the progress of its long stages (building the demo, indexing)."""

from __future__ import annotations

import html

from qtpy.QtCore import Slot
from qtpy.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QWidget

from app.ui.deferred import DeferredUpdates
from app.ui.stats import DatasetStats
from app.ui.texts import count

KAFKA_STATES = ("connected", "connecting", "down", "off")
_KAFKA_COLOURS = {
    "connected": "#3fb950",
    "connecting": "#d29922",
    "down": "#f85149",
    "off": "#8b949e",
}


class StatusIndicators(QWidget):
    """Four small labels for the main window's status bar, a fifth shown only
    while checkpoints fail, and a stage label with a progress bar shown only
    during a long stage (:meth:`set_progress`).  GUI thread only.

    The labels show a change :data:`~app.ui.deferred.STATUS_DELAY_MS` later
    (batched, see :mod:`app.ui.deferred`); :meth:`texts` gives the four new
    texts at once, :attr:`checkpoint_error` the fifth's.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.stage = QLabel(self)
        self.stage.hide()
        self.bar = QProgressBar(self)
        self.bar.setMaximumWidth(160)
        self.bar.hide()
        self.checkpoint = QLabel(self)
        self.checkpoint.hide()
        self.checkpoint_error: str | None = None
        self.pending = QLabel(self)
        self.mutations = QLabel(self)
        self.backlog = QLabel(self)
        self.kafka = QLabel(self)
        self._labels = (self.pending, self.mutations, self.backlog, self.kafka)
        self._texts = ["", "", "", ""]
        self.updates = DeferredUpdates(parent=self)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 6, 0)
        layout.setSpacing(14)
        for label in (self.stage, self.bar, self.checkpoint, *self._labels):
            layout.addWidget(label)
        self.kafka_state = "off"
        self.kafka_backlog: int | None = None
        self.set_pending(0, 0)
        self.set_stats(DatasetStats(0, None))
        self.updates.flush()

    def _set(self, which: int, text: str) -> None:
        self._texts[which] = text
        label = self._labels[which]
        self.updates.put(str(which), lambda: label.setText(text))

    @Slot(int, int)
    def set_pending(self, jobs: int, edits: int) -> None:
        """Background jobs (reads and edits) and edits among them."""
        self._set(0, f"working: {count(edits, 'edit')}, {count(jobs, 'job')}" if jobs else "idle")

    @Slot(object)
    def set_stats(self, stats: DatasetStats) -> None:
        """Mutation count, outbox backlog and Kafka state of the open dataset."""
        self._set(1, count(stats.mutations, "mutation"))
        self.kafka.setToolTip(stats.kafka_error or "")
        self.set_kafka_status(stats.kafka, stats.backlog)
        self.set_checkpoint_error(stats.checkpoint_error)

    @Slot(str, int, int)
    def set_progress(self, stage: str, done: int, total: int) -> None:
        """Show the progress of a long stage (e.g. building the demo); total 0: unknown."""
        self.stage.setText(stage)
        self.bar.setRange(0, max(0, total))
        self.bar.setValue(min(done, total) if total > 0 else 0)
        self.stage.show()
        self.bar.show()

    @Slot()
    def clear_progress(self, *_args: object) -> None:
        """The stage is over: hide its progress."""
        self.stage.hide()
        self.bar.hide()

    def set_checkpoint_error(self, error: str | None) -> None:
        """Why checkpoints fail (None: they do not): shown in red, the label hidden
        when there is nothing to say."""
        if error == self.checkpoint_error:
            return
        self.checkpoint_error = error
        label = self.checkpoint
        text = tip = ""
        if error is not None:
            text = f"<span style='color:{_KAFKA_COLOURS['down']}'>{html.escape(error)}</span>"
            tip = (
                f"The HDF5 file cannot be written ({error}). Every edit is safe in the "
                "journal; segmend retries and writes them into the file when it can."
            )

        def show() -> None:
            label.setText(text)
            label.setToolTip(tip)
            label.setVisible(error is not None)

        self.updates.put("checkpoint", show)

    def set_kafka_status(self, state: str, backlog: int | None) -> None:
        """Kafka sender state (``connected``, ``connecting``, ``down`` or ``off``) and the
        outbox backlog (None: unknown)."""
        if state not in KAFKA_STATES:
            raise ValueError(f"Kafka state must be one of {', '.join(KAFKA_STATES)}, got {state!r}")
        self.kafka_state = state
        self.kafka_backlog = None if backlog is None else int(backlog)
        colour = _KAFKA_COLOURS[state]
        self._set(3, f"Kafka: <span style='color:{colour}'>{state}</span>")
        value = self.kafka_backlog
        self._set(2, f"outbox: {f'{value:,}' if value is not None else '-'}")

    def texts(self) -> list[str]:
        """The four texts, as set (the labels may show them a moment later)."""
        return list(self._texts)
