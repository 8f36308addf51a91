"""The panels of the proofreading widget: bodies, split tools, seeded split, cleave,
mutation history.

Each panel takes the objects it shows (selection, session, split or seed tool) and the
shared ``QAction`` s (so a button and its keyboard shortcut are one action),
connects to their signals, and only ever runs on the GUI thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from qtpy.QtCore import Qt, Signal, Slot
from qtpy.QtGui import QAction, QColor, QIntValidator
from qtpy.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.cleave import CleaveTool
from app.ui.controller import HistoryLine, Session
from app.ui.seed_split import SeedSplitTool
from app.ui.selection import Selection, selection_color
from app.ui.split_canvas import SplitTool
from app.ui.texts import count

if TYPE_CHECKING:
    from app.model.dataset import Dataset

SWATCH_WIDTH = 22
"""Pixels of the body table's colour column."""


def action_button(action: QAction, parent: QWidget | None = None) -> QToolButton:
    """A button that triggers ``action`` (and shows its text, state and shortcut tip)."""
    button = QToolButton(parent)
    button.setDefaultAction(action)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
    return button


def button_grid(
    actions: Mapping[str, QAction], rows: tuple[tuple[str, ...], ...], parent: QWidget
) -> QGridLayout:
    """A grid of :func:`action_button` buttons, one row of ``rows`` (action
    names) per grid row."""
    grid = QGridLayout()
    for row, names in enumerate(rows):
        for column, name in enumerate(names):
            grid.addWidget(action_button(actions[name], parent), row, column)
    return grid


