"""Small shims over napari API differences between the versions segmend supports."""

from __future__ import annotations

from typing import Any


def camera(viewer: Any) -> Any:
    """The viewer's camera (``viewer.scene.camera`` since napari 0.9, ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None and hasattr(scene, "camera") else viewer.camera


def canvas_model(viewer: Any) -> Any | None:
    """The viewer's canvas model (``viewer.canvas``, with ``size`` since napari 0.6), or None."""
    canvas = getattr(viewer, "canvas", None)
    return canvas if hasattr(canvas, "size") and hasattr(canvas, "events") else None


def canvas_size(viewer: Any) -> tuple[int, int] | None:
    """The (height, width) of the viewer's canvas in screen pixels, or None if unknown."""
    canvas = canvas_model(viewer)
    if canvas is None:
        return None
    height, width = (int(v) for v in canvas.size)
    return (height, width) if height > 0 and width > 0 else None
