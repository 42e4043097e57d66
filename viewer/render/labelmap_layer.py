"""Label maps (segmentation masks) over the image of a SliceView: fill and outline.

Frames: like the image, the labels live in patient LPS millimetres. :class:`LabelImage` is
the one ``vtkImageData`` per :class:`~viewer.core.labelmap.LabelMap` that *shares*
``labelmap.labels`` (no copy, ever), with the label map's own geometry (origin, spacing,
direction: oblique, reversed and left-handed grids are honoured); every view showing that
label map uses the same one (``LabelImage.of(labelmap)``).

:class:`LabelMapLayer` draws it in one :class:`~viewer.render.slice_view.SliceView`. Just
before a render, and only when the camera, the slice, the style or the labels in the shown
plane changed, it

1. resamples the labels on the screen's own pixel grid in the view plane
   (``vtkImageReslice``, nearest neighbour, matrices built from the label geometry: each
   screen pixel shows the label of the voxel its centre lies in, as the image does);
2. colours them with a 256-entry RGBA table from the segment table (one numpy gather):
   fill alpha = ``segment.opacity x layer opacity``; label 0 and hidden segments
   transparent;
3. marks the outline: a pixel whose 4 neighbours hold another label, drawn solid (alpha
   ``min(1, 2 x segment.opacity) x layer opacity``: the default segment opacity 0.5 gives
   Slicer's 50 % fill with an opaque outline), one screen pixel wide at any zoom.

The RGBA picture is a one-slice image lying in the view plane, lifted a hundredth of a
screen pixel toward the camera so that it is drawn over the image (and over a CAM heatmap
layer) without depth fighting; with the parallel projection of slice views the lift moves
nothing on screen. Cost per
update: one reslice of the viewport's pixels plus a few numpy passes (a few ms at 512^2,
see benchmarks/labelmap_render.py); nothing is done for renders where nothing changed.

Edits: ``labelmap.changed(bbox)`` marks the shared data modified and, when ``bbox`` meets
the shown plane, asks the view for a render (``SliceView.request_render``); the layer never
renders itself.
"""

from __future__ import annotations

import weakref

import numpy as np
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkCommonMath import vtkMatrix4x4
from vtkmodules.vtkImagingCore import vtkImageReslice
from vtkmodules.vtkRenderingCore import vtkImageProperty, vtkImageSlice, vtkImageSliceMapper

from viewer.core.labelmap import BBox, LabelMap, Segment, segment_for
from viewer.render.vtk_convert import geometry_to_vtk

__all__ = ["LabelImage", "LabelMapLayer", "segment_rgba"]

#: the picture is drawn this many screen pixels toward the camera (over the image plane)
LIFT_PX = 0.01


def segment_rgba(
    segments: dict[int, Segment], opacity: float = 1.0, outline: bool = False
) -> np.ndarray:
    """(256, 4) uint8 RGBA per label value: label 0 and hidden segments fully transparent.

    opacity: the layer's global opacity (0..1), multiplied into every alpha.
    outline: alphas for the outline (``min(1, 2 x segment.opacity)``) instead of the fill
    (``segment.opacity``). Labels without a segment entry get a palette colour at the
    default opacity, so voxels are never silently invisible.
    """
    rgba = np.zeros((256, 4), dtype=np.float64)
    for value in range(1, 256):
        seg = segments.get(value)
        if seg is None:
            seg = segment_for(f"segment {value}", value)
        if not seg.visible:
            continue
        alpha = float(seg.opacity)
        alpha = min(1.0, 2.0 * alpha) if outline else alpha
        rgba[value, :3] = seg.color
        rgba[value, 3] = 255.0 * min(max(alpha * opacity, 0.0), 1.0)
    return np.round(rgba).astype(np.uint8)


