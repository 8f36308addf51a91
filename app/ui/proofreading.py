"""The proofreading widget: the same dock in the segmend app and in napari.

:class:`ProofreadingWidget` puts together, over a napari viewer and a
:class:`~app.ui.controller.Session`: the dataset's layers, click selection,
the body (with the bodies' status page) / split / history / bookmarks panels,
the synapses of the selected bodies (:mod:`app.ui.synapse_layer`), *Next body*
down the PostSyn ranking (:mod:`app.ui.next_body`), and the ``QAction`` s that
carry segmend's keyboard shortcuts (window-wide, see :mod:`app.ui.shortcuts`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtCore import QEvent, QObject, Qt, Signal, Slot
from qtpy.QtGui import QAction, QKeySequence, QShowEvent
from qtpy.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.model.geometry import Coord
from app.ui import registry
from app.ui.body_meshes import BodyMeshes
from app.ui.body_status import BodyStatusPage
from app.ui.bookmarks import BookmarksPanel
from app.ui.compat import camera
from app.ui.controller import Session
from app.ui.deferred import DeferredUpdates
from app.ui.edit_note import EditNote
from app.ui.help import ShortcutsDialog
from app.ui.labelmap_tools import LabelmapTools
from app.ui.layer_controls import adapt_controls
from app.ui.layer_data import PATH, ROLE
from app.ui.layers import DatasetLayers
from app.ui.messages import MessageReporter
from app.ui.next_body import NextBody
from app.ui.opening import stage_text
from app.ui.panels import BodyPanel, CleavePanel, HistoryPanel, SeedSplitPanel, SplitPanel
from app.ui.seed_split import SeedSplitTool
from app.ui.selection import ClickPicker, Selection, locate_body
from app.ui.settings import AppSettings
from app.ui.shortcuts import SHORTCUTS, shortcut, tooltip
from app.ui.split_canvas import SplitTool
from app.ui.stats import DatasetStats
from app.ui.synapse_layer import SynapseLayers
from app.ui.texts import count

if TYPE_CHECKING:
    from app.model.dataset import Dataset, SplitResult


class ProofreadingWidget(QWidget):
    """Select, merge, split, undo: the proofreading dock.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer to proofread in (napari passes it when the widget is opened
        from the Plugins menu).
    session : Session, optional
        The session to use; by default the widget makes its own (plugin use).
    reporter : MessageReporter, optional
        Where errors are shown (default: non-modal message boxes).
    """

    status_message = Signal(str)
    """A one-line status for the host's status bar; GUI thread."""

    def __init__(self, napari_viewer: Any, session: Session | None = None, *,
                 reporter: MessageReporter | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.reporter = reporter if reporter is not None else MessageReporter(self)
        self.owns_session = session is None
        self.session = session if session is not None else self._own_session()
        self._host: QWidget | None = None
        self._shut = False
        self._detached = False
        self._last_status = ""
        self.selection = Selection(self)
        self.layers = DatasetLayers(self.viewer, self.session, self.selection, self)
        self.picker = ClickPicker(self.viewer, self.session, self.selection, self)
        self.split_tool = SplitTool(self.viewer, self.session, self)
        self.seed_tool = SeedSplitTool(self.viewer, self.session, self)
        self.body_meshes = BodyMeshes(self.viewer, self.session, self.selection, self.layers, self)
        self.labelmap = LabelmapTools(self.viewer, self.session, self.selection, self.layers,
                                      self.picker, self)
        self.synapses = SynapseLayers(self.viewer, self.session, self.selection, self.layers,
                                      self)
        self.next_body = NextBody(self.session, self)
        self.note = EditNote(self.session, self)
        self.note.changed.connect(self._show_status)
        self.commands = self._make_commands()
        self._help: ShortcutsDialog | None = None

        self.file_label = QLabel("no dataset open", self)
        self.file_label.setWordWrap(True)
        open_button = QPushButton("Open...", self)
        open_button.setToolTip("Open a segmend pyramid (HDF5)")
        open_button.clicked.connect(self.open_dialog)
        self.body_panel = BodyPanel(self.session, self.selection, self.commands, self)
        self.status_page = BodyStatusPage(self.session, self.selection, self)
        self.body_panel.add_page(self.status_page, "status",
                                 "status, name and PreSyn / PostSyn counts of each body; set "
                                 "the status and name of the highlighted one")
        self.bookmarks_panel = BookmarksPanel(self.viewer, self.session, self)
        self.split_panel = SplitPanel(self.split_tool, self.commands, self)
        self.seed_panel = SeedSplitPanel(self.seed_tool, self.commands, self)
        self.cleave_panel = CleavePanel(self.labelmap.cleave, self.commands, self)
        self._show_panels(False)
        self.history_panel = HistoryPanel(self.session, self.commands, self)
        self.status_label = QLabel("", self)
        self.status_label.setWordWrap(True)
        self._status_updates = DeferredUpdates(parent=self)

        top = QHBoxLayout()
        top.addWidget(self.file_label, 1)
        top.addWidget(open_button)
        inner = QWidget(self)
        column = QVBoxLayout(inner)
        column.addLayout(top)
        column.addWidget(self.body_panel)
        column.addWidget(self.split_panel)
        column.addWidget(self.seed_panel)
        column.addWidget(self.cleave_panel)
        column.addWidget(self.history_panel, 1)
        column.addWidget(self.bookmarks_panel)
        column.addWidget(self.status_label)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(inner)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)
        self.setMinimumWidth(250)

        s = self.session
        s.opened.connect(self._on_opened)
        s.closed.connect(self._on_closed)
        s.opening.connect(self.show_opening)
        s.open_progress.connect(self._on_open_progress)
        s.open_failed.connect(self._on_open_failed)
        s.edit_finished.connect(self._on_edit_finished)
        s.edit_failed.connect(self._on_edit_failed)
        s.undo_state_changed.connect(self._on_undo_state)
        s.notice.connect(self._status)
        s.stats_changed.connect(self._on_stats)
        s.pending_changed.connect(self._on_pending)
        self.split_tool.message.connect(self._show_status)
        self.split_tool.started.connect(self._update_enabled)
        self.split_tool.discarded.connect(self._update_enabled)
        self.split_tool.committed.connect(self._update_enabled)
        self.seed_tool.message.connect(self._show_status)
        self.seed_tool.started.connect(self._update_enabled)
        self.seed_tool.discarded.connect(self._update_enabled)
        self.seed_tool.committed.connect(self._seeded_split_done)
        self.labelmap.message.connect(self._show_status)
        for source in (self.status_page, self.bookmarks_panel, self.next_body):
            source.message.connect(self._show_status)
        self.status_page.refused.connect(
            lambda: self.body_panel.tabs.setCurrentWidget(self.status_page))
        self.next_body.found.connect(self.goto_body)
        cleave = self.labelmap.cleave
        for signal in (cleave.started, cleave.discarded, cleave.committed):
            signal.connect(self._update_enabled)
        self.selection.changed.connect(self._update_enabled)
        self.body_panel.goto_requested.connect(self.goto_body)
        self.viewer.layers.events.inserted.connect(self._on_layer_inserted)
        for layer in self.viewer.layers:
            adapt_controls(self, layer)
        self._update_enabled()
        if self.session.dataset is not None:
            self._on_opened(self.session.dataset)
        else:
            self._adopt_reader_layers()

    def _own_session(self) -> Session:
        """A session with the user's settings (napari plugin use)."""
        settings = AppSettings.load()
        return Session(reporter=self.reporter, user=settings.effective_user,
                       workers=settings.workers or None, kafka_servers=settings.kafka_servers,
                       topic_prefix=settings.topic_prefix, parent=self)

    # ---------------------------------------------------------------- actions
    def _make_commands(self) -> dict[str, QAction]:
        handlers = {
            "merge": self.merge_selected,
            "undo": self.undo,
            "redo": self.redo,
            "split_start": self.start_split,
            "brush_3d": None,
            "split_preview": self.split_tool.preview,
            "split_commit": self.split_tool.commit,
            "split_discard": self.split_tool.discard,
            "split_coarse": self.split_coarse,
            "seed_start": self.start_seeded_split,
            "seed_next_group": self.seed_tool.next_group,
            "seed_add_group": self.seed_tool.add_group,
            "seed_preview": self.seed_tool.preview,
            "seed_commit": self.seed_tool.commit,
            "seed_discard": self.seed_tool.discard,
            "supervoxel_view": self.labelmap.toggle_view,
            "cleave_start": self.labelmap.start_cleave,
            "cleave_commit": self.labelmap.cleave.commit,
            "cleave_cancel": self.labelmap.cleave.cancel,
            "show_selected_only": None,
            "body_meshes": None,
            "goto": self.focus_goto,
            "next_body": self.next_body.next,
            "clear_selection": self.selection.clear,
            "help": self.show_help,
        }
        actions: dict[str, QAction] = {}
        for spec in SHORTCUTS:
            action = QAction(spec.text, self)
            action.setObjectName(f"segmend.{spec.name}")
            if spec.key:
                action.setShortcut(QKeySequence(spec.key))
                action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.setToolTip(tooltip(spec))
            handler = handlers.get(spec.name)
            if handler is not None:
                action.triggered.connect(handler)
            self.addAction(action)
            actions[spec.name] = action
        actions["brush_3d"].setCheckable(True)
        actions["brush_3d"].toggled.connect(self.split_tool.set_brush_3d)
        actions["show_selected_only"].setCheckable(True)
        actions["show_selected_only"].toggled.connect(self.layers.set_show_selected_only)
        actions["body_meshes"].setCheckable(True)
        actions["body_meshes"].toggled.connect(self.body_meshes.set_enabled)
        self.body_meshes.toggled.connect(actions["body_meshes"].setChecked)
        return actions

    def focus_goto(self) -> None:
        """Put the cursor in the body id field."""
        self.body_panel.focus_goto()

    @Slot(str, str)
    def _on_edit_failed(self, _action: str, message: str) -> None:
        self._status(message)

    @Slot(int)
    def _on_pending(self, _n: int) -> None:
        self._update_status_line()

    @Slot()
    def _update_enabled(self) -> None:
        has = self.session.dataset is not None
        writable = self.session.writable
        n = len(self.selection)
        canvas = self.split_tool.active
        a = self.commands
        a["merge"].setEnabled(writable and n >= 2)
        a["undo"].setEnabled(writable and self.session.can_undo)
        a["redo"].setEnabled(writable and self.session.can_redo)
        a["split_start"].setEnabled(writable and n >= 1)
        a["split_coarse"].setEnabled(writable and (n >= 1 or canvas))
        for name in ("split_preview", "split_commit", "split_discard"):
            a[name].setEnabled(canvas)
        a["seed_start"].setEnabled(writable and n >= 1)
        for name in ("seed_next_group", "seed_add_group", "seed_preview", "seed_commit",
                     "seed_discard"):
            a[name].setEnabled(self.seed_tool.active)
        a["goto"].setEnabled(has)
        a["next_body"].setEnabled(has)
        a["clear_selection"].setEnabled(n > 0)
        self.labelmap.update_enabled(a)

    # --------------------------------------------------------------- opening
    def open_dialog(self) -> None:
        """Ask for a pyramid file and open it."""
        path, _ = QFileDialog.getOpenFileName(
            self, "Open segmend dataset", "", "HDF5 pyramids (*.h5 *.hdf5 *.hdf);;All files (*)"
        )
        if path:
            self.session.open(path)

    def open(self, path: str) -> None:
        """Open a dataset (in the background)."""
        self.session.open(path)

    def _adopt_reader_layers(self) -> None:
        """If the napari reader opened a segmend dataset, proofread it."""
        for layer in list(self.viewer.layers):
            path = layer.metadata.get(PATH)
            if path and layer.metadata.get(ROLE) == "segmentation":
                dataset = registry.take(path)
                if dataset is not None:
                    self.session.attach(dataset)
                    return

    def _on_layer_inserted(self, event: Any) -> None:
        layer = event.value
        adapt_controls(self, layer)
        if self.session.dataset is None and layer.metadata.get(ROLE) == "segmentation" \
                and layer.metadata.get(PATH):
            self._adopt_reader_layers()

    @Slot(object)
    def _on_opened(self, dataset: Dataset) -> None:
        mode = "" if dataset.mode == "r+" else " (read-only)"
        labelmap = ", labelmap" if dataset.labelmap else ""
        self.file_label.setText(f"{dataset.path.name}{mode}\n{dataset.shape[0]}x{dataset.shape[1]}"
                                f"x{dataset.shape[2]}, {dataset.n_scales} scales{labelmap}")
        self.file_label.setToolTip(str(dataset.path))
        self._show_panels(dataset.labelmap)
        self.selection.clear()
        self._update_enabled()
        view = f": showing bodies ({shortcut('supervoxel_view').key}: supervoxels)" \
            if dataset.labelmap else ""
        self._status(f"opened {dataset.path.name}{mode}{view}")

    @Slot(object)
    def show_opening(self, path: Path) -> None:
        """A dataset starts opening (in the background)."""
        if self.session.dataset is None:
            self.file_label.setText(f"opening {Path(path).name}...")

    @Slot(str, int, int)
    def _on_open_progress(self, stage: str, done: int, total: int) -> None:
        if self.session.dataset is None:
            self.file_label.setText(stage_text(stage, done, total))

    @Slot(str)
    def _on_open_failed(self, _line: str) -> None:
        if self.session.dataset is None:
            self.file_label.setText("no dataset open")

    def _show_panels(self, labelmap: bool) -> None:
        """The tools of the dataset's mode: splits and the seeded split in both,
        cleave in labelmap mode."""
        self.cleave_panel.setVisible(labelmap)

    @Slot()
    def _on_closed(self) -> None:
        self.file_label.setText("no dataset open")
        self._show_panels(False)
        self.selection.clear()
        self._update_enabled()

    # ---------------------------------------------------------------- editing
    def merge_selected(self) -> None:
        """Merge the selected bodies into the first one."""
        ids = self.selection.ids
        if len(ids) < 2:
            self.reporter.error("select at least two bodies (click, then shift-click)",
                                context="merge")
            return
        if self.session.merge(ids[0], ids[1:]) is not None:
            self._status(f"merging {count(len(ids) - 1, 'body')} into {ids[0]}...")

    def undo(self) -> None:
        """Undo the last mutation."""
        if self.session.undo() is not None:
            self._show_status("undoing...")

    def redo(self) -> None:
        """Redo the last undone mutation."""
        if self.session.redo() is not None:
            self._show_status("redoing...")

    def start_split(self) -> None:
        """Open a split canvas for the first selected body."""
        target = self.selection.first
        if target is None:
            self.reporter.error("select the body to split first", context="split")
            return
        self.split_tool.start(target)

    def start_seeded_split(self) -> None:
        """Open seed layers for the first selected body."""
        target = self.selection.first
        if target is None:
            self.reporter.error("select the body to split first", context="seeded split")
            return
        self.seed_tool.start(target)

    def _seeded_split_done(self, body: int, results: list[SplitResult]) -> None:
        """Select the body and the new bodies of a committed seeded split."""
        self.selection.set([body, *(r.label for r in results)])
        self._update_enabled()

    def split_coarse(self) -> None:
        """Split-coarse the body being split (or the first selected) at the paint / cursor."""
        target = self.split_tool.target or self.selection.first
        position = tuple(float(v) for v in self.viewer.cursor.position[-3:])
        if self.picker.last_voxel is not None and not self._cursor_in_volume(position):
            position = tuple(float(v) for v in self.picker.last_voxel)
        self.split_tool.split_coarse(target, position)  # type: ignore[arg-type]

    def _cursor_in_volume(self, position: tuple[float, ...]) -> bool:
        dataset = self.session.dataset
        return dataset is not None and len(position) == 3 and all(
            -0.5 <= p < n - 0.5 for p, n in zip(position, dataset.shape, strict=True))

    @Slot(str, object)
    def _on_edit_finished(self, action: str, result: Any) -> None:
        from app.model.dataset import SplitResult

        ids = self.selection.ids
        if action == "merge" and ids:
            self.selection.set([ids[0]])
            merged = count(len(ids) - 1, "body")
            self.note.note(result, f"merged {merged} into {ids[0]} (mutation {{id}})",
                           f"merge undone: {merged} split off {ids[0]} again (mutation {{id}})")
        elif isinstance(result, SplitResult):
            target = ids[0] if ids else None
            self.selection.set([v for v in (target, result.label) if v])
        elif action in ("undo", "redo"):
            if result not in (self.note.followed, self.split_tool.note.followed,
                              self.seed_tool.note.followed, self.labelmap.cleave.note.followed):
                self._show_status(f"{action} done (mutation {result})")  # a note may follow
            self.body_panel.request_sizes(ids)
            self._drop_vanished(ids)
        self._update_enabled()

    def _drop_vanished(self, ids: list[int]) -> None:
        """After undo/redo: keep only selected bodies that still have voxels."""
        if not ids:
            return
        self.session.read(lambda ds: [i for i in ids if ds.label_size(i) > 0],
                          lambda alive: self.selection.set(alive), name="check bodies")

    @Slot(bool, bool)
    def _on_undo_state(self, _can_undo: bool, _can_redo: bool) -> None:
        self._update_enabled()

    # ------------------------------------------------------------- navigation
    def goto_body(self, label: int, about: str = "") -> None:
        """Jump to body ``label`` (its densest block) and select it; ``about``: what
        the status line adds about it."""
        label = int(label)
        self.session.read(lambda ds: locate_body(ds, label),
                          lambda zyx: self._go(label, zyx, about),
                          name=f"go to {label}", on_error=self._goto_failed)

    def _goto_failed(self, exc: BaseException) -> None:
        self.reporter.error(exc, context="go to body")

    def _go(self, label: int, zyx: Coord, about: str = "") -> None:
        self.viewer.dims.set_point(0, zyx[0])
        camera(self.viewer).center = tuple(float(v) for v in zyx)
        self.selection.set([label])
        about = f" ({about})" if about else ""
        self._status(f"body {label}{about} at z={zyx[0]}, y={zyx[1]}, x={zyx[2]}")

    # ------------------------------------------------------------------- misc
    def show_help(self) -> None:
        """Show the keyboard shortcuts (non-modal)."""
        if self._help is None:
            self._help = ShortcutsDialog(self)
        self._help.show()
        self._help.raise_()

    @Slot(object)
    def _on_stats(self, stats: DatasetStats) -> None:
        self._update_status_line()

    def _status(self, text: str) -> None:
        self.note.forget()
        self._show_status(text)

    def _show_status(self, text: str) -> None:
        self.status_message.emit(text)
        self._update_status_line(text)

    def _update_status_line(self, text: str | None = None) -> None:
        if text is not None:
            self._last_status = text
        pending = self.session.runner.pending
        stats = self.session.stats
        parts = [self._last_status]
        jobs = f", {count(pending, 'job')} pending" if pending else ""
        parts.append(f"{count(stats.mutations, 'mutation')}{jobs}")
        line = "\n".join(p for p in parts if p)
        self._status_updates.put("line", lambda: self.status_label.setText(line))

    def detach(self) -> None:
        """Disconnect from the viewer (mouse callbacks, layer events); idempotent."""
        if self._detached:
            return
        self._detached = True
        self.picker.detach()
        self.seed_tool.detach()
        self.viewer.layers.events.inserted.disconnect(self._on_layer_inserted)

    def shutdown(self) -> None:
        """Detach and, if the widget made its own session (napari plugin), close it.

        Blocks until the edits asked for are written: call at exit only.
        """
        if self._shut:
            return
        self._shut = True
        if self._host is not None:
            self._host.removeEventFilter(self)
            self._host = None
        self.reporter.close_boxes()
        self.detach()
        if self.owns_session:
            self.session.shutdown()

    def showEvent(self, event: QShowEvent) -> None:
        """Adapt napari's controls of the layers (now findable); watch the top-level
        window: when it closes, close an own session."""
        super().showEvent(event)
        for layer in self.viewer.layers:  # docked now: napari's controls can be found
            adapt_controls(self, layer)
        host = self.window()
        if self.owns_session and host is not self and host is not self._host:
            if self._host is not None:
                self._host.removeEventFilter(self)
            self._host = host
            host.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Close the own session when the napari window closes."""
        if watched is self._host and event.type() == QEvent.Type.Close:
            self.shutdown()
        return False
