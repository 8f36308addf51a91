"""Make ``resources/fib-medulla-250-synapses.json``: SYNTHETIC synapses on the
shipped cube's ground truth, in DVID's POST /elements JSON.

Usage (from the repository root)::

    python -m tools.make_synthetic_synapses [CUBE.h5 [OUT.json]]

By default it reads ``groundtruth/bodies`` of ``resources/fib-medulla-250.h5``
and writes the JSON next to it. The same cube always gives the same file
(seed :data:`SEED`, :data:`TBARS` T-bars); see
:mod:`app.model.annotations.synthetic` for how the set is made.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import h5py

from app.model.annotations.synthetic import synthetic_synapses

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
CUBE = RESOURCES / "fib-medulla-250.h5"
OUT = RESOURCES / "fib-medulla-250-synapses.json"
BODIES = "groundtruth/bodies"
SEED = 0
TBARS = 300


def synapses_json(cube: Path) -> str:
    """The synthetic synapses of a cube's ground-truth bodies as JSON text."""
    with h5py.File(cube, "r") as f:
        bodies = f[BODIES][:]
    return to_json(synthetic_synapses(bodies, tbars=TBARS, seed=SEED))


def to_json(elements: list[dict[str, Any]]) -> str:
    """A JSON list, one compact element per line (small diffs)."""
    lines = ",\n".join(json.dumps(element, separators=(",", ":")) for element in elements)
    return f"[\n{lines}\n]\n"


def main(argv: list[str]) -> None:
    """Write the synthetic synapses: ``argv`` is [CUBE.h5 [OUT.json]]."""
    cube = Path(argv[0]) if argv else CUBE
    out = Path(argv[1]) if len(argv) > 1 else OUT
    out.write_text(synapses_json(cube), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
