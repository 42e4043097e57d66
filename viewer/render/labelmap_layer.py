"""Label maps (segmentation masks) over the image of a SliceView: fill and outline.

Frames: like the image, the labels live in patient LPS millimetres. :class:`LabelImage` is
one ``vtkImageData`` per :class:`~viewer.core.labelmap.LabelMap` that *shares*
``labelmap.labels`` (no copy, ever), with the label map's own geometry (origin, spacing,
direction: oblique, reversed and left-handed grids are honoured); every view showing that
label map uses the same one (``LabelImage.of(labelmap)``).

:class:`LabelMapLayer` draws it in one :class:`~viewer.render.slice_view.SliceView`:

* fill: a ``vtkImageResliceMapper`` cuts the shared label image at the view's plane (nearest
  neighbour), coloured by a 256-entry lookup table built from the segment table: label 0
  and hidden segments transparent, alpha = ``segment.opacity x layer opacity``;
* outline: the labels are resampled on the screen's own pixel grid (``vtkImageReslice``,
  nearest neighbour) and a pixel is outline when one of its 4 neighbours holds another
  label; it is drawn solid (alpha = ``min(1, 2 x segment.opacity) x layer opacity``: the
  default segment opacity 0.5 gives Slicer's 50 % fill with an opaque outline), one screen
  pixel wide at any zoom. It is recomputed only when the camera, the slice or the labels
  in the shown plane change, just before a render.

Both go into the view's image stack (``SliceView.add_layer``), so they sit on the image
without depth fighting. Edits: ``labelmap.changed(bbox)`` marks the shared data modified
(one ``Modified()``; the next render reslices one slice) and, when ``bbox`` meets the shown
plane, asks the view for a render (``SliceView.request_render``); it never renders itself.
"""

from __future__ import annotations

import weakref

import numpy as np
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
from vtkmodules.vtkCommonCore import vtkLookupTable
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkCommonMath import vtkMatrix4x4
from vtkmodules.vtkImagingCore import vtkImageReslice
from vtkmodules.vtkRenderingCore import vtkImageProperty, vtkImageSlice, vtkImageSliceMapper
from vtkmodules.vtkRenderingImage import vtkImageResliceMapper

from viewer.core.labelmap import BBox, LabelMap, Segment, segment_for
from viewer.render.vtk_convert import geometry_to_vtk

__all__ = ["LabelImage", "LabelMapLayer", "label_lut", "segment_rgba"]

FILL_LAYER = 1
OUTLINE_LAYER = 2


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


def label_lut(
    segments: dict[int, Segment],
    opacity: float = 1.0,
    outline: bool = False,
    lut: vtkLookupTable | None = None,
) -> vtkLookupTable:
    """A vtkLookupTable mapping label value v to entry v (see :func:`segment_rgba`)."""
    lut = lut if lut is not None else vtkLookupTable()
    table = numpy_to_vtk(segment_rgba(segments, opacity, outline), deep=1)
    lut.SetNumberOfTableValues(256)
    lut.SetTableRange(-0.5, 255.5)  # value v -> entry v exactly
    lut.SetTable(table)
    lut.Modified()
    return lut


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


def _image_slice(mapper) -> tuple[vtkImageSlice, vtkImageProperty]:
    prop = vtkImageProperty()
    prop.SetInterpolationTypeToNearest()
    prop.UseLookupTableScalarRangeOn()
    actor = vtkImageSlice()
    actor.SetMapper(mapper)
    actor.SetProperty(prop)
    actor.SetPickable(False)
    return actor, prop


