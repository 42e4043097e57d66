#!/usr/bin/env bash
# Set up everything radview needs on a fresh Debian/Ubuntu machine, idempotently:
# the system packages (Qt's xcb libraries, Xvfb, OpenGL/OSMesa, dcm2niix, dicom3tools)
# and the virtual environment .venv with the project installed in editable mode.
# Safe to run again: it installs only what is missing or changed. Works without a
# terminal (CI=true, no standard input).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=.venv
DEB_PACKAGES=(
  xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0
  libxcb-randr0 libxcb-xinerama0 libxcb-xkb1 libxcb-cursor0 libxkbcommon-x11-0 libxkbcommon0
  libegl1 libgl1 libglx-mesa0 libosmesa6 libdbus-1-3 libfontconfig1 libglib2.0-0
  dcm2niix dicom3tools
)

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
  export DEBIAN_FRONTEND=noninteractive
  if $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    :
  else
    echo "bootstrap: could not install ${missing[*]} (need root); GUI tests and the dcm2niix" >&2
    echo "bootstrap: comparison will be skipped. Run: sudo apt-get install ${missing[*]}" >&2
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating $VENV"
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.radview-installed"
want=$(cat pyproject.toml installer/bootstrap.sh | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing Python packages into $VENV (first time takes a few minutes)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip setuptools wheel
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[ai,dev]"
  echo "$want" > "$stamp"
fi
