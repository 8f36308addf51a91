"""File > Import volume: build a pyramid from a plain HDF5 or NumPy volume.

The build (``app.model.bulk.build.build_pyramid``) runs on the worker pool with a
progress bar and a Cancel button; cancelling leaves no file.  Listing the
volumes inside an HDF5 file (:func:`app.model.storage.volumes.list_volumes`) also
runs on the pool.
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.model.bulk.build import build_pyramid
from app.model.error_text import one_line
from app.model.errors import CancelledError
from app.model.storage.volumes import VolumeInfo, label_volumes, list_volumes
from app.ui.messages import MessageReporter
from app.ui.texts import count
from app.ui.workers import Job, TaskRunner

NO_IMAGE = "(none)"


def source_spec(path: str, dataset: str) -> str:
    """The ``build`` source spec of a file and a dataset inside it."""
    return path if path.endswith(".npy") or not dataset else f"{path}:{dataset}"


class ImportDialog(QDialog):
    """Pick a labels volume (and an optional grayscale one), build its pyramid.

    Parameters
    ----------
    runner : TaskRunner
        Where listing and building run.
    reporter : MessageReporter
        Where errors are shown.
    """

    built = Signal(str)
    """The path of the pyramid built.  GUI thread."""

    def __init__(self, runner: TaskRunner, reporter: MessageReporter,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import volume - build a segmend pyramid")
        self.runner = runner
        self.reporter = reporter
        self.job: Job | None = None
        self.source = QLineEdit(self)
        self.source.editingFinished.connect(self._list_source)
        browse = QPushButton("Browse...", self)
        browse.clicked.connect(self._browse)
        self.labels = QComboBox(self)
        self.image = QComboBox(self)
        self.image.addItem(NO_IMAGE)
        self.out = QLineEdit(self)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.state = QLabel("", self)
        self.build_button = QPushButton("Build", self)
        self.build_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel)
        row = QHBoxLayout()
        row.addWidget(self.source, 1)
        row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Volume file (.h5 / .npy)", row)
        form.addRow("Labels", self.labels)
        form.addRow("Grayscale", self.image)
        form.addRow("Write pyramid to", self.out)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.build_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.state)
        layout.addLayout(buttons)
        self.resize(560, 220)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Volume to import", "",
                                              "Volumes (*.h5 *.hdf5 *.hdf *.npy);;All files (*)")
        if path:
            self.set_source(path)

    def set_source(self, path: str) -> None:
        """Choose the source file (its volumes are listed in the background)."""
        self.source.setText(path)
        if not self.out.text():
            p = Path(path)
            self.out.setText(str(p.with_name(p.stem + "-pyramid.h5")))
        self._list_source()

    def _list_source(self) -> None:
        path = self.source.text().strip()
        self.labels.clear()
        self.image.clear()
        self.image.addItem(NO_IMAGE)
        if not path:
            return
        if path.endswith(".npy"):
            self.labels.addItem("", "")
            return
        self.state.setText("reading the file...")
        self.runner.submit(lambda _job: list_volumes(path), name="list volumes",
                           on_done=self._fill_volumes,
                           on_error=lambda exc: self._fail(f"cannot read {Path(path).name}", exc))

    def _fill_volumes(self, volumes: list[VolumeInfo]) -> None:
        found = f"{count(len(volumes), '3D volume')} found" if volumes else "no 3D volume found"
        self.state.setText(found)
        for volume in volumes:
            text = f"{volume.name}  ({volume.describe()})"
            self.labels.addItem(text, volume.name)
            self.image.addItem(text, volume.name)
        labels = label_volumes(volumes)
        if labels:
            self.labels.setCurrentIndex(volumes.index(labels[0]))

    def start(self) -> None:
        """Build the pyramid in the background."""
        path = self.source.text().strip()
        out = self.out.text().strip()
        if not path or not out:
            self.reporter.error("choose a volume file and where to write the pyramid",
                                context="import")
            return
        labels = source_spec(path, str(self.labels.currentData() or ""))
        image_ds = self.image.currentData()
        image = source_spec(path, str(image_ds)) if image_ds else None
        self.build_button.setEnabled(False)
        self.progress.setRange(0, 0)
        self.state.setText("building...")

        def build(job: Job) -> str:
            return str(build_pyramid(labels, out, image=image, progress=job.report,
                                     cancel=job.cancel_event))

        self.job = self.runner.submit(build, name="import", on_done=self._done,
                                      on_error=self._build_failed, on_progress=self._progress)

    def _progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)

    def cancel(self) -> None:
        """Cancel a running build (or close the dialog)."""
        if self.job is not None:
            self.job.cancel()
            self.state.setText("cancelling...")
        else:
            self.reject()

    def _done(self, path: str) -> None:
        self.job = None
        self.build_button.setEnabled(True)
        self.state.setText(f"built {path}")
        self.built.emit(path)
        self.accept()

    def _build_failed(self, exc: BaseException) -> None:
        self.job = None
        self.build_button.setEnabled(True)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        if isinstance(exc, CancelledError):
            self.state.setText("import cancelled; nothing was written")
            return
        self._fail("import failed", exc)

    def _fail(self, context: str, exc: BaseException) -> None:
        self.state.setText(f"{context}: {one_line(exc)}")
        self.reporter.error(exc, context=context)
