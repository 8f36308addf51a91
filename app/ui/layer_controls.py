"""napari's layer controls on segmend's layers: no painting tools, a compact width.

napari cannot paint on multiscale labels: on the segmentation and the
"selected bodies" layers its paint, erase, fill and polygon tools are
disabled, yet drawn as if they worked.  segmend edits through its own tools
(merge, the split canvas), so those buttons are hidden on its layers; the
split canvas, a plain single-scale layer, keeps them.

The controls of a multiscale layer list its levels in a combo box as wide as
its longest entry, which widens napari's whole left dock by some 100 pixels;
on segmend's layers the combo boxes size to a few characters instead.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QComboBox, QWidget

from app.ui.layer_data import ROLE

SEGMEND_LABEL_ROLES = ("segmentation", "selection")
"""The ``metadata[ROLE]`` of segmend's label layers that napari cannot paint."""
DATASET_ROLES = ("grayscale", *SEGMEND_LABEL_ROLES)
"""The ``metadata[ROLE]`` of the layers segmend shows a dataset with."""
PAINT_BUTTONS = ("paint_button", "erase_button", "fill_button", "polygon_button")
"""napari's label controls hidden on segmend's label layers."""
COMBO_CHARACTERS = 8
"""Characters a combo box of segmend's layers' controls is sized for."""


CONTAINER_CLASS = "QtLayerControlsContainer"
"""napari's widget that holds one controls widget per layer (in ``widgets``)."""


def layer_controls(host: QWidget, layer: Any) -> Any | None:
    """The napari controls widget of ``layer``, looked up in the window of ``host``
    (a widget docked in the napari window; None if it is not in one yet).  Found
    through Qt, not the viewer: a plugin's viewer hides napari's private parts."""
    for widget in host.window().findChildren(QWidget):
        if type(widget).__name__ == CONTAINER_CLASS:
            widgets = getattr(widget, "widgets", None)
            return widgets.get(layer) if isinstance(widgets, dict) else None
    return None


def adapt_controls(host: QWidget, layer: Any) -> bool:
    """On one of segmend's dataset layers: hide napari's paint, erase, fill and polygon
    buttons (label layers) and make the combo boxes compact.  True if ``layer`` was one
    and its controls were found (in the window of ``host``)."""
    role = layer.metadata.get(ROLE)
    if role not in DATASET_ROLES:
        return False
    controls = layer_controls(host, layer)
    if controls is None:
        return False
    if role in SEGMEND_LABEL_ROLES:
        for name in PAINT_BUTTONS:
            button = getattr(controls, name, None)
            if button is not None:
                button.setVisible(False)
    for combo in controls.findChildren(QComboBox):
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(COMBO_CHARACTERS)
    return True
