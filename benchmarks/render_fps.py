"""Slice-view frame rate, offscreen: scrolling one slice per frame, and window/level drags.

A 300 x 512 x 512 chest phantom (int16 HU, 0.7 x 0.7 x 1.0 mm) is shown in an axial
SliceView with the crosshair, corner text, orientation letters and scale bar on, in an
offscreen window (no display needed). Each frame changes the view, renders and waits for
the GPU (glFinish via vtkRenderWindow.WaitForCompletion), so the numbers are frames drawn,
not frames queued. Target: >= 60 frames/s for both.

    python benchmarks/render_fps.py [--size 512] [--frames 300] [--gl egl|osmesa]
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="square viewport side (px)")
    parser.add_argument("--frames", type=int, default=300, help="frames per measurement")
    parser.add_argument("--slices", type=int, default=300, help="phantom slices")
    parser.add_argument("--gl", choices=("egl", "osmesa", "x"), help="force a window class")
    args = parser.parse_args(argv)
    if args.gl:
        os.environ["RADVIEW_GL_WINDOW"] = args.gl

    from vtkmodules.vtkRenderingCore import vtkRenderer

    from viewer.core.demo import chest_phantom
    from viewer.core.geometry import VolumeGeometry
    from viewer.core.volume import Volume
    from viewer.render.offscreen import offscreen_window, window_class_name
    from viewer.render.slice_view import SliceView
    from viewer.render.vtk_convert import volume_to_vtk

    t0 = time.perf_counter()
    shape, spacing = (args.slices, 512, 512), (1.0, 0.7, 0.7)
    hu, _ = chest_phantom(shape=shape, spacing=spacing)
    volume = Volume(hu, VolumeGeometry(shape, spacing, (-179.0, -179.0, -300.0)),
                    modality="CT", description="benchmark phantom", window=(-600.0, 1500.0),
                    header={"patient_name": "Bench^Mark", "patient_id": "FPS"})
    print(f"phantom {shape[2]}x{shape[1]}x{shape[0]} built in {time.perf_counter() - t0:.1f} s")

    window = offscreen_window((args.size, args.size))
    renderer = vtkRenderer()
    window.AddRenderer(renderer)
    t0 = time.perf_counter()
    image = volume_to_vtk(volume)
    view = SliceView(renderer, volume, image, "axial")
    view.set_cursor(view.display_to_lps(args.size * 0.4, args.size * 0.6))
    view.show_crosshair(True)
    window.Render()
    window.WaitForCompletion()
    print(f"first frame {time.perf_counter() - t0:.2f} s ({window_class_name()}, "
          f"{args.size}x{args.size} px)")

    def measure(step) -> float:
        for n in range(10):  # warm-up
            step(n)
            window.Render()
        window.WaitForCompletion()
        t = time.perf_counter()
        for n in range(args.frames):
            step(n)
            window.Render()
            window.WaitForCompletion()
        return args.frames / (time.perf_counter() - t)

    count = view.slice_count()

    def scroll(n: int) -> None:
        view.scroll(1 if (n // (count - 1)) % 2 == 0 else -1)

    def drag_window(n: int) -> None:
        view.set_window(-600 + 3 * (n % 100), 1500 + 10 * (n % 50))

    view.set_slice_lps(volume.geometry.index_to_lps((0, 256, 256)))  # from the bottom
    results = {"scroll (1 slice/frame)": measure(scroll), "window/level drag": measure(drag_window)}
    view.zoom(3.0)
    results["scroll, zoomed 3x"] = measure(scroll)
    for name, fps in results.items():
        verdict = "ok" if fps >= 60 else "BELOW TARGET"
        print(f"{name:<24} {fps:7.1f} frames/s  (target >= 60: {verdict})")
    view.close()
    window.Finalize()
    return 0


if __name__ == "__main__":
    sys.exit(main())
