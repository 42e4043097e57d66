"""Model trust in the viewer: which models need trust and why, and the user's decision.

The logic is :mod:`ai.trust` (hashing and parsing, no TensorFlow; the same calls as
``radview models ...``); this module only shows it:

- :class:`ModelTrustDialog`: one model's files, sha256s, custom classes and Lambda layers,
  and the risk in plain words (its code will run on this computer). ``Cancel`` is the
  default button; ``Trust this model`` records the trust.
- :class:`ModelsDialog`: every installed model (name, version, task, source, trust,
  integrity) with the reason for the selected one, and Trust…/Untrust buttons.
- :class:`TrustGate`: what the AI controller asks before a run: a usable model runs at
  once; a model that needs trust opens the dialog (the run goes on if the user trusts it);
  an unusable one is refused with its one-line reason.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

COLUMNS = ("Name", "Version", "Task", "Source", "Trust", "Integrity")


def model_label(spec, check=None) -> str:
    """``"name version"`` for a model list or menu, with `` — needs trust`` or
    `` — cannot be used`` when its :class:`ai.trust.ModelCheck` says so."""
    label = f"{spec.name} {spec.version}"
    if check is not None and check.trust == "needs-trust" and check.integrity == "ok":
        return label + " \u2014 needs trust"
    if check is not None and not check.usable:
        return label + " \u2014 cannot be used"
    return label


def risk_text(check) -> str:
    """The risk of trusting ``check``'s model, in plain words (what will run, where)."""
    spec = check.spec
    what = []
    if spec.custom_code is not None:
        what.append(f"the Python file {spec.custom_code.file} (classes {', '.join(check.classes)})")
    if check.lambda_layers:
        what.append(
            f"the Lambda layers {', '.join(check.lambda_layers)} stored in {spec.weights_file}"
        )
    return (
        f"Trusting this model lets it run its own program code on this computer, with your "
        f"permissions, every time it loads: {' and '.join(what)}. radview cannot check what "
        "that code does: it could read, change or send your files. Trust it only if you know "
        "and trust where the model comes from. Changing the weights or the code revokes "
        "the trust."
    )