class BodyPanel(QGroupBox):
    """The selected bodies with their sizes (and, in labelmap mode, their supervoxel
    counts), and pages beside that table (:meth:`add_page`); go to a body by id;
    show only the selection.

    Parameters
    ----------
    session : Session
        Sizes come from its label index (read on the pool).
    selection : Selection
        The bodies listed.
    actions : mapping of str to QAction
        Needs ``merge``, ``show_selected_only``, ``clear_selection``.
    """

    goto_requested = Signal(int)
    """The user asked to jump to this body id; GUI thread."""

    def __init__(self, session: Session, selection: Selection, actions: Mapping[str, QAction],
                 parent: QWidget | None = None) -> None:
        super().__init__("Bodies", parent)
        self.session = session
        self.selection = selection
        self.sizes: dict[int, int] = {}
        self.supervoxel_counts: dict[int, int] = {}
        """Supervoxels (with voxels) of each body, in labelmap mode."""
        self._size_request = 0

        self.goto_edit = QLineEdit(self)
        self.goto_edit.setPlaceholderText("body id")
        self.goto_edit.setValidator(QIntValidator(1, 2**31 - 1, self))
        self.goto_edit.returnPressed.connect(self._goto)
        goto_button = QPushButton("Go", self)
        goto_button.clicked.connect(self._goto)

        self.table = QTableWidget(0, 4, self)
        self.table.setHorizontalHeaderLabels(["", "body", "voxels"])
        svs = QTableWidgetItem("SVs")
        svs.setToolTip("supervoxels (labelmap mode)")
        self.table.setHorizontalHeaderItem(3, svs)
        self.table.setColumnHidden(3, True)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        # a fixed swatch column: sizing one to its contents re-measures every row
        # for each item set (seconds for a selection of hundreds of bodies)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(0, SWATCH_WIDTH)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setMinimumHeight(70)
        self.table.setMaximumHeight(110)

        remove_button = QPushButton("Remove", self)
        remove_button.setToolTip("Remove the highlighted rows from the selection")
        remove_button.clicked.connect(self._remove_rows)

        self.show_only = QCheckBox("Show selected only", self)
        self.show_only.toggled.connect(actions["show_selected_only"].setChecked)
        actions["show_selected_only"].toggled.connect(self.show_only.setChecked)

        self.summary = QLabel("click a body to select it; shift-click adds", self)
        self.summary.setWordWrap(True)

        top = QHBoxLayout()
        top.addWidget(QLabel("Go to", self))
        top.addWidget(self.goto_edit, 1)
        top.addWidget(goto_button)
        buttons = QGridLayout()
        buttons.addWidget(action_button(actions["merge"], self), 0, 0)
        buttons.addWidget(remove_button, 0, 1)
        buttons.addWidget(action_button(actions["clear_selection"], self), 1, 0, 1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.table, "sizes")
        # (a tab widget takes its tallest page's size hint, whatever the page's maximum)
        self.tabs.setMaximumHeight(self.table.maximumHeight()
                                   + self.tabs.tabBar().sizeHint().height())
        layout.addWidget(self.tabs)
        layout.addWidget(self.show_only)
        layout.addLayout(buttons)
        layout.addWidget(self.summary)

        selection.changed.connect(self._on_selection)
        session.labels_changed.connect(self._on_labels_changed)
        session.opened.connect(self._on_opened)

    # ---------------------------------------------------------------- slots
    @Slot(object)
    def _on_opened(self, dataset: Dataset) -> None:
        self.sizes.clear()
        self.supervoxel_counts.clear()
        self.table.setColumnHidden(3, not dataset.labelmap)
        self._on_selection(self.selection.ids)

    def add_page(self, page: QWidget, title: str, tip: str) -> None:
        """Show ``page`` (about the selected bodies) in a tab beside their sizes."""
        self.tabs.setTabToolTip(self.tabs.addTab(page, title), tip)
        self.tabs.setMaximumHeight(max(self.tabs.maximumHeight(), page.sizeHint().height()
                                       + self.tabs.tabBar().sizeHint().height()))

    def focus_goto(self) -> None:
        """Put the cursor in the body id field."""
        self.goto_edit.setFocus()
        self.goto_edit.selectAll()

    def _goto(self) -> None:
        text = self.goto_edit.text().strip()
        if text.isdigit() and int(text) > 0:
            self.goto_requested.emit(int(text))

    def _remove_rows(self) -> None:
        rows = {i.row() for i in self.table.selectedIndexes()}
        ids = self.selection.ids
        self.selection.remove([ids[r] for r in rows if r < len(ids)])

    @Slot(object)
    def _on_selection(self, ids: list[int]) -> None:
        self._fill(ids)
        self.request_sizes(ids)

    @Slot(object)
    def _on_labels_changed(self, labels: list[int]) -> None:
        if set(labels) & set(self.selection.ids):
            self.request_sizes(self.selection.ids)

    def request_sizes(self, ids: list[int]) -> None:
        """Look the sizes (and supervoxel counts) up in the label index (on the pool)."""
        if not ids or self.session.dataset is None:
            return
        self._size_request += 1
        request = self._size_request
        wanted = list(ids)
        labelmap = self.session.dataset.labelmap

        def sizes(ds: Dataset) -> dict[int, tuple[int, int | None]]:
            return {label: (ds.label_size(label),
                            len(ds.supervoxels_of(label)) if labelmap else None)
                    for label in wanted}

        self.session.read(sizes, lambda result: self._sizes_ready(request, result),
                          name="body sizes", on_error=self._sizes_unknown)

    def _sizes_unknown(self, exc: BaseException) -> None:
        """No label index (a read-only foreign pyramid): sizes are not known."""
        self.summary.setToolTip(str(exc))
        self.summary.setText(f"{len(self.selection):,} selected (sizes unknown: no label index)")

    def _sizes_ready(self, request: int, sizes: dict[int, tuple[int, int | None]]) -> None:
        for label, (size, supervoxels) in sizes.items():
            self.sizes[label] = size
            if supervoxels is not None:
                self.supervoxel_counts[label] = supervoxels
        if request == self._size_request:
            self._fill(self.selection.ids)

    def _fill(self, ids: list[int]) -> None:
        self.table.setRowCount(len(ids))
        for row, label in enumerate(ids):
            swatch = QTableWidgetItem("")
            swatch.setBackground(QColor(selection_color(row)))
            self.table.setItem(row, 0, swatch)
            tag = "  (target)" if row == 0 and len(ids) > 1 else ""
            self.table.setItem(row, 1, QTableWidgetItem(f"{label}{tag}"))
            for column, values in ((2, self.sizes), (3, self.supervoxel_counts)):
                value = values.get(label)
                item = QTableWidgetItem("..." if value is None else f"{value:,}")
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, item)
        if not ids:
            self.summary.setText("click a body to select it; shift-click adds")
        else:
            known = [self.sizes[i] for i in ids if i in self.sizes]
            total = f", {count(sum(known), 'voxel')}" if len(known) == len(ids) else ""
            self.summary.setText(f"{len(ids):,} selected{total}")

    def rows(self) -> list[tuple[int, int | None]]:
        """(body id, size or None) as listed, for tests."""
        return [(label, self.sizes.get(label)) for label in self.selection.ids]


