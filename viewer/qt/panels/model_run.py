"""Busy/progress display shared by the panels that run a model (AI assistant, segmentation).

A panel using :class:`ModelRunStatus` has ``model_combo``, ``run_button``, ``cancel_button``,
``progress`` (QProgressBar) and ``status`` (QLabel) widgets.
"""

from __future__ import annotations


class ModelRunStatus:
    """Mixin: Run enabled when idle and a model is listed, Cancel while busy, a busy bar
    (indeterminate until progress arrives) and a one-line status."""

    def set_busy(self, busy: bool, text: str = "") -> None:
        self.run_button.setEnabled(not busy and self.model_combo.count() > 0)
        self.cancel_button.setEnabled(busy)
        self.progress.setVisible(busy)
        if busy:
            self.progress.setRange(0, 0)
        if text or not busy:
            self.status.setText(text)

    def set_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
