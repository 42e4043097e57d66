#!/usr/bin/env bash
# dist/radview_<version>_<arch>.deb from dist/radview/ with dpkg-deb (no root needed):
#   /opt/radview/...                          the one-folder app
#   /usr/bin/radview -> /opt/radview/radview  symlink (the app finds _internal/ by its real path)
#   /usr/share/applications/radview.desktop   desktop entry
#   /usr/share/icons/hicolor/{scalable,256x256}/apps/radview.{svg,png}
# Usage: installer/make_deb.sh VERSION ARCH   (build_package.sh calls it)
# Depends: glibc of the build machine (2.36 here) and the system OpenGL/EGL (GPU driver
# specific, never bundled); Qt xcb, xkbcommon, fontconfig, D-Bus libraries are bundled.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=$1
ARCH=$2
[ -x dist/radview/radview ] || { echo "dist/radview/radview missing: build it first" >&2; exit 1; }
ROOTFS=build/deb/radview_${VERSION}_${ARCH}
rm -rf "$ROOTFS"
mkdir -p "$ROOTFS/DEBIAN" "$ROOTFS/opt" "$ROOTFS/usr/bin" "$ROOTFS/usr/share/applications" \
         "$ROOTFS/usr/share/icons/hicolor/scalable/apps" "$ROOTFS/usr/share/icons/hicolor/256x256/apps"
cp -a dist/radview "$ROOTFS/opt/radview"
ln -s /opt/radview/radview "$ROOTFS/usr/bin/radview"
install -m 644 installer/radview.desktop "$ROOTFS/usr/share/applications/radview.desktop"
install -m 644 resources/icons/radview.svg "$ROOTFS/usr/share/icons/hicolor/scalable/apps/radview.svg"
install -m 644 resources/icons/radview.png "$ROOTFS/usr/share/icons/hicolor/256x256/apps/radview.png"
SIZE_KB=$(du -sk "$ROOTFS" | cut -f1)
cat > "$ROOTFS/DEBIAN/control" <<CONTROL
Package: radview
Version: $VERSION
Architecture: $ARCH
Maintainer: radview maintainers <radview@localhost>
Installed-Size: $SIZE_KB
Depends: libc6 (>= 2.36), libgl1, libegl1
Recommends: libosmesa6
Section: science
Priority: optional
Description: offline DICOM radiology viewer with an AI assistant (research use only)
 Views CT and radiographs (MPR, 3D), segments them (editor, AI models run in a separate
 process) and exports DICOM SEG / NIfTI. Self-contained: Python, Qt, VTK and TensorFlow
 are bundled under /opt/radview. Check an installation with: radview --self-test
 Not a medical device; not for diagnostic use.
CONTROL
cat > "$ROOTFS/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if command -v update-desktop-database >/dev/null 2>&1; then update-desktop-database -q || true; fi
if command -v gtk-update-icon-cache >/dev/null 2>&1; then gtk-update-icon-cache -q /usr/share/icons/hicolor || true; fi
POSTINST
chmod 755 "$ROOTFS/DEBIAN/postinst"
OUT=dist/radview_${VERSION}_${ARCH}.deb
# gzip: every dpkg reads it, and xz of ~2 GB takes many CPU-minutes
dpkg-deb --root-owner-group -Zgzip -z6 --build "$ROOTFS" "$OUT" >/dev/null
rm -rf "$ROOTFS"  # a 2 GB copy of dist/radview
echo "wrote $OUT ($(du -h "$OUT" | cut -f1))"