class SplitPanel(QGroupBox):
    """Split tools: open a canvas, brush 2D/3D and size, preview, commit, split-coarse.

    Parameters
    ----------
    tool : SplitTool
        The split canvas.
    actions : mapping of str to QAction
        Needs ``split_start``, ``brush_3d``, ``split_preview``, ``split_commit``,
        ``split_discard``, ``split_coarse``.
    """

    def __init__(self, tool: SplitTool, actions: Mapping[str, QAction],
                 parent: QWidget | None = None) -> None:
        super().__init__("Split", parent)
        self.tool = tool
        self.brush_size = QSpinBox(self)
        self.brush_size.setRange(1, 100)
        self.brush_size.setValue(tool.brush_size)
        self.brush_size.valueChanged.connect(tool.set_brush_size)
        self.brush_3d = QCheckBox("3D brush", self)
        self.brush_3d.setToolTip("3D brush: paint a ball, not a disc on the current plane")
        self.brush_3d.toggled.connect(actions["brush_3d"].setChecked)
        actions["brush_3d"].toggled.connect(self.brush_3d.setChecked)
        self.status = QLabel("select a body, then Split body... and paint the part to split off",
                             self)
        self.status.setWordWrap(True)
        tool.message.connect(self.status.setText)

        grid = QGridLayout()
        grid.addWidget(action_button(actions["split_start"], self), 0, 0)
        grid.addWidget(action_button(actions["split_coarse"], self), 0, 1)
        grid.addWidget(QLabel("brush size", self), 1, 0)
        grid.addWidget(self.brush_size, 1, 1)
        grid.addWidget(action_button(actions["split_preview"], self), 2, 0)
        grid.addWidget(action_button(actions["split_commit"], self), 2, 1)
        grid.addWidget(self.brush_3d, 3, 0)
        grid.addWidget(action_button(actions["split_discard"], self), 3, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(self.status)


class SeedSplitPanel(QGroupBox):
    """Seeded split tools: start, seed groups, preview, commit, discard.

    Parameters
    ----------
    tool : SeedSplitTool
        The seeds.
    actions : mapping of str to QAction
        Needs ``seed_start``, ``seed_next_group``, ``seed_add_group``,
        ``seed_preview``, ``seed_commit``, ``seed_discard``.
    """

    def __init__(self, tool: SeedSplitTool, actions: Mapping[str, QAction],
                 parent: QWidget | None = None) -> None:
        super().__init__("Seeded split", parent)
        self.tool = tool
        self.group = QLabel("", self)
        self.group.setWordWrap(True)
        self.group.hide()
        self.status = QLabel("select a body, then Seeded split... and click seeds for its parts",
                             self)
        self.status.setWordWrap(True)
        tool.message.connect(self.status.setText)
        tool.groups_changed.connect(self._show_group)

        grid = button_grid(actions, (("seed_start", "seed_discard"),
                                     ("seed_next_group", "seed_preview"),
                                     ("seed_add_group", "seed_commit")), self)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(self.group)
        layout.addWidget(self.status)

    @Slot(int, int)
    def _show_group(self, groups: int, group: int) -> None:
        self.group.setVisible(groups > 0)
        if not groups:
            self.group.setText("")
            return
        if not group:
            self.group.setText(f"{groups} seed groups: select one to add seeds to")
            return
        role = f"keeps {self.tool.body}" if group == groups else "new body"
        color = self.tool.colors()[group]
        self.group.setText(f'<span style="color:{color}">&#9679;</span> adding seeds to group '
                           f"{group} of {groups} ({role})")


class CleavePanel(QGroupBox):
    """Labelmap tools: the supervoxel view, and cleave: start, commit, cancel (the
    dock shows it in labelmap mode, beside the split panels).

    Parameters
    ----------
    tool : CleaveTool
        The cleave.
    actions : mapping of str to QAction
        Needs ``supervoxel_view``, ``cleave_start``, ``cleave_commit``, ``cleave_cancel``.
    """

    HINT = "select a body, Cleave..., then alt-click the supervoxels to move to a new body"

    def __init__(self, tool: CleaveTool, actions: Mapping[str, QAction],
                 parent: QWidget | None = None) -> None:
        super().__init__("Supervoxels (labelmap)", parent)
        self.status = QLabel(self.HINT, self)
        self.status.setWordWrap(True)
        tool.message.connect(self.status.setText)
        grid = button_grid(actions, (("cleave_start", "supervoxel_view"),
                                     ("cleave_commit", "cleave_cancel")), self)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(self.status)


class HistoryPanel(QGroupBox):
    """The mutation log of the dataset, newest first, with undo and redo.

    Parameters
    ----------
    session : Session
        Whose history is shown.
    actions : mapping of str to QAction
        Needs ``undo`` and ``redo``.
    """

    def __init__(self, session: Session, actions: Mapping[str, QAction],
                 parent: QWidget | None = None) -> None:
        super().__init__("History", parent)
        self.list = QListWidget(self)
        self.list.setMinimumHeight(60)
        buttons = QHBoxLayout()
        buttons.addWidget(action_button(actions["undo"], self))
        buttons.addWidget(action_button(actions["redo"], self))
        layout = QVBoxLayout(self)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        session.history_changed.connect(self.show_history)
        session.closed.connect(self.list.clear)

    @Slot(object)
    def show_history(self, lines: list[HistoryLine]) -> None:
        """List the mutations, newest first."""
        self.list.clear()
        for line in reversed(lines):
            item = QListWidgetItem(line.text)
            item.setToolTip(line.tooltip)
            self.list.addItem(item)

    def lines(self) -> list[str]:
        """The listed lines, newest first (for tests)."""
        return [self.list.item(i).text() for i in range(self.list.count())]