class LabelImage:
    """The shared vtkImageData of one LabelMap (see the module docstring).

    image: LPS geometry of the label map, scalars = ``labelmap.labels`` (shared buffer).
    index_image: the same scalars on an index grid (origin 0, spacing 1, no direction), for
    resampling with matrices that include the geometry (see :class:`LabelMapLayer`).
    """

    _shared: weakref.WeakValueDictionary[int, LabelImage] = weakref.WeakValueDictionary()

    @classmethod
    def of(cls, labelmap: LabelMap) -> LabelImage:
        """The one LabelImage of ``labelmap`` (made on first use, kept while a view uses it)."""
        found = cls._shared.get(id(labelmap))
        if found is None or found.labelmap is not labelmap:
            found = cls(labelmap)
            cls._shared[id(labelmap)] = found
        return found

    def __init__(self, labelmap: LabelMap):
        self.labelmap = labelmap
        geometry = labelmap.geometry
        self.image = geometry_to_vtk(geometry, vtkImageData())
        self.index_image = vtkImageData()
        self.index_image.SetDimensions(*geometry.size_xyz)
        # index (i, j, k) -> LPS mm, and back
        self.ijk_to_lps = np.asarray(geometry.ijk_to_lps_matrix(), dtype=float)
        self.lps_to_ijk = np.linalg.inv(self.ijk_to_lps)
        n = [s - 0.5 for s in geometry.size_xyz]  # outer corners (voxel edges)
        edges = np.array(
            [[i, j, k, 1.0] for i in (-0.5, n[0]) for j in (-0.5, n[1]) for k in (-0.5, n[2])]
        )
        self.corners_lps = (edges @ self.ijk_to_lps.T)[:, :3]
        self.array: np.ndarray | None = None
        self.sync()

    def sync(self) -> None:
        """Point VTK at ``labelmap.labels`` again if the array object was replaced."""
        labels = self.labelmap.labels
        if labels is self.array:
            return
        if labels.dtype != np.uint8 or not labels.flags.c_contiguous:
            raise ValueError("label maps must be C-contiguous uint8 arrays")
        self.array = labels
        scalars = numpy_to_vtk(labels.reshape(-1), deep=0)
        scalars.SetName("labels")
        self.scalars = scalars
        self.image.GetPointData().SetScalars(scalars)
        self.index_image.GetPointData().SetScalars(scalars)

    def modified(self) -> None:
        """Tell VTK the shared voxels changed (cheap: only the shown slices are resliced)."""
        self.sync()
        self.scalars.Modified()
        self.image.Modified()
        self.index_image.Modified()

    def bbox_range_along(self, bbox: BBox | None, normal) -> tuple[float, float]:
        """(lo, hi) mm along ``normal`` covered by the voxels of ``bbox`` (None: all)."""
        shape = self.labelmap.labels.shape
        (k0, k1), (j0, j1), (i0, i1) = bbox if bbox is not None else [(0, n) for n in shape]
        corners = np.array(
            [
                [i, j, k, 1.0]
                for i in (i0 - 0.5, i1 - 0.5)
                for j in (j0 - 0.5, j1 - 0.5)
                for k in (k0 - 0.5, k1 - 0.5)
            ]
        )
        along = (corners @ self.ijk_to_lps.T)[:, :3] @ np.asarray(normal, dtype=float)
        return float(along.min()), float(along.max())


