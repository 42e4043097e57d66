"""VTK pipelines: slice views, linked MPR views, overlays, volume rendering, offscreen PNGs.

No Qt here. World coordinates are patient LPS millimetres everywhere (the image's direction
matrix carries the orientation), and the radiological display flips live only here.
Modules: ``vtk_convert`` (Volume -> vtkImageData), ``view_plane`` (screen axes per
orientation), ``slice_view`` (SliceView), ``overlays``, ``annotations``, ``mpr`` (MprViews),
``volume_view`` (VolumeView), ``luts``, ``offscreen`` (headless windows and PNGs).
"""
