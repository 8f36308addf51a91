"""The segmend application window: napari's viewer with segmend's dock, menus and status.

:class:`SegmendWindow` wraps a ``napari.Viewer`` (the viewer's own window is
the main window) and adds:

- the :class:`~app.ui.proofreading.ProofreadingWidget` dock;
- File menu entries: open a dataset, import a plain volume, recent files,
  settings; a Proofread menu with every editing action; segmend's shortcuts in
  napari's Help menu;
- drag and drop of pyramid files (plain volumes open the import dialog);
- status-bar indicators: pending work, mutation count, outbox backlog, Kafka,
  and the progress of an open (the demo's first build);
- while a dataset opens, what is going on in place of napari's welcome
  (:class:`~app.ui.opening.OpeningOverlay`);
- a default layout where the canvas gets most of the window
  (:mod:`app.ui.window_layout`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import QEvent, QObject, Signal, Slot
from qtpy.QtGui import QAction, QDropEvent
from qtpy.QtWidgets import QFileDialog, QMainWindow, QMenu, QWidget

from app.model.errors import SegmendError
from app.ui.controller import LANE, Session
from app.ui.messages import MessageReporter
from app.ui.opening import OpeningOverlay
from app.ui.proofreading import ProofreadingWidget
from app.ui.settings import AppSettings, SettingsDialog
from app.ui.stats import DatasetStats
from app.ui.status import StatusIndicators
from app.ui.window_layout import default_size, size_docks
from app.ui.workers import TaskRunner

if TYPE_CHECKING:
    from app.model.dataset import Dataset
    from app.ui.import_dialog import ImportDialog

PYRAMID_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5", ".zarr")
VOLUME_SUFFIXES = (".npy",)
TITLE = "segmend"


class SegmendWindow(QObject):
    """The application window.

    Parameters
    ----------
    viewer : napari.Viewer, optional
        The viewer to build on (tests pass napari's fixture viewer); by
        default a new one is made.
    settings : AppSettings, optional
        User settings (default: the config file's, and the recent files from ``QSettings``).
    save_settings : bool
        Write changed settings (recent files, the settings dialog) back.
    show : bool
        Show the window (when making the viewer).
    path : str or Path, optional
        A dataset to open.  Its opening starts first, on the worker pool,
        while napari builds the window (a ``.npy`` volume opens the import
        dialog instead).
    demo : bool
        ``path`` is the demo pyramid (labelmap mode): build it first if it is
        missing, outdated or in voxel mode (the progress shows in the status bar).
    """

    error_shown = Signal(str)
    """An error message was shown (non-modal box + status bar); GUI thread."""
    dataset_opened = Signal(object)
    """A dataset is open and its layers are added; GUI thread."""

    def __init__(self, viewer: Any = None, *, settings: AppSettings | None = None,
                 save_settings: bool = True, show: bool = True, path: str | Path | None = None,
                 demo: bool = False) -> None:
        super().__init__()
        self.settings = settings if settings is not None else AppSettings.load()
        self.save_settings = save_settings
        self.reporter = MessageReporter()  # its boxes' parent: the window, once made
        self.runner = TaskRunner(self.settings.workers or None, parent=self)
        self.session = Session(self.runner, reporter=self.reporter,
                               user=self.settings.effective_user,
                               workers=self.settings.workers or None,
                               kafka_servers=self.settings.kafka_servers,
                               topic_prefix=self.settings.topic_prefix, parent=self)
        to_open = Path(path) if path is not None and (demo or not _is_volume(path)) else None
        if to_open is not None:  # its result arrives (on this thread) once the event loop runs
            self.session.open(to_open, demo=demo)
        own_viewer = viewer is None
        if viewer is None:
            import napari

            viewer = napari.Viewer(title=TITLE, show=False)
        self.viewer = viewer
        self.qt_window: QMainWindow = viewer.window._qt_window
        self.reporter.setParent(self.qt_window)
        self.reporter.error_shown.connect(self._on_error)
        self.reporter.info_shown.connect(self.show_message)
        self.widget = ProofreadingWidget(viewer, self.session, reporter=self.reporter)
        self.dock = viewer.window.add_dock_widget(self.widget, name="Proofreading", area="right")
        self.status = StatusIndicators()
        self.qt_window.statusBar().addPermanentWidget(self.status)
        self._import: ImportDialog | None = None
        self._settings_dialog: SettingsDialog | None = None
        self.file_actions = self._make_file_actions()
        self._install_menus()
        self.qt_viewer: QWidget | None = viewer.window._qt_viewer
        self.qt_viewer.installEventFilter(self)
        self.opening = OpeningOverlay(self.qt_viewer.canvas.native, self.session,
                                      welcome=self.qt_viewer)
        self.qt_window.installEventFilter(self)
        self._closing = False
        self._shut = False
        self._laid_out = False
        if own_viewer:
            saved = _saved_napari_geometry()
            if show:
                viewer.window.show()  # napari sizes a first window to its contents
            if not saved:
                self.qt_window.resize(*default_size(self.qt_window))
        if self.qt_window.isVisible():
            self.apply_layout()

        s = self.session
        s.opened.connect(self._on_opened)
        s.closed.connect(self._on_closed)
        s.stats_changed.connect(self.status.set_stats)
        s.pending_changed.connect(self._on_pending)
        s.opening.connect(self._on_opening)
        s.open_progress.connect(self.status.set_progress)
        s.opened.connect(self.status.clear_progress)
        s.open_failed.connect(self.status.clear_progress)
        self._on_pending(self.runner.pending)  # the open started above is pending
        self.widget.status_message.connect(self.show_message)
        viewer.title = TITLE
        if to_open is not None:
            self._on_opening(to_open)
            self.opening.start(to_open)
            self.widget.show_opening(to_open)
        elif path is not None:
            self.import_dialog(str(path))

    # ---------------------------------------------------------------- menus
    def _make_file_actions(self) -> dict[str, QAction]:
        parent = self.qt_window
        actions = {
            "open": QAction("Open segmend dataset...", parent),
            "open_zarr": QAction("Open OME-Zarr folder (read-only)...", parent),
            "import": QAction("Import volume (build pyramid)...", parent),
            "settings": QAction("segmend settings...", parent),
        }
        actions["open"].triggered.connect(self.open_dialog)
        actions["open_zarr"].triggered.connect(self.open_folder_dialog)
        actions["import"].triggered.connect(self._import_triggered)
        actions["settings"].triggered.connect(self.settings_dialog)
        for name, action in actions.items():
            action.setObjectName(f"segmend.file.{name}")
        self.recent_menu = QMenu("Open recent segmend dataset", parent)
        self.recent_menu.setObjectName("segmend.file.recent")
        self.recent_menu.triggered.connect(self._open_recent)
        self._fill_recent()
        return actions

    def _install_menus(self) -> None:
        window = self.viewer.window
        file_menu: QMenu = window.file_menu
        file_menu.aboutToShow.connect(self._ensure_file_menu)
        self._ensure_file_menu()
        self.proofread_menu = QMenu("&Proofread", self.qt_window)
        a = self.widget.commands
        for names in (("merge",), ("undo", "redo"),
                      ("split_start", "brush_3d", "split_preview", "split_commit", "split_discard",
                       "split_coarse"),
                      ("seed_start", "seed_next_group", "seed_add_group", "seed_preview",
                       "seed_commit", "seed_discard"),
                      ("supervoxel_view", "cleave_start", "cleave_commit", "cleave_cancel"),
                      ("show_selected_only", "body_meshes", "goto", "next_body",
                       "clear_selection")):
            for name in names:
                self.proofread_menu.addAction(a[name])
            self.proofread_menu.addSeparator()
        menubar = window.main_menu
        help_menu: QMenu | None = getattr(window, "help_menu", None)
        if help_menu is not None:
            menubar.insertMenu(help_menu.menuAction(), self.proofread_menu)
            help_menu.aboutToShow.connect(self._ensure_help_menu)
            self._ensure_help_menu()
        else:
            menubar.addMenu(self.proofread_menu)
            self.proofread_menu.addAction(a["help"])

    def _ensure_help_menu(self) -> None:
        """Put segmend's help at the top of napari's Help menu (again, if it was rebuilt)."""
        help_menu: QMenu = self.viewer.window.help_menu
        action = self.widget.commands["help"]
        if action in help_menu.actions():
            return
        first = help_menu.actions()[0] if help_menu.actions() else None
        help_menu.insertAction(first, action)  # type: ignore[arg-type]
        help_menu.insertSeparator(first)  # type: ignore[arg-type]

    def _ensure_file_menu(self) -> None:
        """Put segmend's entries at the top of napari's File menu (again, if it was rebuilt)."""
        file_menu: QMenu = self.viewer.window.file_menu
        if self.file_actions["open"] in file_menu.actions():
            return
        first = file_menu.actions()[0] if file_menu.actions() else None
        for action in (self.file_actions["open"], self.file_actions["open_zarr"],
                       self.recent_menu.menuAction(), self.file_actions["import"],
                       self.file_actions["settings"]):
            file_menu.insertAction(first, action)  # type: ignore[arg-type]
        file_menu.insertSeparator(first)  # type: ignore[arg-type]

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent:
            action = self.recent_menu.addAction(path)
            action.setData(path)
        self.recent_menu.setEnabled(bool(self.settings.recent))

    @Slot(QAction)
    def _open_recent(self, action: QAction) -> None:
        self.open_path(str(action.data()))

    @Slot()
    def _import_triggered(self) -> None:
        self.import_dialog()

    # -------------------------------------------------------------- opening
    def open_dialog(self) -> None:
        """Ask for a pyramid file and open it."""
        path, _ = QFileDialog.getOpenFileName(
            self.qt_window, "Open segmend dataset", self._last_dir(),
            "HDF5 pyramids (*.h5 *.hdf5 *.hdf);;All files (*)")
        if path:
            self.open_path(path)

    def open_folder_dialog(self) -> None:
        """Ask for an OME-Zarr folder (a file dialog cannot pick one) and open it."""
        path = QFileDialog.getExistingDirectory(
            self.qt_window, "Open OME-Zarr folder", self._last_dir())
        if path:
            self.open_path(path)

    def _last_dir(self) -> str:
        return str(Path(self.settings.recent[0]).parent) if self.settings.recent else ""

    def open_path(self, path: str | Path, *, demo: bool = False) -> None:
        """Open a dataset in the background (the current one stays open if this fails);
        ``demo``: build the (labelmap) demo at ``path`` first if missing or outdated."""
        path = Path(path)
        if not demo and _is_volume(path):
            self.import_dialog(str(path))
            return
        self.session.open(path, demo=demo)

    @Slot(object)
    def _on_opening(self, path: Path) -> None:
        self.show_message(f"opening {path.name}...")

    @Slot(object)
    def _on_opened(self, dataset: Dataset) -> None:
        self._set_title(dataset)
        self.settings = self.settings.with_recent(dataset.path)
        if self.save_settings:
            self.settings.save_recent()
        self._fill_recent()
        self.dataset_opened.emit(dataset)

    @Slot()
    def _on_closed(self) -> None:
        self._set_title(None)

    def _set_title(self, dataset: Dataset | None) -> None:
        if dataset is None:
            self.viewer.title = TITLE
        else:
            ro = "" if dataset.mode == "r+" else " [read-only]"
            self.viewer.title = f"{TITLE} - {dataset.path.name}{ro}"

    def import_dialog(self, source: str | None = None) -> ImportDialog:
        """Show the import dialog (non-modal); the pyramid it builds is opened."""
        from app.ui.import_dialog import ImportDialog  # HDF5 and the builder: loaded when used

        dialog = ImportDialog(self.runner, self.reporter, self.qt_window)
        dialog.built.connect(self.open_path)
        if source:
            dialog.set_source(source)
        dialog.show()
        self._import = dialog
        return dialog

    def settings_dialog(self) -> SettingsDialog:
        """Show the settings dialog (non-modal); accepted values are stored."""
        dialog = SettingsDialog(self.settings, self.qt_window)
        self._settings_dialog = dialog
        dialog.accepted.connect(self._settings_accepted)
        dialog.show()
        return dialog

    @Slot()
    def _settings_accepted(self) -> None:
        if self._settings_dialog is not None:
            self.apply_settings(self._settings_dialog.values())

    def apply_settings(self, settings: AppSettings) -> None:
        """Use (and store in the config file) new settings; they apply to the next
        dataset opened.  If the file cannot be written, the error is shown and the
        settings apply to this session only."""
        self.settings = settings
        saved = True
        if self.save_settings:
            try:
                settings.save()
            except SegmendError as exc:
                saved = False
                self.reporter.error(exc, context="settings not saved")
        self.session.user = settings.effective_user
        self.session.workers = settings.workers or None
        self.session.kafka_servers = settings.kafka_servers
        self.session.topic_prefix = settings.topic_prefix
        if settings.workers:
            self.runner.pool.setMaxThreadCount(max(2, settings.workers))
        if saved:
            self.show_message("settings saved")

    def apply_layout(self) -> None:
        """Size the docks for the window's width: the canvas gets most of it
        (:mod:`app.ui.window_layout`)."""
        self._laid_out = True
        size_docks(self.qt_window, self.dock)

    # --------------------------------------------------------------- status
    def set_kafka_status(self, state: str, backlog: int | None) -> None:
        """Show the Kafka sender's state (``connected``, ``connecting``, ``down``, ``off``)
        and the outbox backlog.  The session also polls the model's sender status."""
        self.status.set_kafka_status(state, backlog)

    def show_message(self, text: str, timeout_ms: int = 8000) -> None:
        """A transient status-bar message (shown with the status texts, batched)."""
        bar = self.qt_window.statusBar()
        self.status.updates.put("message", lambda: bar.showMessage(text, timeout_ms))

    @Slot(str)
    def _on_error(self, line: str) -> None:
        self.show_message(line, 15000)
        self.status.updates.flush()  # at once, and not overwritten by an older message
        self.error_shown.emit(line)

    @Slot(int)
    def _on_pending(self, jobs: int) -> None:
        edits = self.runner.pending_in(LANE)
        self.status.set_pending(jobs, edits)
        if self._closing and edits == 0:
            self.qt_window.close()

    @property
    def stats(self) -> DatasetStats:
        """The counters shown."""
        return self.session.stats

    # ---------------------------------------------------- drop & close events
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Drops of files onto the viewer; closing the window."""
        etype = event.type()
        if watched is self.qt_viewer and etype in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            if self._dropped_paths(event):  # type: ignore[arg-type]
                event.accept()
                return True
        elif watched is self.qt_viewer and etype == QEvent.Type.Drop:
            paths = self._dropped_paths(event)  # type: ignore[arg-type]
            if paths:
                event.accept()
                self.open_path(paths[0])
                return True
        elif watched is self.qt_window and etype == QEvent.Type.Show and not self._laid_out:
            self.apply_layout()
        elif watched is self.qt_window and etype == QEvent.Type.Close:
            if self.runner.pending_in(LANE) and not self._shut:
                self._closing = True
                self.show_message("finishing the edits in progress before closing...")
                event.ignore()
                return True
            self.shutdown()
        return False

    @staticmethod
    def _dropped_paths(event: QDropEvent) -> list[str]:
        mime = event.mimeData()
        if mime is None or not mime.hasUrls():
            return []
        paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
        return [p for p in paths if Path(p).suffix.lower() in PYRAMID_SUFFIXES + VOLUME_SUFFIXES]

    def shutdown(self) -> None:
        """Finish the edits, close the dataset, stop the pool (blocks; at exit only)."""
        if self._shut:
            return
        self._shut = True
        self.reporter.close_boxes()
        self.widget.detach()
        self.session.shutdown()
        if self.qt_viewer is not None:
            self.qt_viewer.removeEventFilter(self)
            self.qt_viewer = None


def _saved_napari_geometry() -> bool:
    """Whether napari restores a window size the user left (then segmend keeps it)."""
    from napari.settings import get_settings

    app = get_settings().application
    return bool(app.save_window_geometry and app.window_size)


def _is_volume(path: str | Path) -> bool:
    """A plain volume to import (not a pyramid to open)."""
    return Path(path).suffix.lower() in VOLUME_SUFFIXES
