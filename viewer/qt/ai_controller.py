"""Runs the AI assistant for the viewer: the AI process, results per image, the heatmap.

Inference happens in a separate process (ai.process.AIClient: TensorFlow never enters the
viewer's process, where it would crash beside VTK's OpenGL); the blocking client call runs
on a worker thread, so the GUI never waits. Results are kept per image (series, plane,
model) while the study is open; the CAM of the shown plane is drawn over it.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QFileDialog

from viewer.qt.model_trust import TrustGate
from viewer.render.heatmap import HeatmapLayer


class AIController(QObject):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.panel = window.ai_panel
        self.session = window.session
        self.views = window.views
        self.registry = None  # ai.registry.Registry, made after the window is shown
        self.client = None  # ai.process.client.AIClient, started on the first run
        self.results: dict[tuple[str, int, str], object] = {}
        self.layer: HeatmapLayer | None = None
        self._layer_key: tuple | None = None
        self._task = None
        self.panel.run_requested.connect(self.run)
        self.panel.cancel_requested.connect(self.cancel)
        self.panel.style_changed.connect(self._restyle)
        self.panel.export_requested.connect(self.export_overlay)
        self.trust = TrustGate(window, lambda: self.registry)  # custom code needs the user's OK
        self.panel.models_requested.connect(self.trust.show_models)
        self.trust.changed.connect(self.refresh_models)
        self.session.volume_changed.connect(lambda _v: self._volume_changed())
        self.session.cursor_changed.connect(lambda _c: self.show_current())
        # the ai package (registry, transforms, SimpleITK) loads after the first window
        QTimer.singleShot(0, self.refresh_models)

    def refresh_models(self) -> None:
        from ai.registry import Registry

        if self.registry is None:
            self.registry = Registry()
        else:
            self.registry.rescan()
        self.panel.set_models(
            self.registry.list_models("classification"), self.trust.checks("classification")
        )

    def get_client(self):
        """The viewer's one AIClient (one AI process for classification and segmentation),
        made on first use; the process itself starts with the first request."""
        if self.client is None:
            from ai.process.client import AIClient

            if self.registry is None:
                self.refresh_models()
            self.client = AIClient(self.registry)
        return self.client

    # -- which image ----------------------------------------------------------------------
    def _target(self):
        """(slice view, plane index k) of the image the assistant works on, or (None, -1):
        the radiograph, or the axial slice shown of a CT/MR volume."""
        volume = self.session.volume
        if volume is None:
            return None, -1
        grid = self.views
        vp = grid.viewports["image" if grid._projection() else "axial"]
        view = vp.slice_view
        if view is None:
            return None, -1
        if volume.geometry.shape[0] == 1:
            return view, 0
        if view.axis.array_axis != 0:  # the axial view does not run along k (oblique stack)
            return view, volume.geometry.shape[0] // 2
        return view, view.slice_index()

    def _key(self, k: int, model: str) -> tuple[str, int, str]:
        return (self.session.volume.series_uid, k, model)

    # -- running --------------------------------------------------------------------------
    def run(self, model: str) -> None:
        volume = self.session.volume
        view, k = self._target()
        if volume is None or view is None or not model:
            self.panel.set_busy(False, "Open an image first.")
            return
        if not self.trust.ready(model, lambda: self.run(model), self.panel.status.setText):
            return
        from ai.classify import image_from_volume

        image, meta = image_from_volume(volume, k)
        client = self.get_client()
        where = "this image" if volume.geometry.shape[0] == 1 else f"slice {k + 1}"
        self.panel.set_busy(
            True,
            f"Running {model} on {where} (the first run starts the AI "
            "process and loads the model)\u2026",
        )

        def work(progress, cancelled):  # on a worker thread; the client blocks, not the GUI
            def fraction(f: float, _message: str = "") -> None:
                progress(int(round(100 * f)), 100)

            return client.classify(image, meta, model, fraction, cancelled)

        self._task = self.window.tasks.run(
            work,
            on_finished=lambda pred: self._done(self._key(k, model), pred, where),
            on_failed=self._failed,
            on_progress=self.panel.set_progress,
            on_cancelled=lambda: self.panel.set_busy(False, "Cancelled."),
        )

    def cancel(self) -> None:
        if self.client is not None:
            self.client.cancel()
        if self._task is not None:
            self._task.cancel()

    def _done(self, key, prediction, where: str) -> None:
        self._task = None
        self.results[key] = prediction
        self.panel.set_busy(False)
        self.panel.show_prediction(prediction, where)
        self._layer_key = None
        self.show_current()

    def _failed(self, message: str) -> None:
        self._task = None
        if "Cancelled" in message:
            message = "Cancelled."
        self.panel.set_busy(False, message)

    # -- display --------------------------------------------------------------------------
    def _volume_changed(self) -> None:
        self._drop_layer()
        self.panel.clear_prediction()
        self.show_current()

    def show_current(self) -> None:
        """Show the stored result (bars and heatmap) of the image now on screen, if any."""
        if self.session.volume is None:
            return
        view, k = self._target()
        model = self.panel.model_combo.currentData() or ""
        key = self._key(k, model) if view is not None else None
        prediction = self.results.get(key) if key is not None else None
        if key == self._layer_key:
            return
        self._drop_layer()
        if prediction is None:
            return
        self.panel.show_prediction(prediction)
        if prediction.cam is not None:
            colours, threshold, opacity, visible = self.panel.style()
            self.layer = HeatmapLayer(view, k, prediction.cam, colours, threshold, opacity)
            self.layer.set_visible(visible)
            self._layer_key = key
        self.views.render_all()

    def _drop_layer(self) -> None:
        if self.layer is not None:
            self.layer.remove()
            self.layer = None
        self._layer_key = None

    def _restyle(self, colours: str, threshold: float, opacity: float, visible: bool) -> None:
        if self.layer is not None:
            self.layer.set_style(colours, threshold, opacity)
            self.layer.set_visible(visible)
            self.views.render_all()

    def export_overlay(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self.window, "Export overlay", "radview-cam.png", "PNG image (*.png)"
        )
        if path:
            self.save_overlay(path)

    def save_overlay(self, path: str) -> None:
        """The image view with its heatmap and legend, as shown, to PNG."""
        view, _ = self._target()
        target = self.views.viewports["image" if self.views._projection() else "axial"]
        self.views.set_active(target)
        self.views.screenshot(path, whole_layout=False)

    def shutdown(self) -> None:
        self.cancel()
        if self.client is not None:
            self.client.close()
            self.client = None
