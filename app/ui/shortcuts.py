"""The keyboard shortcuts of segmend: one table, used by the actions and the help dialog."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shortcut:
    """One command and its key.

    Attributes
    ----------
    name : str
        Internal name (the key of the action in the widgets' ``actions`` dicts).
    text : str
        Menu / button text.
    key : str
        Qt key sequence (portable text), empty if none.
    help : str
        What it does.
    """

    name: str
    text: str
    key: str
    help: str


SHORTCUTS: tuple[Shortcut, ...] = (
    Shortcut("merge", "Merge into first", "M",
             "Merge every selected body into the first selected one"),
    Shortcut("undo", "Undo", "Ctrl+Z", "Undo the last mutation (survives reopening)"),
    Shortcut("redo", "Redo", "Ctrl+Shift+Z", "Redo the last undone mutation"),
    Shortcut("split_start", "Split body...", "S",
             "Open a split canvas around the first selected body"),
    Shortcut("brush_3d", "3D brush", "D",
             "Toggle the split brush between the current plane (2D) and a ball (3D)"),
    Shortcut("split_preview", "Preview split", "Shift+S",
             "Show which voxels of the body the painted region splits off"),
    Shortcut("split_commit", "Commit split", "Ctrl+Return",
             "Split the painted voxels of the body off into a new body"),
    Shortcut("split_discard", "Discard canvas", "Shift+Escape",
             "Remove the split canvas without splitting"),
    Shortcut("split_coarse", "Split coarse", "K",
             "Split off the body's s0 blocks touched by the paint, or the block under the cursor"),
    Shortcut("seed_start", "Seeded split...", "W",
             "Place seeds for the parts of the first selected body (seeded watershed split)"),
    Shortcut("seed_next_group", "Next group", "G",
             "Add seeds to the next group (group 1 becomes a new body, the last keeps the id)"),
    Shortcut("seed_add_group", "Add group", "Shift+G",
             "Add a seed group: one more part (the new last group keeps the id)"),
    Shortcut("seed_preview", "Preview seeds", "Shift+W",
             "Compute the split from the seeds and show each part in its group's colour"),
    Shortcut("seed_commit", "Commit seeds", "Ctrl+Shift+Return",
             "Split the body by the seeds: every group's part but the last becomes a new body"),
    Shortcut("seed_discard", "Discard seeds", "Ctrl+Shift+W",
             "Remove the seeds and the seeded split preview without splitting"),
    Shortcut("supervoxel_view", "Supervoxel view", "V",
             "Show the supervoxels instead of the bodies (labelmap mode), or the bodies again"),
    Shortcut("cleave_start", "Cleave...", "C",
             "Cleave supervoxels off the selected body: alt-click them in the supervoxel view "
             "(labelmap mode)"),
    Shortcut("cleave_commit", "Commit cleave", "Return",
             "Move the picked supervoxels of the body to a new body"),
    Shortcut("cleave_cancel", "Cancel cleave", "Escape",
             "Close the cleave tool without cleaving"),
    Shortcut("show_selected_only", "Show selected only", "H",
             "Hide every body except the selected ones"),
    Shortcut("body_meshes", "3D bodies", "Shift+B",
             "Toggle a 3D view of the selected bodies as surfaces (switches to 3D display)"),
    Shortcut("goto", "Go to body...", "J", "Type a body id and jump to it"),
    Shortcut("next_body", "Next body by synapses", "N",
             "Go to the next body ranked by PostSyn synapses (most first) and select it"),
    Shortcut("clear_selection", "Clear selection", "Ctrl+Shift+A", "Select nothing"),
    Shortcut("help", "segmend keyboard shortcuts", "F1", "Show this list"),
)
"""segmend's own shortcuts (active anywhere in the window)."""

MOUSE_AND_NAPARI: tuple[tuple[str, str], ...] = (
    ("Click", "Select the body under the cursor"),
    ("Shift+Click", "Add the body to the selection (or remove it)"),
    ("Alt+Click", "Show the supervoxel under the cursor and its body (labelmap mode); "
                  "while cleaving, pick it (or unpick it)"),
    ("Drag", "Pan; scroll to zoom"),
    ("Ctrl+Y", "Toggle 2D / 3D view (napari)"),
    ("P / E", "Paint / erase on the split canvas (napari)"),
    ("P / 3 / Delete", "On a seed layer: add seeds / select and drag seeds / delete the "
                       "selected seeds (napari)"),
    ("[ / ]", "Smaller / larger brush (napari)"),
    ("Left / Right", "Previous / next plane (napari)"),
)
"""Mouse gestures and napari keys worth knowing while proofreading."""


def tooltip(spec: Shortcut) -> str:
    """The tooltip of a command: what it does, and its key."""
    return f"{spec.help} ({spec.key})" if spec.key else spec.help


def shortcut(name: str) -> Shortcut:
    """The shortcut called ``name``."""
    for s in SHORTCUTS:
        if s.name == name:
            return s
    raise KeyError(name)
