"""A dataset's DVID identity: the ``repo_uuid`` and ``data_uuid`` of its pyramid file."""

from __future__ import annotations

from pathlib import Path

import h5py

from app.model.errors import SegmendError

__all__ = ["dataset_uuids"]


def dataset_uuids(path: str | Path) -> tuple[str, str]:
    """``(repo_uuid, data_uuid)`` from the root attributes of the pyramid file.

    Raises
    ------
    SegmendError
        If the file is missing, not HDF5, or lacks either attribute.
    """
    p = Path(path)
    if not p.exists():
        raise SegmendError(f"{p}: no such file")
    try:
        with h5py.File(p, "r", locking=False) as h5:
            attrs = {name: h5.attrs.get(name) for name in ("repo_uuid", "data_uuid")}
    except OSError as exc:
        raise SegmendError(f"{p}: cannot read the pyramid file ({exc})") from None
    values = []
    for name, value in attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        if not isinstance(value, str) or not value:
            raise SegmendError(f"{p}: no {name} attribute on the root group")
        values.append(value)
    return values[0], values[1]
