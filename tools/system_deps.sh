#!/usr/bin/env bash
# The Debian/Ubuntu packages segmend needs from the system -- the one list:
#   - python3 and python3-venv, for the virtualenv (unless a python3 with ensurepip is there)
#   - the libraries Qt's xcb platform plugin and napari's OpenGL canvas load
#     (app/display.py probes the same sonames when the window cannot start)
#   - with --tests: Xvfb, for the tests of the window
# Installs the missing ones: as root, or with sudo when it needs no password
# (sudo -n: never waits for one). Otherwise prints the exact command and exits 1.
#
# Usage: bash tools/system_deps.sh [--tests] [--list]
#   --list   print the packages (one a line) and exit
# Exit status: 0 when everything is installed; 1 when packages are missing and
# could not be installed (the command to run is printed), or on a usage error.
set -euo pipefail

window=(libxcb1 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
        libxcb-render0 libxcb-render-util0 libxcb-shape0 libxcb-shm0 libxcb-sync1
        libxcb-util1 libxcb-xfixes0 libxcb-xinerama0 libxcb-xkb1 libxcb-glx0 libxkbcommon0
        libxkbcommon-x11-0 libx11-6 libx11-xcb1 libxrender1 libxi6 libsm6 libice6 libgl1
        libegl1 libglx-mesa0 libgl1-mesa-dri libfontconfig1 libfreetype6 fonts-dejavu-core
        libglib2.0-0 libdbus-1-3)
tests=(xvfb xauth)

debs=(python3 python3-venv "${window[@]}")
list=0
for arg in "$@"; do
  case "$arg" in
    --tests) debs+=("${tests[@]}") ;;
    --list) list=1 ;;
    *) echo "usage: bash tools/system_deps.sh [--tests] [--list]" >&2; exit 1 ;;
  esac
done
if [ "$list" -eq 1 ]; then
  printf '%s\n' "${debs[@]}"
  exit 0
fi
[ "$(uname -s)" = Linux ] || exit 0  # macOS and Windows: Qt needs no system packages
python3 -c 'import ensurepip' 2>/dev/null && debs=("${debs[@]:2}")  # venv works already

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
  echo "system_deps: not a Debian/Ubuntu system; install the equivalents of: ${debs[*]}" >&2
  exit 1
fi
# Installed packages and the names they provide (Ubuntu's libglib2.0-0t64 provides libglib2.0-0).
installed=" $(dpkg-query -W -f='${db:Status-Abbrev}|${Package}|${Provides}\n' 2>/dev/null |
  awk -F'|' '$1 ~ /^ii/ { print $2; n = split($3, p, /, */); for (i = 1; i <= n; i++) { split(p[i], w, " "); print w[1] } }' |
  tr '\n' ' ') "
missing=()
for p in "${debs[@]}"; do
  [[ "$installed" == *" $p "* ]] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  s=""; command -v sudo >/dev/null && s="sudo "
  echo "system_deps: missing Debian packages: ${missing[*]}; install them with" >&2
  echo "  ${s}apt-get update && ${s}apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
echo "system_deps: installing ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
