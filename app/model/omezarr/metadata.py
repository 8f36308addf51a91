"""The OME-Zarr (NGFF 0.5) attributes of a segmend export, as JSON-ready dicts.

Layout (every array Zarr v3, axes z, y, x)::

    OUT.zarr/                      image: multiscales over 0..M (grayscale)
        0 ... M                    grayscale scales (with grayscale only)
        labels/                    labels: ["segmentation"]
            segmentation/          image-label + multiscales over 0..N
                0 ... N            label scales

Without grayscale the root image's multiscales names the label arrays
themselves (``labels/segmentation/0`` ...): readers that want an image at
the root find the volume there, and ``labels/`` marks it as labels (see
:func:`app.model.omezarr.writer.building_ome_zarr` for why).

Coordinates: scale k of a 2× pyramid has ``scale = voxel_size * 2**k`` and a
``translation`` of ``voxel_size * (2**k - 1) / 2``: NGFF places a voxel's
centre at its coordinate, and a voxel of scale k summarises the ``2**k`` voxels
of scale 0 from ``i * 2**k`` on, whose centres average to that offset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

NGFF_VERSION = "0.5"
FORMAT_NAME = "segmend-ome-zarr"
"""The ``format`` of the ``segmend`` root attribute that marks an export of segmend."""
FORMAT_VERSION = 1
AXES = ("z", "y", "x")
UNIT = "nanometer"
LABELS_GROUP = "labels"
LABEL_NAME = "segmentation"
LABEL_IMAGE = f"{LABELS_GROUP}/{LABEL_NAME}"
"""The label image's group inside the store."""


def scale_transforms(voxel_size_nm: Sequence[float], scale: int) -> list[dict[str, Any]]:
    """The ``coordinateTransformations`` of scale ``scale``: a scale, then a translation."""
    factor = 2**scale
    shift = (factor - 1) / 2
    return [
        {"type": "scale", "scale": [float(v) * factor for v in voxel_size_nm]},
        {"type": "translation", "translation": [float(v) * shift for v in voxel_size_nm]},
    ]


def multiscale(name: str, paths: Sequence[str], voxel_size_nm: Sequence[float]) -> dict[str, Any]:
    """One ``multiscales`` entry over the arrays at ``paths`` (relative to its group),
    scale 0 first."""
    return {
        "name": name,
        "axes": [{"name": axis, "type": "space", "unit": UNIT} for axis in AXES],
        "datasets": [
            {"path": path, "coordinateTransformations": scale_transforms(voxel_size_nm, k)}
            for k, path in enumerate(paths)
        ],
    }


def root_attributes(
    *,
    name: str,
    paths: Sequence[str],
    voxel_size_nm: Sequence[float],
    created_by: str,
    downres_rule: str,
    compression: str,
) -> dict[str, Any]:
    """The root group's attributes: the image's ``ome`` metadata and the
    ``segmend`` mark (:data:`FORMAT_NAME`, :data:`FORMAT_VERSION`, ``created_by``,
    and what a reader needs to check the levels: ``downres_rule``,
    ``compression``; a build adds ``max_label``)."""
    return {
        "ome": {"version": NGFF_VERSION, "multiscales": [multiscale(name, paths, voxel_size_nm)]},
        "segmend": {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "created_by": created_by,
            "downres_rule": downres_rule,
            "compression": compression,
        },
    }


def labels_attributes() -> dict[str, Any]:
    """The ``labels`` group's attributes: the one label image it holds."""
    return {"ome": {"version": NGFF_VERSION, "labels": [LABEL_NAME]}}


def label_image_attributes(n_scales: int, voxel_size_nm: Sequence[float]) -> dict[str, Any]:
    """The label image's attributes: its multiscales over ``0 .. n_scales - 1`` and
    ``image-label`` naming the image two groups up.

    NGFF 0.5 keeps the version in ``ome`` alone: ``image-label`` carries none
    (a strict 0.5 reader refuses one there).
    """
    return {
        "ome": {
            "version": NGFF_VERSION,
            "image-label": {"source": {"image": "../../"}},
            "multiscales": [
                multiscale(LABEL_NAME, [str(k) for k in range(n_scales)], voxel_size_nm)
            ],
        }
    }


def is_segmend_export(attributes: Any) -> bool:
    """Whether a Zarr group's ``attributes`` mark an OME-Zarr written by segmend."""
    mark = attributes.get("segmend") if isinstance(attributes, dict) else None
    return isinstance(mark, dict) and mark.get("format") == FORMAT_NAME
