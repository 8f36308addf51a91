"""What the canvas shows while a dataset opens: the demo's first build, the label index.

napari shows its "drag file(s) here" welcome on an empty viewer.  While
segmend opens a dataset, :class:`OpeningOverlay` turns it off (napari's
viewer widget's ``show_welcome_screen``) and shows what is going on instead:
which file, the stage (building the demo, indexing) and a progress bar.
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtCore import QEvent, QObject, Qt, Slot
from qtpy.QtWidgets import QLabel, QProgressBar, QVBoxLayout, QWidget

from app.ui.controller import BUILDING_DEMO, Session


def stage_text(stage: str, done: int, total: int) -> str:
    """One line for a stage's progress: ``"building the demo: 1,234 of 4,096 blocks"``."""
    if total <= 0:
        return f"{stage}..."
    return f"{stage}: {done:,} of {total:,} blocks ({100 * done // total}%)"


class OpeningOverlay(QWidget):
    """Covers the viewer (napari's welcome) while the session opens a dataset.

    Parameters
    ----------
    host : QWidget
        The widget to cover (napari's canvas widget, where napari's welcome
        shows); the overlay follows its size.
    welcome : QObject, optional
        napari's viewer widget: its ``show_welcome_screen`` is turned off meanwhile.
    session : Session
        Shown from :attr:`Session.opening` until the dataset is open or failed.
    """

    def __init__(self, host: QWidget, session: Session, welcome: QObject | None = None) -> None:
        super().__init__(host)
        self._welcome_host = welcome
        self.setObjectName("segmend.opening")
        self.setAutoFillBackground(True)
        self.title = QLabel("", self)
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title.setWordWrap(True)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        self.title.setFont(font)
        self.detail = QLabel("", self)
        self.detail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail.setWordWrap(True)
        self.bar = QProgressBar(self)
        self.bar.setRange(0, 0)  # busy until a total is known
        self.bar.setMaximumWidth(420)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(self.title)
        layout.addWidget(self.detail)
        layout.addWidget(self.bar, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(2)
        self.hide()
        self._welcome: bool | None = None
        """napari's welcome setting while the overlay shows (None: not shown)."""
        host.installEventFilter(self)
        session.opening.connect(self.start)
        session.open_progress.connect(self.progress)
        session.opened.connect(self.finish)
        session.open_failed.connect(self.finish)

    @Slot(object)
    def start(self, path: Path) -> None:
        """A dataset starts opening."""
        self.title.setText(f"Opening {Path(path).name}...")
        self.detail.setText(str(path))
        self.bar.setRange(0, 0)
        self._cover()

    @Slot(str, int, int)
    def progress(self, stage: str, done: int, total: int) -> None:
        """Progress of a stage of the open."""
        if stage == BUILDING_DEMO:
            self.title.setText("Building the demo dataset (first run only)...")
        self.detail.setText(stage_text(stage, done, total))
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
        if self.isHidden():
            self._cover()

    @Slot()
    def finish(self, *_args: object) -> None:
        """Opened (or failed): napari's own view again."""
        self.hide()
        if self._welcome is not None and self._welcome_host is not None:
            self._welcome_host.show_welcome_screen = self._welcome  # type: ignore[attr-defined]
        self._welcome = None

    def _cover(self) -> None:
        host = self.parentWidget()
        if host is None:
            return
        welcome = getattr(self._welcome_host, "show_welcome_screen", None)
        if self._welcome is None and isinstance(welcome, bool):
            self._welcome = welcome
            self._welcome_host.show_welcome_screen = False  # type: ignore[union-attr]
        self.setGeometry(host.rect())
        self.show()
        self.raise_()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Follow the host's size."""
        if watched is self.parentWidget() and event.type() == QEvent.Type.Resize:
            self.setGeometry(self.parentWidget().rect())  # type: ignore[union-attr]
        return False
