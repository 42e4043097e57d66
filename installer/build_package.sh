#!/usr/bin/env bash
# Build the one-folder app dist/radview/ with PyInstaller (installer/radview.spec), then the
# Linux packages dist/radview-<version>-linux-<arch>.tar.gz and dist/radview_<version>_<arch>.deb.
# Usage: installer/build_package.sh [--app-only | --packages-only]   (make package runs it all)
# Needs: .venv with the package extra (pip install -e '.[ai,package]'), dpkg-deb for the .deb.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
MODE=${1:-all}
# PyInstaller imports TensorFlow to analyse it: keep its C++ start-up log out of the output
export TF_CPP_MIN_LOG_LEVEL=2

if [ "$MODE" != "--packages-only" ]; then
  if ! $PY -c "import PyInstaller" 2>/dev/null; then
    echo "PyInstaller missing: .venv/bin/pip install -e '.[package]'" >&2
    exit 1
  fi
  start=$(date +%s)
  $PY -m PyInstaller --noconfirm --clean --log-level WARN \
      --distpath dist --workpath build/pyinstaller installer/radview.spec
  # TensorFlow's C++ headers and other development files are never needed at run time
  find dist/radview/_internal -depth -type d \( -name include -o -name __pycache__ \) \
      -path '*tensorflow*' -exec rm -rf {} +
  echo "built dist/radview in $(( $(date +%s) - start )) s: $(du -sh dist/radview | cut -f1)"
fi
[ "$MODE" = "--app-only" ] && exit 0

VERSION=$($PY -c "import viewer; print(viewer.__version__)")
ARCH=$(dpkg --print-architecture 2>/dev/null || uname -m)
TARBALL=dist/radview-$VERSION-linux-$ARCH.tar.gz
tar -C dist -czf "$TARBALL" radview
echo "wrote $TARBALL ($(du -h "$TARBALL" | cut -f1))"

if command -v dpkg-deb >/dev/null; then
  bash installer/make_deb.sh "$VERSION" "$ARCH"
else
  echo "dpkg-deb not found: no .deb built" >&2
fi