class LabelMapLayer:
    """The label map shown over one SliceView's image (fill and/or outline).

    Use: ``layer = LabelMapLayer(view); layer.set_labelmap(labelmap)``; then edits of the
    label map show up by themselves (through ``view.request_render``). ``set_labelmap(None)``
    takes it away. Style: :meth:`set_fill`, :meth:`set_outline`, :meth:`set_opacity`
    (global, 0..1, multiplies the segments' own opacities), :meth:`set_visible`.
    """

    def __init__(self, view, *, fill: bool = True, outline: bool = True, opacity: float = 1.0):
        self.view = view
        self.labelmap: LabelMap | None = None
        self.source: LabelImage | None = None
        self.fill, self.outline = bool(fill), bool(outline)
        self.opacity = float(opacity)
        self.visible = True

        self.fill_mapper = vtkImageResliceMapper()
        self.fill_mapper.SliceFacesCameraOn()
        self.fill_mapper.SliceAtFocalPointOn()
        self.fill_actor, self.fill_property = _image_slice(self.fill_mapper)
        self.fill_lut = vtkLookupTable()
        self.fill_property.SetLookupTable(self.fill_lut)

        # the outline: labels resampled on the screen's pixels, edges kept, drawn as a
        # one-slice image lying in the view plane (direction = right, up, normal)
        self.reslice = vtkImageReslice()
        self.reslice.SetInterpolationModeToNearestNeighbor()
        self.reslice.SetBackgroundLevel(0.0)
        self.reslice.SetOutputDimensionality(2)
        self.reslice.AutoCropOutputOff()
        self.outline_image = vtkImageData()
        self.outline_mapper = vtkImageSliceMapper()
        self.outline_mapper.SetInputData(self.outline_image)
        self.outline_actor, self.outline_property = _image_slice(self.outline_mapper)
        self.outline_lut = vtkLookupTable()
        self.outline_property.SetLookupTable(self.outline_lut)
        self._outline_buffer: np.ndarray | None = None
        self._outline_key: tuple | None = None
        self._version = 0  # bumped when labels in the shown plane change

        self._observer = view.renderer.AddObserver("StartEvent", self._before_render, -1.0)

    # -- content ---------------------------------------------------------------------------
    def set_labelmap(self, labelmap: LabelMap | None) -> None:
        """Show ``labelmap`` (any geometry: it is placed by its own LPS geometry), or none."""
        if labelmap is self.labelmap:
            return
        if self.labelmap is not None:
            for signal, slot in (
                (self.labelmap.changed, self._on_changed),
                (self.labelmap.segments_changed, self._on_segments_changed),
            ):
                try:
                    signal.disconnect(slot)
                except ValueError:
                    pass
            self.view.remove_layer(self.fill_actor)
            self.view.remove_layer(self.outline_actor)
            self.reslice.RemoveAllInputs()
            self.fill_mapper.RemoveAllInputs()
        self.labelmap, self.source = labelmap, None
        self._outline_key = None
        if labelmap is None:
            self.view.request_render()
            return
        self.source = LabelImage.of(labelmap)
        self.fill_mapper.SetInputData(self.source.image)
        self.reslice.SetInputData(self.source.index_image)
        labelmap.changed.connect(self._on_changed)
        labelmap.segments_changed.connect(self._on_segments_changed)
        self._apply_luts()
        self._apply_visibility()
        self.view.add_layer(self.fill_actor, FILL_LAYER)
        self.view.add_layer(self.outline_actor, OUTLINE_LAYER)
        self.view.request_render()

    def close(self) -> None:
        """Take the layer out of the view (and stop listening)."""
        self.set_labelmap(None)
        self.view.renderer.RemoveObserver(self._observer)

    # -- style -----------------------------------------------------------------------------
    def set_fill(self, on: bool) -> None:
        """Fill the segments (alpha = segment opacity x layer opacity)."""
        self.fill = bool(on)
        self._apply_visibility()

    def set_outline(self, on: bool) -> None:
        """Draw the segments' outlines in the shown plane (one screen pixel, solid)."""
        self.outline = bool(on)
        self._outline_key = None
        self._apply_visibility()

    def set_opacity(self, opacity: float) -> None:
        """Global opacity 0..1 of the whole layer (multiplies the segments' opacities)."""
        self.opacity = min(max(float(opacity), 0.0), 1.0)
        self._apply_luts()
        self.view.request_render()

    def set_visible(self, visible: bool) -> None:
        """Show or hide the whole label map (the toggle; nothing is recomputed)."""
        self.visible = bool(visible)
        self._apply_visibility()

    def _apply_visibility(self) -> None:
        self.fill_actor.SetVisibility(self.visible and self.fill)
        self.outline_actor.SetVisibility(self.visible and self.outline)
        self.view.request_render()

    def _apply_luts(self) -> None:
        if self.labelmap is None:
            return
        segments = self.labelmap.segments
        label_lut(segments, self.opacity, False, self.fill_lut)
        label_lut(segments, self.opacity, True, self.outline_lut)

    # -- model signals ---------------------------------------------------------------------
    def _on_changed(self, bbox: BBox | None) -> None:
        if self.source is None:
            return
        self.source.modified()
        lo, hi = self.source.bbox_range_along(bbox, self.view.plane.normal)
        position = self.view.slice_position_mm()
        if lo - 1e-3 <= position <= hi + 1e-3:
            self._version += 1
            self.view.request_render()

    def _on_segments_changed(self) -> None:
        self._apply_luts()
        self.view.request_render()

    # -- outline ---------------------------------------------------------------------------
    def _before_render(self, _caller=None, _event=None) -> None:
        if self.source is None:
            return
        view = self.view
        self.fill_mapper.SetResampleToScreenPixels(view.mapper.GetResampleToScreenPixels())
        if not (self.visible and self.outline):
            return
        w, h = view._viewport_size()
        cam = view.camera
        key = (
            w,
            h,
            cam.GetFocalPoint(),
            cam.GetParallelScale(),
            self._version,
            id(self.source.array),
        )
        if key != self._outline_key:
            self._outline_key = key
            self._update_outline(w, h)

    def _update_outline(self, w: int, h: int) -> None:
        """Resample the labels on the screen's pixels and keep the 4-neighbour edges."""
        view, source = self.view, self.source
        mpp = view.mm_per_pixel()
        ox, oy = view.renderer.GetOrigin()
        right = np.asarray(view.plane.right, dtype=float)
        up = np.asarray(view.plane.up, dtype=float)
        normal = np.cross(right, up)
        first = view.display_to_lps(ox + 0.5, oy + 0.5)  # centre of the bottom-left pixel
        # output pixel (x, y) -> LPS first + x mpp right + y mpp up -> label index (i, j, k)
        axes = np.eye(4)
        axes[:3, 0], axes[:3, 1], axes[:3, 2] = right * mpp, up * mpp, normal
        axes[:3, 3] = first
        axes = source.lps_to_ijk @ axes
        matrix = vtkMatrix4x4()
        matrix.DeepCopy(axes.reshape(-1))
        self.reslice.SetResliceAxes(matrix)
        self.reslice.SetOutputOrigin(0.0, 0.0, 0.0)
        self.reslice.SetOutputSpacing(1.0, 1.0, 1.0)
        self.reslice.SetOutputExtent(0, w - 1, 0, h - 1, 0, 0)
        self.reslice.Update()
        cut = vtk_to_numpy(self.reslice.GetOutput().GetPointData().GetScalars()).reshape(h, w)

        if self._outline_buffer is None or self._outline_buffer.shape != (h, w):
            self._outline_buffer = np.zeros((h, w), dtype=np.uint8)
            scalars = numpy_to_vtk(self._outline_buffer.reshape(-1), deep=0)
            scalars.SetName("outline")
            self.outline_image.SetDimensions(w, h, 1)
            self.outline_image.GetPointData().SetScalars(scalars)
        edge = np.zeros((h, w), dtype=bool)
        diff = cut[:, 1:] != cut[:, :-1]
        edge[:, 1:] |= diff
        edge[:, :-1] |= diff
        diff = cut[1:, :] != cut[:-1, :]
        edge[1:, :] |= diff
        edge[:-1, :] |= diff
        np.multiply(cut, edge, out=self._outline_buffer)
        self.outline_image.SetOrigin(*first)
        self.outline_image.SetSpacing(mpp, mpp, 1.0)
        self.outline_image.SetDirectionMatrix(*np.column_stack([right, up, normal]).reshape(-1))
        self.outline_image.GetPointData().GetScalars().Modified()
        self.outline_image.Modified()
