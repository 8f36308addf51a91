#!/usr/bin/env bash
# First run on a fresh Debian/Ubuntu machine (README, "Set up"):
#   1. the system libraries the window needs (tools/system_deps.sh; as root or with
#      a sudo that needs no password; otherwise it prints the command and we go on:
#      segmend then says which libraries are missing and runs the demo headless),
#   2. a virtualenv in .venv with segmend and its gui extra,
#   3. `segmend demo`: the app on the demo (labelmap mode), or without a display its
#      summary.
# Extra arguments go to `segmend demo` (e.g. --no-gui, or --voxel for the voxel-mode demo).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/system_deps.sh ||
  echo "run_demo: going on without them (if the window cannot start, the demo runs headless)" >&2
[ -x .venv/bin/python ] || python3 -m venv .venv
echo "run_demo: installing segmend with its gui extra in .venv (minutes the first time)" >&2
.venv/bin/python -m pip install -q -e '.[gui]'
exec .venv/bin/segmend demo "$@"
