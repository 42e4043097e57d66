"""Painters for the chest phantom (see :mod:`viewer.core.demo.phantom`).

Every painter works in **model millimetres**: ``x`` toward the patient's left, ``y`` toward
posterior (both 0 at the centre of the slice), ``z`` toward superior (0 at the bottom of the
volume, 300 at the top). :class:`Grid` maps them to array indices ``(k, j, i)``; in-plane
model mm are scaled by ``Grid.s`` and ``z`` by ``Grid.sz`` to reach physical mm. Painters
modify ``hu`` (float32, HU) and ``lab`` (uint8 labels of :data:`phantom.LABEL_NAMES`) in
place; work is restricted to bounding boxes so the full volume is touched only a few times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LUNG_LABELS = (1, 2)
GGO, CONSOLIDATION = 3, 4


@dataclass(frozen=True)
class Lung:
    label: int
    cx: float  # centre, model mm
    cy: float
    ax: float  # semi-axes at the base
    ay: float
    zb: float  # base and apex heights
    za: float
    dome: float  # height of the diaphragm dome above zb

    def width2(self, z: np.ndarray) -> np.ndarray:
        """Squared cross-section scale at height ``z`` (1 at the base, 0 at the apex)."""
        t = (z - self.zb) / (self.za - self.zb)
        return np.where(t < 0, 1.0, np.clip(1.0 - np.abs(t) ** 3, 0.0, 1.0))

    def base(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Height of the lung base (the diaphragm), highest antero-centrally."""
        rd2 = ((x - self.cx) / self.ax) ** 2 + ((y - self.cy + 15.0) / self.ay) ** 2
        return self.zb + self.dome * (1.0 - rd2)


RIGHT = Lung(label=1, cx=-72.0, cy=6.0, ax=58.0, ay=78.0, zb=48.0, za=268.0, dome=30.0)
LEFT = Lung(label=2, cx=75.0, cy=8.0, ax=52.0, ay=76.0, zb=40.0, za=264.0, dome=22.0)