class ModelTrustDialog(QDialog):
    """Asks the user to trust one model (``check``: an :class:`ai.trust.ModelCheck` that
    needs trust). Accepted: the caller records the trust."""

    def __init__(self, check, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.check = check
        spec = check.spec
        self.setWindowTitle(f"Trust model {spec.name}?")
        layout = QVBoxLayout(self)
        title = QLabel(
            f"<b>{spec.name} {spec.version}</b> ({check.source} model) needs your "
            "trust before it can run."
        )
        title.setWordWrap(True)
        layout.addWidget(title)
        from ai.trust import trust_details

        rows = [f"Folder: {spec.folder}"]
        rows += [f"{label[0].upper()}{label[1:]}: {value}" for label, value in trust_details(check)]
        self.details = QLabel("\n".join(rows))
        self.details.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.details.setWordWrap(True)
        layout.addWidget(self.details)
        self.risk = QLabel(risk_text(check))
        self.risk.setObjectName("trust-risk")
        self.risk.setWordWrap(True)
        self.risk.setStyleSheet("color: #b00020;")
        layout.addWidget(self.risk)
        buttons = QDialogButtonBox(self)
        self.trust_button = buttons.addButton("Trust this model", QDialogButtonBox.AcceptRole)
        self.cancel_button = buttons.addButton(QDialogButtonBox.Cancel)
        self.cancel_button.setDefault(True)
        self.trust_button.setAutoDefault(False)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(640, 320)


class ModelsDialog(QDialog):
    """Every model with its trust and integrity; trust or untrust the selected one.

    ``gate`` is the :class:`TrustGate` (it reads the registry and records decisions)."""

    def __init__(self, gate: TrustGate, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.gate = gate
        self.setWindowTitle("Models")
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        layout.addWidget(self.table)
        self.reason = QLabel("")
        self.reason.setWordWrap(True)
        self.reason.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(self.reason)
        row = QHBoxLayout()
        self.trust_button = QPushButton("Trust\u2026")
        self.untrust_button = QPushButton("Untrust")
        close = QPushButton("Close")
        row.addWidget(self.trust_button)
        row.addWidget(self.untrust_button)
        row.addStretch(1)
        row.addWidget(close)
        layout.addLayout(row)
        self.trust_button.clicked.connect(self._trust)
        self.untrust_button.clicked.connect(self._untrust)
        close.clicked.connect(self.accept)
        self.table.itemSelectionChanged.connect(self._selected)
        self.checks: list = []
        self.refresh()
        self.resize(760, 380)

    def refresh(self) -> None:
        current = self.current().name if self.current() is not None else None
        self.checks = self.gate.all_checks()
        self.table.setRowCount(len(self.checks))
        for r, c in enumerate(self.checks):
            for col, value in enumerate(
                (c.name, c.version, c.task, c.source, c.trust, c.integrity)
            ):
                item = QTableWidgetItem(value)
                item.setToolTip(c.problem)
                self.table.setItem(r, col, item)
            if c.name == current:
                self.table.selectRow(r)
        self.table.resizeColumnsToContents()
        self._selected()

    def current(self):
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return self.checks[rows[0].row()] if rows and rows[0].row() < len(self.checks) else None

    def select(self, name: str) -> None:
        for r, c in enumerate(self.checks):
            if c.name == name:
                self.table.selectRow(r)

    def _selected(self) -> None:
        c = self.current()
        self.reason.setText(c.problem if c is not None else "")
        self.trust_button.setEnabled(
            c is not None and c.trust == "needs-trust" and c.integrity == "ok"
        )
        self.untrust_button.setEnabled(c is not None and c.trust == "trusted")

    def _trust(self) -> None:
        c = self.current()
        if c is not None:
            self.gate.ask(c)  # the gate's ``changed`` refreshes this table

    def _untrust(self) -> None:
        c = self.current()
        if c is not None:
            self.gate.untrust(c.name)
            self.refresh()


class TrustGate(QObject):
    """The viewer's trust decisions. ``registry()`` returns the AI controller's registry;
    ``changed`` is emitted after the user trusts or untrusts a model."""

    changed = Signal()

    def __init__(self, parent: QWidget, registry: Callable[[], object], store=None) -> None:
        super().__init__(parent)
        self.parent_widget = parent
        self.registry = registry
        self.store = store  # ai.trust.TrustStore; None: the user's (read at each use)
        self.dialog: ModelTrustDialog | None = None
        self.models_dialog: ModelsDialog | None = None

    def _store(self):
        from ai.trust import TrustStore

        return self.store or TrustStore()

    def all_checks(self) -> list:
        """Every model's :class:`ai.trust.ModelCheck` (bad model.json folders too)."""
        from ai.trust import check_registry

        return check_registry(self.registry(), self._store())

    def label(self, spec) -> str:
        """A model's name and version for a menu, marked when it needs trust or cannot be
        used (for the Segmentation > Run model menu)."""
        from ai.trust import check_model

        registry = self.registry()
        return model_label(spec, check_model(spec, registry.source(spec), self._store()))

    def checks(self, task: str | None = None) -> dict:
        """name -> ModelCheck of the usable specs (of ``task``), for the model lists."""
        from ai.trust import check_model

        registry = self.registry()
        store = self._store()
        return {
            s.name: check_model(s, registry.source(s), store) for s in registry.list_models(task)
        }

    def ready(
        self, name: str, then: Callable[[], None], refused: Callable[[str], None] | None = None
    ) -> bool:
        """True when model ``name`` may run now. Otherwise False: a model that needs trust
        opens :class:`ModelTrustDialog` (``then()`` runs once the user trusts it); an
        unusable one calls ``refused(reason)`` (one line)."""
        from ai.trust import NEEDS_TRUST, check_model

        registry = self.registry()
        try:
            spec = registry.get(name)
        except LookupError as exc:
            if refused is not None:
                refused(str(exc))
            return False
        check = check_model(spec, registry.source(spec), self._store())
        if check.usable:
            return True
        if check.trust == NEEDS_TRUST and check.integrity == "ok":
            self.ask(check, on_trusted=then)
        elif refused is not None:
            refused(f"model {name!r} cannot be used: {check.problem}")
        return False

    def ask(self, check, on_trusted: Callable[[], None] | None = None) -> ModelTrustDialog:
        """Open the trust dialog for ``check`` (window-modal; returns at once)."""
        dialog = ModelTrustDialog(check, self.parent_widget)
        dialog.setAttribute(Qt.WA_DeleteOnClose)

        def accepted() -> None:
            from ai.trust import TrustError, trust_model

            try:
                trust_model(check, self._store())
            except TrustError as exc:
                QMessageBox.warning(self.parent_widget, "Model not trusted", str(exc))
                return
            self.changed.emit()
            if on_trusted is not None:
                on_trusted()

        dialog.accepted.connect(accepted)
        dialog.open()
        self.dialog = dialog
        return dialog

    def untrust(self, name: str) -> bool:
        from ai.trust import TrustError

        try:
            removed = self._store().remove(name)
        except TrustError as exc:
            QMessageBox.warning(self.parent_widget, "Trust store", str(exc))
            return False
        self.changed.emit()
        return removed

    def show_models(self) -> ModelsDialog:
        """Open (or raise) the models dialog."""
        if self.models_dialog is None:
            self.models_dialog = ModelsDialog(self, self.parent_widget)
            self.changed.connect(self.models_dialog.refresh)
        else:
            self.models_dialog.refresh()
        self.models_dialog.show()
        self.models_dialog.raise_()
        return self.models_dialog
