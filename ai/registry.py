"""Where models are: the shipped ``resources/models/*/`` and the user's models folder.

Folders searched, in order (a later folder's model replaces a shipped one of the same name,
so a site can install an update without rebuilding the application):

1. ``resources/models`` shipped with the application: beside the ``ai`` package in a source
   checkout, or under ``sys._MEIPASS`` in a PyInstaller bundle;
2. the user models folder: ``$RADVIEW_MODELS`` if set (several folders separated by
   ``os.pathsep``), else ``$XDG_DATA_HOME/radview/models`` (``~/.local/share/radview/models``).

Each model is a folder holding ``model.json`` (see ``resources/models/README.md``). Folders
whose model.json is bad are left out of :meth:`Registry.list_models` and their one-line
problem is kept in :attr:`Registry.problems` (and raised by :meth:`Registry.get`).
The weights' sha256 is checked by :func:`verify_weights` before any loading; a model whose
loading would run code (custom layers, Lambda) also needs the user's trust (:mod:`ai.trust`).
:meth:`Registry.source` says where a model comes from: ``builtin`` (shipped) or ``user``.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ai.model_spec import ModelSpec, ModelSpecError

ENV_MODELS = "RADVIEW_MODELS"


class UnknownModelError(LookupError):
    """No model of that name (the message lists the available ones)."""

    def __str__(self) -> str:  # LookupError would repr() the message
        return str(self.args[0]) if self.args else ""


class ModelUnusableError(UnknownModelError):
    """The model's folder exists but its model.json cannot be used (the message says why)."""


class WeightsError(RuntimeError):
    """The weights file is missing or is not the one model.json names (sha256)."""


def shipped_models_dir() -> Path:
    """``resources/models`` of the running application (source tree or PyInstaller bundle)."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources" / "models"
    return Path(__file__).resolve().parent.parent / "resources" / "models"


def is_shipped(folder: str | Path) -> bool:
    """True when ``folder`` (a model folder) lies in the shipped ``resources/models``."""
    shipped = os.path.realpath(shipped_models_dir())
    return os.path.realpath(os.path.dirname(os.path.abspath(folder))) == shipped


def user_models_dirs() -> list[Path]:
    """``$RADVIEW_MODELS`` (os.pathsep-separated) or ``$XDG_DATA_HOME/radview/models``."""
    env = os.environ.get(ENV_MODELS)
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    base = os.environ.get("XDG_DATA_HOME") or os.path.join("~", ".local", "share")
    return [Path(base).expanduser() / "radview" / "models"]


def default_roots() -> list[Path]:
    return [shipped_models_dir(), *user_models_dirs()]


class Registry:
    """The models found under ``roots`` (scanned when created; call :meth:`rescan` later)."""

    def __init__(self, roots: Sequence[str | Path] | None = None):
        self.roots = [Path(r) for r in (roots if roots is not None else default_roots())]
        self.rescan()

    def rescan(self) -> None:
        self._specs: dict[str, ModelSpec] = {}
        #: model.json path -> one-line problem, for folders that could not be used
        self.problems: dict[str, str] = {}
        for root in self.roots:
            if not root.is_dir():
                continue
            for spec_file in sorted(root.glob("*/model.json")):
                try:
                    spec = ModelSpec.load(spec_file)
                except ModelSpecError as exc:
                    self.problems[str(spec_file)] = str(exc)
                    continue
                self._specs[spec.name] = spec

    def source(self, spec: ModelSpec) -> str:
        """``builtin`` for a model shipped with radview, ``user`` for the others."""
        return "builtin" if is_shipped(spec.folder) else "user"

    def list_models(self, task: str | None = None) -> list[ModelSpec]:
        """Usable models sorted by name (optionally of one task)."""
        specs = sorted(self._specs.values(), key=lambda s: s.name)
        return [s for s in specs if task is None or s.task == task]

    def names(self) -> list[str]:
        return [s.name for s in self.list_models()]

    def get(self, name: str) -> ModelSpec:
        """The model called ``name``; UnknownModelError lists the available ones."""
        spec = self._specs.get(name)
        if spec is not None:
            return spec
        for path, problem in self.problems.items():
            if Path(path).parent.name == name:
                raise ModelUnusableError(f"model {name!r} cannot be used: {problem}")
        available = ", ".join(self.names()) or "none installed"
        raise UnknownModelError(f"unknown model {name!r} (available: {available})")


def list_models(task: str | None = None) -> list[ModelSpec]:
    """The models in the default folders (scanned now)."""
    return Registry().list_models(task)


def get(name: str) -> ModelSpec:
    """The model ``name`` from the default folders (scanned now)."""
    return Registry().get(name)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_weights(spec: ModelSpec) -> Path:
    """Check the weights file against ``spec.weights_sha256``; return its path.

    Raises WeightsError (one line) when the file is missing or differs: such weights are
    never loaded.
    """
    path = spec.weights_path
    if path is None:
        raise WeightsError(f"model {spec.name!r} is a {spec.backend} model: it has no weights")
    if not path.is_file():
        raise WeightsError(f"model {spec.name!r}: weights file {path} is missing")
    actual = sha256_file(path)
    if actual != spec.weights_sha256:
        raise WeightsError(
            f"model {spec.name!r}: weights file {path.name} does not match model.json "
            f"(sha256 {actual[:12]}..., expected {spec.weights_sha256[:12]}...); refusing to load"
        )
    return path