class Grid:
    """Model-mm coordinates of a ``(k, j, i)`` grid with spacing ``(sk, sj, si)`` mm."""

    def __init__(self, shape: tuple[int, int, int], spacing: tuple[float, float, float]):
        nk, nj, ni = shape
        sk, sj, si = spacing
        self.shape = shape
        self.spacing = spacing
        self.s = min(ni * si, nj * sj) / 360.0
        self.sz = nk * sk / 300.0
        self.x = ((np.arange(ni) - (ni - 1) / 2) * si / self.s).astype(np.float32)
        self.y = ((np.arange(nj) - (nj - 1) / 2) * sj / self.s).astype(np.float32)
        self.z = ((np.arange(nk) + 0.5) * sk / self.sz).astype(np.float32)
        self.h = min(si, sj) / self.s  # in-plane voxel size, model mm
        self.hz = sk / self.sz

    def box(self, lo, hi) -> tuple[slice, slice, slice] | None:
        """Index slices ``(k, j, i)`` covering the model-mm box ``lo..hi`` (x, y, z)."""
        nk, nj, ni = self.shape
        sk, sj, si = self.spacing
        fi = [lo[0] * self.s / si + (ni - 1) / 2, hi[0] * self.s / si + (ni - 1) / 2]
        fj = [lo[1] * self.s / sj + (nj - 1) / 2, hi[1] * self.s / sj + (nj - 1) / 2]
        fk = [lo[2] * self.sz / sk - 0.5, hi[2] * self.sz / sk - 0.5]
        out = []
        for (a, b), n in ((fk, nk), (fj, nj), (fi, ni)):
            a0 = max(int(np.floor(a)), 0)
            b0 = min(int(np.ceil(b)) + 1, n)
            if b0 <= a0:
                return None
            out.append(slice(a0, b0))
        return tuple(out)

    def coords(self, sl) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable model-mm ``(X, Y, Z)`` for the sub-block ``sl``."""
        return (self.x[sl[2]][None, None, :], self.y[sl[1]][None, :, None],
                self.z[sl[0]][:, None, None])

    def to_kji(self, p) -> tuple[float, float, float]:
        """Fractional voxel index ``(k, j, i)`` of the model-mm point ``p = (x, y, z)``."""
        nk, nj, ni = self.shape
        sk, sj, si = self.spacing
        return (p[2] * self.sz / sk - 0.5, p[1] * self.s / sj + (nj - 1) / 2,
                p[0] * self.s / si + (ni - 1) / 2)


def _capsule(g: Grid, p0, p1, pad: float):
    """Sub-block around segment p0-p1 (model mm) and the distance of each voxel to it."""
    p0 = np.asarray(p0, dtype=np.float32)
    p1 = np.asarray(p1, dtype=np.float32)
    sl = g.box(np.minimum(p0, p1) - pad, np.maximum(p0, p1) + pad)
    if sl is None:
        return None, None
    X, Y, Z = g.coords(sl)
    v = p1 - p0
    wx, wy, wz = X - p0[0], Y - p0[1], Z - p0[2]
    vv = float(v @ v) or 1.0
    t = np.clip((wx * v[0] + wy * v[1] + wz * v[2]) / vv, 0.0, 1.0)
    d2 = (wx - t * v[0]) ** 2 + (wy - t * v[1]) ** 2 + (wz - t * v[2]) ** 2
    return sl, np.sqrt(d2)


def _tube(g: Grid, hu, lab, points, radius: float, value: float, label: int | None = 0,
          only_labels: tuple[int, ...] | None = None) -> None:
    """Paint a tube of ``radius`` (model mm) along a polyline; set ``lab`` unless None."""
    for p0, p1 in zip(points[:-1], points[1:]):
        sl, d = _capsule(g, p0, p1, radius + g.h)
        if sl is None:
            continue
        m = d <= radius
        if only_labels is not None:
            m &= np.isin(lab[sl], only_labels)
        hu[sl][m] = value
        if label is not None:
            lab[sl][m] = label


def _ellipsoid(g: Grid, center, semi):
    sl = g.box(np.subtract(center, semi), np.add(center, semi))
    if sl is None:
        return None, None
    X, Y, Z = g.coords(sl)
    q = ((X - center[0]) / semi[0]) ** 2 + ((Y - center[1]) / semi[1]) ** 2
    return sl, q + ((Z - center[2]) / semi[2]) ** 2


def _paint_ellipsoid(g, hu, lab, center, semi, value, label=0):
    sl, q = _ellipsoid(g, center, semi)
    if sl is not None:
        hu[sl][q < 1] = value
        lab[sl][q < 1] = label


def paint_body(g: Grid, hu) -> None:
    """Elliptical trunk: subcutaneous fat (-100 HU) around muscle (40 HU); flat back."""
    X, Y = g.x[None, :], g.y[:, None]
    f2 = (1 - 0.07 * np.clip((g.z - 230) / 70, 0, 1)) ** 2  # narrower toward the neck
    outer = np.where(Y < 118, (X / 165) ** 2 + ((Y - 5) / 118) ** 2, np.inf)
    inner = np.where(Y < 106, (X / 151) ** 2 + ((Y - 5) / 104) ** 2, np.inf)
    masks: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    for k, f in enumerate(f2.tolist()):
        if f not in masks:
            masks[f] = (outer < f, inner < f)
        np.copyto(hu[k], np.float32(-100.0), where=masks[f][0])
        np.copyto(hu[k], np.float32(40.0), where=masks[f][1])


def paint_liver_and_mediastinal_fat(g: Grid, hu) -> None:
    """Liver (55 HU) under the right hemidiaphragm; mediastinal fat (-90 HU)."""
    sl = g.box((-160, -110, 0), (70, 110, RIGHT.zb + RIGHT.dome))
    if sl is not None:
        X, Y, Z = g.coords(sl)
        inside = ((X + 40) / 115) ** 2 + (Y / 95) ** 2 < 1
        m = inside & (Z < RIGHT.base(X, Y) - 5) & (hu[sl] == 40.0)
        hu[sl][m] = 55.0
    sl, q = _ellipsoid(g, (0, -22, 170), (45, 50, 100))
    if sl is not None:
        m = (q < 1) & (hu[sl] == 40.0)
        hu[sl][m] = -90.0


def paint_lungs(g: Grid, hu, lab) -> None:
    """Two lungs, -865 HU anteriorly to -810 HU posteriorly (gravity gradient)."""
    for lung in (RIGHT, LEFT):
        lo = (lung.cx - lung.ax, lung.cy - lung.ay, lung.zb - lung.dome)
        sl = g.box(lo, (lung.cx + lung.ax, lung.cy + lung.ay, lung.za))
        if sl is None:
            continue
        X, Y, Z = g.coords(sl)
        r2 = ((X - lung.cx) / lung.ax) ** 2 + ((Y - lung.cy) / lung.ay) ** 2
        m = (r2 < lung.width2(Z)) & (Z > lung.base(X, Y)) & (Z > lung.zb - 0.8 * lung.dome)
        value = -865.0 + 55.0 * np.clip((Y - lung.cy + lung.ay) / (2 * lung.ay), 0, 1)
        hu[sl] = np.where(m, value, hu[sl])
        lab[sl][m] = lung.label


def paint_mediastinum(g: Grid, hu, lab) -> None:
    """Heart with contrast-filled chambers, aorta, pulmonary trunk, superior vena cava."""
    _paint_ellipsoid(g, hu, lab, (20, -26, 100), (62, 50, 56), 40.0)
    _paint_ellipsoid(g, hu, lab, (32, -18, 98), (26, 22, 34), 150.0)  # left ventricle
    _paint_ellipsoid(g, hu, lab, (2, -44, 100), (24, 14, 30), 150.0)  # right ventricle
    _paint_ellipsoid(g, hu, lab, (10, 8, 132), (25, 14, 18), 150.0)  # left atrium
    _tube(g, hu, lab, [(-8, -22, 115), (-8, -22, 200)], 15.0, 150.0)  # ascending aorta
    _tube(g, hu, lab, [(-8, -22, 200), (5, -12, 212), (25, 10, 212), (30, 35, 204),
                       (26, 44, 170), (16, 44, 0)], 13.0, 150.0)  # arch, descending
    _tube(g, hu, lab, [(0, -45, 125), (5, -30, 150)], 13.0, 120.0)  # pulmonary trunk
    _tube(g, hu, lab, [(5, -30, 150), (-34, 2, 152)], 10.0, 120.0)
    _tube(g, hu, lab, [(5, -30, 150), (36, 2, 156)], 10.0, 120.0)
    _tube(g, hu, lab, [(-24, -14, 130), (-24, -14, 300)], 9.0, 60.0)  # superior vena cava


def _inward(lung: Lung, p: np.ndarray) -> np.ndarray:
    """Unit vector from ``p`` toward the lung axis, weighted by how close ``p`` is to the edge."""
    r2 = ((p[0] - lung.cx) / lung.ax) ** 2 + ((p[1] - lung.cy) / lung.ay) ** 2
    w2 = float(lung.width2(np.float32(p[2])))
    v = np.array([lung.cx - p[0], lung.cy - p[1], 0.0])
    if p[2] > lung.za - 10:
        v[2] = -abs(v[0]) - 10
    if p[2] < lung.base(p[0], p[1]) + 10:
        v[2] = abs(v[0]) + 10
    n = np.linalg.norm(v)
    return v / n * np.clip(r2 / max(w2, 1e-3) - 0.5, 0, 1.5) if n else v


def _tree(rng, lung: Lung, start, direction, radius, length, generations):
    """Segments ``(p0, p1, radius)`` of a random bifurcating tree that stays in ``lung``.

    Each generation splits into two children 20-45 degrees either side of the parent, with
    radius x 0.75 and length x 0.8, bending away from the lung surface.
    """
    segments = []
    d0 = np.asarray(direction, float)
    stack = [(np.asarray(start, float), d0 / np.linalg.norm(d0), radius, length, 0)]
    while stack:
        p, d, r, ln, gen = stack.pop()
        end = p + d * ln
        segments.append((p, end, r))
        if gen >= generations:
            continue
        u = np.cross(d, rng.standard_normal(3))
        u /= np.linalg.norm(u) or 1.0
        for sign in (1.0, -1.0):
            a = np.radians(rng.uniform(20, 45))
            nd = np.cos(a) * d + sign * np.sin(a) * u + _inward(lung, end)
            stack.append((end, nd / np.linalg.norm(nd), r * 0.75, ln * 0.8, gen + 1))
    return segments


def _roots(lung: Lung):
    """(start, direction) of the lobar arteries and veins, model mm."""
    sx = np.sign(lung.cx)
    artery, vein = (sx * 34.0, 2.0, 152.0), (sx * 30.0, 8.0, 125.0)
    return [(artery, (0.35 * sx, 0.0, 1.0)), (artery, (sx, -0.3, -0.05)),
            (artery, (0.4 * sx, 0.5, -1.0)), (vein, (0.5 * sx, -0.4, 0.7)),
            (vein, (sx, 0.3, -0.2)), (vein, (0.5 * sx, 0.6, -1.0))]


def paint_vessels(g: Grid, hu, lab, rng) -> None:
    """Arterial and venous trees (40 HU, partial-volume edges) inside each lung."""
    for lung in (RIGHT, LEFT):
        for start, direction in _roots(lung):
            for p0, p1, r in _tree(rng, lung, start, direction, 5.0, 40.0, 6):
                sl, d = _capsule(g, p0, p1, r + g.h)
                if sl is None:
                    continue
                w = np.clip((r - d) / g.h + 0.5, 0.0, 1.0)
                m = (w > 0) & ((lab[sl] == 1) | (lab[sl] == 2))
                sub = hu[sl]
                sub[m] = np.maximum(sub[m], sub[m] + (40.0 - sub[m]) * w[m])


def paint_airways(g: Grid, hu, lab, rng) -> None:
    """Trachea, carina, main bronchi (outside the lungs) and bronchi inside them."""
    main = [([(0, 22, 300), (0, 22, 188)], 11.0, 8.5),
            ([(0, 22, 190), (-30, 16, 170)], 8.0, 6.0),
            ([(0, 22, 190), (34, 18, 160)], 7.5, 5.5)]
    for points, outer, _ in main:
        _tube(g, hu, lab, points, outer, 40.0)
    for points, _, lumen in main:
        _tube(g, hu, lab, points, lumen, -1000.0)
    for lung, (end, prev) in ((RIGHT, main[1][0][::-1]), (LEFT, main[2][0][::-1])):
        direction = np.subtract(end, prev)
        for p0, p1, r in _tree(rng, lung, end, direction, 4.5, 26.0, 3):
            wall = 0.25 * r + 0.8
            _tube(g, hu, lab, [p0, p1], r + wall, 40.0, None, LUNG_LABELS)
            _tube(g, hu, lab, [p0, p1], max(r, 0.5 * g.h), -1000.0, None, LUNG_LABELS)


def paint_spine_and_sternum(g: Grid, hu, lab) -> None:
    """Vertebrae (cortex 650 HU, cancellous 220 HU), discs, canal, posterior elements."""
    sl = g.box((-32, 48, 0), (32, 122, 300))
    if sl is not None:
        X, Y, Z = g.coords(sl)
        zm = np.mod(Z - 10.0, 28.0)
        disc, level = zm < 6.0, (zm >= 7.0) & (zm < 27.0)
        body_in = hu[sl] > -999.0  # not outside air
        rc = np.sqrt(X ** 2 + (Y - 101) ** 2)
        bone = (rc > 8) & (rc < 13) & level
        bone |= (np.abs(X) < 4) & (Y > 110) & (Y < 121) & level
        bone |= (np.abs(X) > 8) & (np.abs(X) < 30) & (np.abs(Y - 96) < 5) & (zm > 12) & (zm < 22)
        _set(hu, lab, sl, bone & body_in, 500.0)
        _set(hu, lab, sl, (rc <= 8) & body_in, 15.0)
        q = (X / 22) ** 2 + ((Y - 72) / 19) ** 2
        c = max(2.5, 1.2 * g.h) / 20.0
        _set(hu, lab, sl, (q < 1) & ~disc, 650.0)
        _set(hu, lab, sl, (q < (1 - c) ** 2) & ~disc, 220.0)
        _set(hu, lab, sl, (q < 1) & disc, 80.0)
    sl, q = _ellipsoid(g, (0, -100, 182), (14, 6, 72))
    if sl is not None:
        _set(hu, lab, sl, q < 1, 500.0)
        _set(hu, lab, sl, q < 0.35, 250.0)


def _set(hu, lab, sl, m, value) -> None:
    hu[sl][m] = value
    lab[sl][m] = 0


def paint_ribs(g: Grid, hu, lab) -> None:
    """Twelve pairs of ribs: oblique elliptical arcs descending anteriorly, with cartilage.

    A rib's centreline lies on the ellipse x = 146 sin(phi), y = 2 + 100 cos(phi) (scaled down
    toward the apex), at height 262 - 24 n - 115 (phi / pi)^1.2 for rib n = 0..11; phi = 0 is
    posterior. Cross-section: 3.5 mm (radial) x 5 mm (vertical) half-axes; costal cartilage
    (110 HU) beyond phi = 0.78 pi.
    """
    X, Y = g.x[None, :], g.y[:, None]
    rho0 = np.sqrt((X / 146) ** 2 + ((Y - 2) / 100) ** 2)
    shell = (rho0 > 0.7) & (rho0 < 1.08) & (np.abs(X) > 22)
    jj, ii = np.nonzero(shell)
    if jj.size == 0:
        return
    x, y, r0 = g.x[ii], g.y[jj], rho0[jj, ii]
    rloc = np.sqrt(x ** 2 + (y - 2) ** 2) / r0
    phi = np.arctan2(np.abs(x) / 146, (y - 2) / 100).astype(np.float32)
    gz = (1 - 0.25 * np.clip((g.z - 200) / 70, 0, 1) ** 1.5).astype(np.float32)
    tr, th = max(3.5, 0.6 * g.h), max(5.0, 0.6 * g.hz)
    d_r = (r0[None, :] - gz[:, None]) * rloc[None, :]
    kk, pp = np.nonzero(np.abs(d_r) < tr)
    d_r = d_r[kk, pp]
    w = 262.0 - 115.0 * (phi[pp] / np.pi) ** 1.2 - g.z[kk]
    n = np.rint(w / 24.0)
    dz = w - n * 24.0
    q = (d_r / tr) ** 2 + (dz / th) ** 2
    jsel, isel = jj[pp], ii[pp]
    rib = (q < 1) & (n >= 0) & (n <= 11) & (phi[pp] < 0.95 * np.pi)
    rib &= hu[kk, jsel, isel] > -999.0  # not outside air
    kk, jsel, isel, pp, q = kk[rib], jsel[rib], isel[rib], pp[rib], q[rib]
    cartilage = phi[pp] > 0.78 * np.pi
    hu[kk, jsel, isel] = np.where(cartilage, 110.0, np.where(q < 0.35, 250.0, 700.0))
    lab[kk, jsel, isel] = 0


def _lesion_center(rng, g: Grid, lab, kind: str):
    for _ in range(100):
        lung = RIGHT if rng.uniform() < 0.6 else LEFT
        t = rng.uniform(0.05, 0.45) if rng.uniform() < 0.8 else rng.uniform(0.45, 0.7)
        lateral = np.pi if lung is RIGHT else 0.0
        ang = rng.normal(np.pi / 2 + 0.5 * (lateral - np.pi / 2) * 0.8, 0.45)
        z = lung.zb + t * (lung.za - lung.zb)
        rho = float(np.sqrt(lung.width2(np.float32(z)))) * rng.uniform(0.5, 0.78)
        c = np.array([lung.cx + lung.ax * rho * np.cos(ang),
                      lung.cy + lung.ay * rho * np.sin(ang), z])
        k, j, i = (int(round(v)) for v in g.to_kji(c))
        if all(0 <= a < n for a, n in zip((k, j, i), g.shape)) and lab[k, j, i] in LUNG_LABELS:
            return lung, c
    raise RuntimeError(f"could not place a {kind} lesion inside the lungs")


def paint_lesions(g: Grid, hu, lab, rng, n_ggo: int = 4, n_consolidation: int = 2) -> list:
    """Fuzzy ground-glass (-480..-330 HU) and solid consolidation (20..40 HU) blobs.

    Lesion voxels are the lung voxels where the blob profile passes half its edge ramp;
    they take label 3 (ggo) or 4 (consolidation), overriding the lung labels.
    """
    lesions = []
    for kind in ["ggo"] * n_ggo + ["consolidation"] * n_consolidation:
        lung, c = _lesion_center(rng, g, lab, kind)
        big = kind == "ggo"
        radius = rng.uniform(14, 26) if big else rng.uniform(10, 18)
        parts = [(c + (rng.normal(0, 0.3 * radius, 3) if n else 0),
                  radius * rng.uniform(0.55, 0.9, 3)) for n in range(3)]
        ext = radius * 1.6
        sl = g.box(c - ext, c + ext)
        X, Y, Z = g.coords(sl)
        p = np.zeros(np.broadcast_shapes(X.shape, Y.shape, Z.shape), np.float32)
        for pc, pr in parts:
            q = np.sqrt(((X - pc[0]) / pr[0]) ** 2 + ((Y - pc[1]) / pr[1]) ** 2
                        + ((Z - pc[2]) / pr[2]) ** 2)
            np.maximum(p, 1 - q, out=p)
        sub, lsub = hu[sl], lab[sl]
        allowed = np.isin(lsub, (*LUNG_LABELS, GGO)) & (sub > -950)
        if big:
            core, ramp_w, label = rng.uniform(-480, -330), 0.35, GGO
            allowed &= lsub != CONSOLIDATION
        else:
            core, ramp_w, label = rng.uniform(20, 40), 0.08, CONSOLIDATION
        s = np.clip(p / ramp_w, 0, 1)
        ramp = s * s * (3 - 2 * s)
        m = allowed & (ramp > 0)
        sub[m] = np.maximum(sub[m], sub[m] + (core - sub[m]) * ramp[m])
        lsub[allowed & (ramp >= 0.5)] = label
        if not big:
            _bronchogram(g, hu, lab, rng, c, radius)
        lesions.append({"kind": kind, "side": "right" if lung is RIGHT else "left",
                        "center_kji": tuple(float(v) for v in g.to_kji(c)),
                        "radius_mm": float(radius * g.s)})
    return lesions


def _bronchogram(g: Grid, hu, lab, rng, c, radius) -> None:
    """An air-filled branching bronchus (-900 HU) crossing a consolidation."""
    d = rng.normal(0, 1, 3)
    d /= np.linalg.norm(d)
    a, b = c - 0.7 * radius * d, c + 0.7 * radius * d
    side = c + 0.6 * radius * rng.normal(0, 1, 3) / np.sqrt(3)
    r = max(1.2, 0.55 * g.h)
    for p0, p1 in ((a, b), ((a + b) / 2, side)):
        _tube(g, hu, lab, [p0, p1], r, -900.0, None, (CONSOLIDATION,))
