#!/usr/bin/env bash
# Smoke test of the built package (make package-test; run `make package` first):
#  1. dist/radview/radview --self-test, headless (no DISPLAY);
#  2. the .tar.gz unpacked elsewhere (relocation) runs --self-test with networking blocked
#     (a new network namespace: unshare -rn) - skipped with a note where unshare is refused;
#  3. the .deb holds /opt/radview/radview, the /usr/bin/radview link, the desktop entry and
#     the icons, and its control file names the package; unpacked, it starts via a symlink;
#  4. start-up to the first window under Xvfb (installer/startup_time.py), median of 5,
#     must be under STARTUP_LIMIT seconds (default 2, the issue's target). The time grows
#     with the machine's load (printed): on a busy 2-core box 1.4 s runs become 2.3 s.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
APP=dist/radview/radview
LIMIT=${STARTUP_LIMIT:-2}
[ -x "$APP" ] || { echo "FAIL  $APP missing: run make package first" >&2; exit 1; }
headless() { env -u DISPLAY -u WAYLAND_DISPLAY -u VTK_DEFAULT_OPENGL_WINDOW -u RADVIEW_GL_WINDOW "$@"; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

echo "== self-test of $APP (no display)"
headless "$APP" --self-test

VERSION=$($PY -c "import viewer; print(viewer.__version__)")
ARCH=$(dpkg --print-architecture 2>/dev/null || uname -m)
TARBALL=dist/radview-$VERSION-linux-$ARCH.tar.gz
echo "== $TARBALL unpacked in $TMP, self-test with networking blocked"
tar -C "$TMP" -xzf "$TARBALL"
if unshare -rn true 2>/dev/null; then
  headless unshare -rn sh -c '
    "$1" -c "import socket; n = [i[1] for i in socket.if_nameindex()]; assert n == [\"lo\"], n" \
      || { echo "FAIL  network still visible in the namespace"; exit 1; }
    exec "$0" --self-test' "$TMP/radview/radview" "$PY"
else
  echo "SKIP  offline self-test: unshare -rn is not allowed here"
fi

DEB=dist/radview_${VERSION}_${ARCH}.deb
echo "== $DEB contents"
if [ -f "$DEB" ]; then
  LIST=$(dpkg-deb -c "$DEB")
  for want in ./opt/radview/radview ./usr/bin/radview ./usr/share/applications/radview.desktop \
              ./usr/share/icons/hicolor/scalable/apps/radview.svg \
              ./usr/share/icons/hicolor/256x256/apps/radview.png \
              ./opt/radview/_internal/resources/models/cxr-covid/model.json; do
    grep -q " $want\( \|$\)" <<<"$LIST" || { echo "FAIL  $DEB lacks $want"; exit 1; }
  done
  [ "$(dpkg-deb -f "$DEB" Package)" = radview ] || { echo "FAIL  bad control file"; exit 1; }
  # unpacked as dpkg would, started through the /usr/bin-style symlink (the bootloader must
  # find _internal/ by the link's target)
  dpkg-deb -x "$DEB" "$TMP/deb"
  ln -s "$TMP/deb/opt/radview/radview" "$TMP/radview-link"
  HELP=$(headless "$TMP/radview-link" --help) || true
  grep -q -- "--self-test" <<<"$HELP" \
    || { echo "FAIL  the .deb's radview does not start through a symlink"; exit 1; }
  echo "PASS  deb layout ($(du -h "$DEB" | cut -f1))"
else
  echo "FAIL  $DEB missing"; exit 1
fi

echo "== start-up to first window (Xvfb)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null) on $(nproc) cores"
OUT=$(xvfb-run -a -s "-screen 0 1920x1080x24" $PY installer/startup_time.py --runs 5 -- "$APP")
echo "$OUT"
MEDIAN=$(echo "$OUT" | sed -n 's/.*median \([0-9.]*\) s.*/\1/p')
$PY -c "import sys; sys.exit(0 if float('$MEDIAN') < float('$LIMIT') else 1)" \
  || { echo "FAIL  start-up ${MEDIAN} s >= ${LIMIT} s"; exit 1; }
echo "PASS  start-up ${MEDIAN} s < ${LIMIT} s"
echo "package-test passed"