class LabelMapLayer:
    """The label map shown over one SliceView's image (fill and/or outline).

    Use: ``layer = LabelMapLayer(view); layer.set_labelmap(labelmap)``; edits of the label
    map then show up by themselves (through ``view.request_render``).
    ``set_labelmap(None)`` takes it away, :meth:`close` for good. Style: :meth:`set_fill`,
    :meth:`set_outline`, :meth:`set_opacity` (global 0..1, multiplies the segments' own
    opacities), :meth:`set_visible` (the show/hide toggle).
    """

    def __init__(self, view, *, fill: bool = True, outline: bool = True, opacity: float = 1.0):
        self.view = view
        self.labelmap: LabelMap | None = None
        self.source: LabelImage | None = None
        self.fill, self.outline = bool(fill), bool(outline)
        self.opacity = min(max(float(opacity), 0.0), 1.0)
        self.visible = True

        self.reslice = vtkImageReslice()
        self.reslice.SetInterpolationModeToNearestNeighbor()
        self.reslice.SetBackgroundLevel(0.0)
        self.reslice.SetOutputDimensionality(2)
        self.reslice.AutoCropOutputOff()
        self._axes = vtkMatrix4x4()
        self.picture = vtkImageData()  # RGBA, one slice in the view plane
        mapper = vtkImageSliceMapper()
        mapper.SetInputData(self.picture)
        mapper.BorderOn()  # draw whole pixels up to the picture's edges
        prop = vtkImageProperty()
        prop.SetInterpolationTypeToNearest()
        prop.SetColorWindow(255.0)  # RGBA passes through unchanged
        prop.SetColorLevel(127.5)
        self.actor = vtkImageSlice()
        self.actor.SetMapper(mapper)
        self.actor.SetProperty(prop)
        self.actor.SetPickable(False)
        self._rgba: np.ndarray | None = None  # (h, w) uint32 RGBA of the whole viewport
        self._pixels: np.ndarray | None = None  # the part shown (VTK points at it)
        self._empty = True  # no label pixel on screen: nothing drawn
        self._fill_table = np.zeros(256, np.uint32)
        self._outline_table = np.zeros(256, np.uint32)
        self._key: tuple | None = None
        self._version = 0  # bumped when anything drawn may have changed
        self._observer = view.renderer.AddObserver("StartEvent", self._before_render, -1.0)

    # -- content ---------------------------------------------------------------------------
    def set_labelmap(self, labelmap: LabelMap | None) -> None:
        """Show ``labelmap`` (placed by its own LPS geometry), or nothing (None)."""
        if labelmap is self.labelmap:
            return
        if self.labelmap is not None:
            self.labelmap.unwatch(self._on_changed, self._on_segments_changed)
            self.view.renderer.RemoveViewProp(self.actor)
            self.reslice.RemoveAllInputs()
        self.labelmap, self.source = labelmap, None
        if labelmap is not None:
            self.source = LabelImage.of(labelmap)
            self.reslice.SetInputData(self.source.index_image)
            labelmap.watch(self._on_changed, self._on_segments_changed)
            self._apply_tables()
            self.view.renderer.AddViewProp(self.actor)
        self._touch()

    def close(self) -> None:
        """Take the layer out of the view and stop listening."""
        self.set_labelmap(None)
        self.view.renderer.RemoveObserver(self._observer)

    # -- style -----------------------------------------------------------------------------
    def set_fill(self, on: bool) -> None:
        """Fill the segments (alpha = segment opacity x layer opacity)."""
        self.fill = bool(on)
        self._touch()

    def set_outline(self, on: bool) -> None:
        """Draw the segments' outlines in the shown plane (one screen pixel, solid)."""
        self.outline = bool(on)
        self._touch()

    def set_opacity(self, opacity: float) -> None:
        """Global opacity 0..1 of the whole layer (multiplies the segments' opacities)."""
        self.opacity = min(max(float(opacity), 0.0), 1.0)
        self._apply_tables()
        self._touch()

    def set_visible(self, visible: bool) -> None:
        """Show or hide the whole label map (the toggle)."""
        self.visible = bool(visible)
        self._touch()

    def _touch(self) -> None:
        self._version += 1
        self.view.request_render()

    def _apply_tables(self) -> None:
        if self.labelmap is not None:
            segments = self.labelmap.segments
            self._fill_table = segment_rgba(segments, self.opacity).view(np.uint32).ravel()
            self._outline_table = (
                segment_rgba(segments, self.opacity, outline=True).view(np.uint32).ravel()
            )

    # -- model signals ---------------------------------------------------------------------
    def _on_changed(self, bbox: BBox | None) -> None:
        if self.source is None:
            return
        self.source.modified()
        lo, hi = self.source.bbox_range_along(bbox, self.view.plane.normal)
        if lo - 1e-3 <= self.view.slice_position_mm() <= hi + 1e-3:
            self._touch()

    def _on_segments_changed(self) -> None:
        self._apply_tables()
        self._touch()

    # -- drawing ---------------------------------------------------------------------------
    def _before_render(self, _caller=None, _event=None) -> None:
        show = self.source is not None and self.visible and (self.fill or self.outline)
        if show:
            w, h = self.view._viewport_size()
            cam = self.view.camera
            key = (w, h, cam.GetFocalPoint(), cam.GetParallelScale(), self._version)
            if key != self._key:
                self._key = key
                self._update_picture(w, h)
        show = show and not self._empty
        if self.actor.GetVisibility() != show:
            self.actor.SetVisibility(show)

    def resample(self, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
        """The labels at the centres of the viewport's pixels that the label volume covers.

        Returns ``(cut, first)``: ``cut`` (rows, columns) uint8, row 0 at the bottom, over
        the viewport's pixels within the label volume's projected bounds (plus one pixel
        of background all round; empty when the volume is off screen); ``first`` the LPS
        position (mm) of the centre of ``cut``'s pixel (0, 0).
        """
        view, source = self.view, self.source
        mpp = view.mm_per_pixel()
        right = np.asarray(view.plane.right, dtype=float)
        up = np.asarray(view.plane.up, dtype=float)
        origin = view.display_to_lps(*view.renderer.GetOrigin())  # viewport's corner
        d = source.corners_lps - origin
        xs, ys = d @ right / mpp, d @ up / mpp  # viewport pixel units
        x0, x1 = max(int(np.floor(xs.min())) - 1, 0), min(int(np.ceil(xs.max())) + 1, w)
        y0, y1 = max(int(np.floor(ys.min())) - 1, 0), min(int(np.ceil(ys.max())) + 1, h)
        first = origin + (x0 + 0.5) * mpp * right + (y0 + 0.5) * mpp * up
        if x1 <= x0 or y1 <= y0:
            return np.zeros((0, 0), np.uint8), first
        # output pixel (x, y) -> LPS first + x mpp right + y mpp up -> label index (i, j, k)
        axes = np.eye(4)
        axes[:3, 0], axes[:3, 1], axes[:3, 2] = right * mpp, up * mpp, np.cross(right, up)
        axes[:3, 3] = first
        self._axes.DeepCopy((source.lps_to_ijk @ axes).reshape(-1))
        self.reslice.SetResliceAxes(self._axes)
        self.reslice.SetOutputOrigin(0.0, 0.0, 0.0)
        self.reslice.SetOutputSpacing(1.0, 1.0, 1.0)
        self.reslice.SetOutputExtent(0, x1 - x0 - 1, 0, y1 - y0 - 1, 0, 0)
        self.reslice.Modified()
        self.reslice.Update()
        scalars = self.reslice.GetOutput().GetPointData().GetScalars()
        return vtk_to_numpy(scalars).reshape(y1 - y0, x1 - x0), first

    def _update_picture(self, w: int, h: int) -> None:
        """Resample, colour and outline the labels of the shown plane (see module doc)."""
        cut, first = self.resample(w, h)
        self._empty = cut.size == 0
        if self._empty:
            return
        h, w = cut.shape
        if self._rgba is None or self._rgba.shape != (h, w):
            self._rgba = np.zeros((h, w), dtype=np.uint32)
        rgba = self._rgba
        if self.fill:
            np.take(self._fill_table, cut, out=rgba)
        else:
            rgba.fill(0)
        if self.outline:
            edge = np.zeros((h, w), dtype=bool)
            diff = cut[:, 1:] != cut[:, :-1]
            edge[:, 1:] |= diff
            edge[:, :-1] |= diff
            diff = cut[1:, :] != cut[:-1, :]
            edge[1:, :] |= diff
            edge[:-1, :] |= diff
            rgba[edge] = self._outline_table[cut[edge]]
        # upload and blend only the part of the screen that shows labels
        rows = np.flatnonzero(rgba.any(axis=1))
        self._empty = rows.size == 0
        if self._empty:
            return
        cols = np.flatnonzero(rgba[rows[0] : rows[-1] + 1].any(axis=0))
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        self._pixels = np.ascontiguousarray(rgba[r0:r1, c0:c1])
        scalars = numpy_to_vtk(self._pixels.view(np.uint8).reshape(-1, 4), deep=0)
        scalars.SetName("rgba")
        view = self.view
        right = np.asarray(view.plane.right, dtype=float)
        up = np.asarray(view.plane.up, dtype=float)
        mpp = view.mm_per_pixel()
        self.picture.SetDimensions(c1 - c0, r1 - r0, 1)
        self.picture.GetPointData().SetScalars(scalars)
        lift = -LIFT_PX * mpp * np.asarray(view.plane.dop, dtype=float)
        self.picture.SetOrigin(*(first + c0 * mpp * right + r0 * mpp * up + lift))
        self.picture.SetSpacing(mpp, mpp, 1.0)
        self.picture.SetDirectionMatrix(*np.column_stack([right, up, np.cross(right, up)]).ravel())
        self.picture.Modified()
