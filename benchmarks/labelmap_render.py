"""Brush-stroke latency of the label map display, offscreen.

A 300 x 512 x 512 chest phantom (viewer.core.demo) is shown in an axial SliceView with its
own labels (lungs, ground glass, consolidation) as a LabelMapLayer. One "brush step" writes a
small box of labels on the shown slice (a 10 mm disc: LabelMap.write, which emits
changed(bbox) -> Modified on the shared buffer) and renders the view, waiting for the GPU
(glFinish via WaitForCompletion). Printed: median and 95th percentile ms per step, for fill +
outline, fill only, and a plain render with no edit (reference). Target: < 16 ms per step.
Also: one SegmentSurfaces rebuild of the whole label map (done when a stroke ends).

    python benchmarks/labelmap_render.py [--size 512] [--steps 200] [--gl egl|osmesa]
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="square viewport side (px)")
    parser.add_argument("--steps", type=int, default=200, help="brush steps per measurement")
    parser.add_argument("--slices", type=int, default=300, help="phantom slices")
    parser.add_argument("--gl", choices=("egl", "osmesa", "x"), help="force a window class")
    parser.add_argument("--no-surfaces", action="store_true", help="skip the 3D rebuild")
    args = parser.parse_args(argv)
    if args.gl:
        os.environ["RADVIEW_GL_WINDOW"] = args.gl

    import numpy as np
    from vtkmodules.vtkRenderingCore import vtkRenderer

    from viewer.core.demo import chest_phantom
    from viewer.core.demo.phantom import LABEL_NAMES
    from viewer.core.geometry import VolumeGeometry
    from viewer.core.labelmap import LabelMap
    from viewer.core.volume import Volume
    from viewer.render.labelmap_layer import LabelMapLayer
    from viewer.render.offscreen import offscreen_window, window_class_name
    from viewer.render.slice_view import SliceView
    from viewer.render.vtk_convert import volume_to_vtk

    t0 = time.perf_counter()
    shape, spacing = (args.slices, 512, 512), (1.0, 0.7, 0.7)
    hu, info = chest_phantom(shape=shape, spacing=spacing)
    geometry = VolumeGeometry(shape, spacing, (-179.0, -179.0, -300.0))
    volume = Volume(hu, geometry, modality="CT", window=(-600.0, 1500.0))
    names = {v: n for v, n in LABEL_NAMES.items() if v}
    labelmap = LabelMap.from_names(geometry, info["labels"], names)
    print(f"phantom {shape[2]}x{shape[1]}x{shape[0]} + labels in {time.perf_counter() - t0:.1f} s")

    window = offscreen_window((args.size, args.size))
    renderer = vtkRenderer()
    window.AddRenderer(renderer)
    view = SliceView(renderer, volume, volume_to_vtk(volume), "axial")
    layer = LabelMapLayer(view)
    layer.set_labelmap(labelmap)
    k = shape[0] // 2
    view.set_slice_lps(geometry.index_to_lps((k, 256, 256)))
    window.Render()
    window.WaitForCompletion()
    print(f"{window_class_name()}, {args.size}x{args.size} px")

    # a 10 mm brush disc, moved across the lungs: ~29 x 29 voxels per step
    r_vox = int(round(5.0 / spacing[1]))
    yy, xx = np.mgrid[-r_vox : r_vox + 1, -r_vox : r_vox + 1]
    disc = (yy**2 + xx**2) <= r_vox**2

    def paint(n: int) -> None:
        j = 200 + (n * 3) % 120
        i = 120 + (n * 7) % 280
        bbox = ((k, k + 1), (j - r_vox, j + r_vox + 1), (i - r_vox, i + r_vox + 1))
        old = labelmap.labels[k, j - r_vox : j + r_vox + 1, i - r_vox : i + r_vox + 1]
        values = np.where(disc, np.uint8(3 + n % 2), old)[None]
        labelmap.write(bbox, values)

    def measure(step) -> tuple[float, float, float, float]:
        """(median, p95, min) wall ms and median CPU ms (all threads) per step."""
        for n in range(10):  # warm-up
            step(n)
            window.Render()
        window.WaitForCompletion()
        times, cpu = [], []
        for n in range(args.steps):
            t, c = time.perf_counter(), time.process_time()
            step(n)
            window.Render()
            window.WaitForCompletion()
            times.append(1000.0 * (time.perf_counter() - t))
            cpu.append(1000.0 * (time.process_time() - c))
        return (
            float(np.median(times)),
            float(np.percentile(times, 95)),
            float(np.min(times)),
            float(np.median(cpu)),
        )

    def window_drag(n: int) -> None:  # a render of the image alone, for reference
        view.set_window(-600 + n % 2, 1500)

    results = {"paint + render, fill + outline": measure(paint)}
    w, h = args.size, args.size
    update = []
    for _ in range(50):
        layer._version += 1  # as after an edit in the shown plane
        t = time.process_time()
        layer._update_picture(w, h)
        update.append(1000.0 * (time.process_time() - t))
    layer.set_outline(False)
    results["paint + render, fill only"] = measure(paint)
    layer.set_outline(True)
    view.zoom(3.0)
    results["paint + render, zoomed 3x"] = measure(paint)
    layer.set_labelmap(None)
    results["render only, zoomed 3x, no labels"] = measure(window_drag)
    view.reset_camera()
    results["render only, no labels"] = measure(window_drag)
    print(
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
        "wall times grow with the load, CPU times much less)"
    )
    for name, (median, p95, fastest, cpu) in results.items():
        verdict = "ok" if median < 16 else "ABOVE TARGET"
        print(
            f"{name:<34} median {median:6.1f} ms  p95 {p95:6.1f}  min {fastest:6.1f}  "
            f"CPU {cpu:6.1f} ms  (< 16 ms: {verdict})"
        )

    print(
        f"label layer update alone (reslice + colour + outline, {w}x{h} px): "
        f"median CPU {np.median(update):.2f} ms"
    )
    if not args.no_surfaces:
        from viewer.render.segment_surfaces import label_surfaces

        t = time.perf_counter()
        surfaces = label_surfaces(labelmap.labels, labelmap.geometry)
        cells = sum(p.GetNumberOfPolys() for p in surfaces.values())
        print(
            f"segment surfaces rebuild (whole map) {time.perf_counter() - t:6.2f} s, "
            f"{len(surfaces)} segments, {cells} triangles"
        )
    view.close()
    window.Finalize()
    return 0


if __name__ == "__main__":
    sys.exit(main())
