"""Model trust: which user models may run code on this computer, as the user decided.

A model needs trust when loading it runs Python that is not Keras's own:

- its folder ships custom layer code (``custom_code`` in model.json: a ``.py`` file whose
  classes the weights file references), imported in the AI process when the model loads;
- or its weights file has ``Lambda`` layers, whose Python bytecode is stored in the file and
  runs when Keras deserialises it (``safe_mode=False``). Same risk, same decision.

Such a model is refused (:class:`TrustError`, one line naming the model, the code and how to
trust it) until the user trusts it: ``radview models trust NAME`` or the viewer's trust
dialog. The decision is recorded in the trust store (:func:`trust_store_path`, JSON, written
atomically) under the model's name with the sha256 of its weights AND of its custom code
file: changing either file revokes the trust. Shipped models never need trust (they must use
built-in Keras layers only; a shipped model that does not is refused).

:func:`check_model` / :func:`check_registry` report every model's state without TensorFlow
(hashing and parsing only), for ``radview models list`` and the viewer. :func:`grant` is
what the AI process asks just before loading: it returns the exact code bytes that were
hashed (so what runs is what was trusted) or raises.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from ai.model_file import ModelFileError, ModelFileReport, inspect_model_file
from ai.model_spec import ModelSpec
from ai.registry import Registry, WeightsError, is_shipped, sha256_file

TRUST_FILE = "trusted-models.json"
STORE_FORMAT = 1
#: ModelCheck.trust values
OK, TRUSTED, NEEDS_TRUST, UNUSABLE = "ok", "trusted", "needs-trust", "-"
#: ModelCheck.integrity values besides "ok"
INTEGRITY = ("ok", "missing", "mismatch", "damaged", "refused", "bad-spec")


class TrustError(RuntimeError):
    """The model needs the user's trust (or the trust store cannot be used); one line."""


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/radview`` (default ``~/.config/radview``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join("~", ".config")
    return Path(base).expanduser() / "radview"


def trust_store_path() -> Path:
    return config_dir() / TRUST_FILE


@dataclass(frozen=True)
class TrustRecord:
    """One trusted model: the hashes trusted (``code_sha256`` "" when it has no code file)."""

    name: str
    weights_sha256: str
    code_sha256: str = ""
    code_file: str = ""
    classes: tuple[str, ...] = ()
    lambda_layers: tuple[str, ...] = ()
    folder: str = ""
    trusted_at: str = ""

    def to_json(self) -> dict:
        return {
            "weights_sha256": self.weights_sha256,
            "code_sha256": self.code_sha256,
            "code_file": self.code_file,
            "classes": list(self.classes),
            "lambda_layers": list(self.lambda_layers),
            "folder": self.folder,
            "trusted_at": self.trusted_at,
        }


class TrustStore:
    """The trust store file (read afresh on every call: it is small and may change)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else trust_store_path()

    def _read(self) -> dict[str, TrustRecord]:
        """The records; TrustError when the file is unusable (damaged, writable by others)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise TrustError(f"trust store {self.path} cannot be read: {exc}") from None
        if os.name == "posix" and st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise TrustError(
                f"trust store {self.path} is writable by other users; not used "
                "(run: chmod go-w on it)"
            )
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            models = data["models"]
            if data.get("format") != STORE_FORMAT or not isinstance(models, dict):
                raise ValueError("unknown format")
            return {
                name: TrustRecord(
                    name=name,
                    weights_sha256=str(r["weights_sha256"]),
                    code_sha256=str(r.get("code_sha256", "")),
                    code_file=str(r.get("code_file", "")),
                    classes=tuple(r.get("classes", ())),
                    lambda_layers=tuple(r.get("lambda_layers", ())),
                    folder=str(r.get("folder", "")),
                    trusted_at=str(r.get("trusted_at", "")),
                )
                for name, r in models.items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise TrustError(
                f"trust store {self.path} is damaged ({exc}); fix or delete it"[:300]
            ) from None

    def records(self) -> dict[str, TrustRecord]:
        return self._read()

    def get(self, name: str) -> TrustRecord | None:
        return self._read().get(name)

    def _write(self, records: dict[str, TrustRecord]) -> None:
        from viewer.core.export.atomic import write_bytes_atomic

        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = {
            "format": STORE_FORMAT,
            "models": {n: r.to_json() for n, r in sorted(records.items())},
        }
        write_bytes_atomic(self.path, (json.dumps(data, indent=1) + "\n").encode("utf-8"))

    def add(self, record: TrustRecord) -> None:
        """Record ``record`` (replacing the model's earlier record), atomically."""
        records = self._read()
        records[record.name] = record
        self._write(records)

    def remove(self, name: str) -> bool:
        """Forget the model's record; False when it had none."""
        records = self._read()
        if records.pop(name, None) is None:
            return False
        self._write(records)
        return True


@dataclass
class ModelCheck:
    """One model's state for ``radview models list`` and the viewer (no TensorFlow).

    ``trust``: ``ok`` (nothing to trust), ``trusted``, ``needs-trust`` or ``-`` (unusable);
    ``integrity``: one of :data:`INTEGRITY`; ``problem``: one line when not ok or when the
    model needs trust (why), else "".
    """

    name: str
    source: str
    folder: Path
    spec: ModelSpec | None = None
    trust: str = OK
    integrity: str = "ok"
    problem: str = ""
    weights_sha256: str = ""
    code_sha256: str = ""
    classes: tuple[str, ...] = ()
    lambda_layers: tuple[str, ...] = ()
    record: TrustRecord | None = field(default=None, repr=False)

    @property
    def version(self) -> str:
        return self.spec.version if self.spec else "-"

    @property
    def task(self) -> str:
        return self.spec.task if self.spec else "-"

    @property
    def usable(self) -> bool:
        """Loads as it is (integrity ok, and trusted when it needs trust)."""
        return self.integrity == "ok" and self.trust in (OK, TRUSTED)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "task": self.task,
            "source": self.source,
            "folder": str(self.folder),
            "trust": self.trust,
            "integrity": self.integrity,
            "problem": self.problem,
            "weights_sha256": self.weights_sha256,
            "code_sha256": self.code_sha256,
            "custom_classes": list(self.classes),
            "lambda_layers": list(self.lambda_layers),
        }


def _bare(name: str) -> str:
    return name.rsplit(">", 1)[-1]


def consistency_problem(spec: ModelSpec, report: ModelFileReport, shipped: bool) -> str:
    """Why the weights file cannot be loaded with this spec whatever the trust, or ""."""
    wfile = spec.weights_file
    if report.refused:
        return f"{wfile}: layer(s) {', '.join(report.refused)} (TFSMLayer) are never loaded"
    if shipped and (report.needs_code or spec.custom_code):
        return "a shipped model must use built-in Keras layers only (no custom code, no Lambda)"
    if report.custom and spec.custom_code is None:
        return (
            f"{wfile} needs custom classes ({', '.join(report.custom)}) but the model "
            "folder ships no custom code (model.json custom_code); refused (safe mode)"
        )
    if spec.custom_code is not None:
        listed = set(spec.custom_code.classes)
        missing = [n for n in report.custom if n not in listed and _bare(n) not in listed]
        if missing:
            return (
                f"{wfile} needs {', '.join(missing)}, which custom_code.classes does not "
                "list; refused"
            )
    return ""


def trust_message(spec: ModelSpec, report: ModelFileReport | None = None) -> str:
    """Why ``spec`` needs trust and how to give it (one line)."""
    what = []
    if spec.custom_code is not None:
        what.append(f"{spec.custom_code.file} defines {', '.join(spec.custom_code.classes)}")
    if report is not None and report.lambdas:
        what.append(f"Lambda layer(s) {', '.join(report.lambdas)} in {spec.weights_file}")
    return (
        f"model {spec.name!r} needs your trust: loading it runs Python code on this "
        f"computer ({'; '.join(what)}); refused until you trust it "
        f"(radview models trust {spec.name}, or Models\u2026 in the AI panel)"
    )


def trust_details(check) -> list[tuple[str, str]]:
    """(label, value) rows saying what trusting ``check``'s model means: its weights and
    custom code with their sha256, the classes, the Lambda layers (CLI and dialog)."""
    spec = check.spec
    rows = [("weights", f"{spec.weights_file}  sha256 {check.weights_sha256}")]
    if spec.custom_code is not None:
        rows.append(("custom code", f"{spec.custom_code.file}  sha256 {check.code_sha256}"))
        rows.append(("classes", ", ".join(check.classes)))
    if check.lambda_layers:
        layers = ", ".join(check.lambda_layers)
        rows.append(("Lambda layers", f"{layers} (Python stored in {spec.weights_file})"))
    return rows


def _code_bytes(spec: ModelSpec) -> tuple[bytes, str]:
    """The custom code file's bytes and sha256, checked against model.json; WeightsError."""
    path = spec.custom_code_path
    try:
        code = path.read_bytes()
    except FileNotFoundError:
        raise WeightsError(f"model {spec.name!r}: custom code file {path} is missing") from None
    except OSError as exc:
        raise WeightsError(f"model {spec.name!r}: cannot read {path}: {exc}") from None
    sha = hashlib.sha256(code).hexdigest()
    if sha != spec.custom_code.sha256:
        raise WeightsError(
            f"model {spec.name!r}: custom code file {path.name} does not match model.json "
            f"(sha256 {sha[:12]}..., expected {spec.custom_code.sha256[:12]}...); refusing to load"
        )
    return code, sha


def _matches(record: TrustRecord | None, weights_sha: str, code_sha: str) -> bool:
    return (
        record is not None
        and record.weights_sha256 == weights_sha
        and record.code_sha256 == code_sha
    )


def check_model(
    spec: ModelSpec, source: str | None = None, store: TrustStore | None = None
) -> ModelCheck:
    """``spec``'s integrity and trust state (never raises for a bad model)."""
    shipped = is_shipped(spec.folder) if source is None else source == "builtin"
    check = ModelCheck(spec.name, "builtin" if shipped else "user", spec.folder, spec)
    if spec.is_classical:
        return check
    path = spec.weights_path
    if not path.is_file():
        check.trust, check.integrity = UNUSABLE, "missing"
        check.problem = f"weights file {path} is missing"
        return check
    try:
        check.weights_sha256 = sha256_file(path)
    except OSError as exc:
        check.trust, check.integrity, check.problem = UNUSABLE, "missing", str(exc)
        return check
    if check.weights_sha256 != spec.weights_sha256:
        check.trust, check.integrity = UNUSABLE, "mismatch"
        check.problem = (
            f"weights file {path.name} does not match model.json (sha256 "
            f"{check.weights_sha256[:12]}..., expected {spec.weights_sha256[:12]}...)"
        )
        return check
    try:
        report = inspect_model_file(path)
    except ModelFileError as exc:
        check.trust, check.integrity, check.problem = UNUSABLE, "damaged", str(exc)
        return check
    check.lambda_layers = report.lambdas
    check.classes = spec.custom_code.classes if spec.custom_code else ()
    problem = consistency_problem(spec, report, shipped)
    if problem:
        check.trust, check.integrity, check.problem = UNUSABLE, "refused", problem
        return check
    if spec.custom_code is not None:
        try:
            _, check.code_sha256 = _code_bytes(spec)
        except WeightsError as exc:
            missing = "is missing" in str(exc)
            check.trust, check.integrity = UNUSABLE, "missing" if missing else "mismatch"
            check.problem = str(exc).split(": ", 1)[-1]
            return check
    if not (report.needs_code or spec.custom_code):
        return check
    try:
        check.record = (store or TrustStore()).get(spec.name)
    except TrustError as exc:
        check.trust, check.problem = NEEDS_TRUST, str(exc)
        return check
    if _matches(check.record, check.weights_sha256, check.code_sha256):
        check.trust = TRUSTED
        return check
    check.trust = NEEDS_TRUST
    check.problem = trust_message(spec, report)
    if check.record is not None:
        check.problem += "; its files changed since you trusted it"
    return check


def check_registry(registry: Registry, store: TrustStore | None = None) -> list[ModelCheck]:
    """Every model of ``registry`` (usable specs and folders with a bad model.json), by name."""
    store = store or TrustStore()
    checks = [check_model(spec, registry.source(spec), store) for spec in registry.list_models()]
    for spec_file, problem in registry.problems.items():
        folder = Path(spec_file).parent
        checks.append(
            ModelCheck(
                folder.name,
                "builtin" if is_shipped(folder) else "user",
                folder,
                trust=UNUSABLE,
                integrity="bad-spec",
                problem=problem,
            )
        )
    return sorted(checks, key=lambda c: c.name)


def trust_model(check: ModelCheck, store: TrustStore | None = None) -> TrustRecord:
    """Record the user's trust in a checked model (``check.trust`` must be needs-trust or
    trusted); TrustError (one line) otherwise."""
    if check.integrity != "ok" or check.spec is None:
        raise TrustError(f"model {check.name!r} cannot be trusted: {check.problem}")
    if check.trust == OK:
        raise TrustError(f"model {check.name!r} uses built-in Keras layers only: nothing to trust")
    spec = check.spec
    record = TrustRecord(
        name=spec.name,
        weights_sha256=check.weights_sha256,
        code_sha256=check.code_sha256,
        code_file=spec.custom_code.file if spec.custom_code else "",
        classes=check.classes,
        lambda_layers=check.lambda_layers,
        folder=str(spec.folder),
        trusted_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    (store or TrustStore()).add(record)
    return record


@dataclass(frozen=True)
class TrustedCode:
    """What the AI process may run for a trusted model: ``code`` is the custom code file's
    bytes as hashed (b"" when none), ``allow_lambda`` permits Lambda layers (safe_mode off)."""

    name: str
    code_path: Path | None
    code: bytes
    code_sha256: str
    classes: tuple[str, ...]
    allow_lambda: bool


def grant(
    spec: ModelSpec, report: ModelFileReport, store: TrustStore | None = None
) -> TrustedCode | None:
    """For the AI process, after :func:`ai.registry.verify_weights`: None when the model
    needs no trust; the trusted code when the user trusts these exact files; else raises
    TrustError (needs trust), ModelFileError (never loadable) or WeightsError (code file
    missing or not the one model.json names)."""
    problem = consistency_problem(spec, report, is_shipped(spec.folder))
    if problem:
        raise ModelFileError(f"model {spec.name!r}: {problem}")
    if not (report.needs_code or spec.custom_code):
        return None
    code, code_sha = _code_bytes(spec) if spec.custom_code else (b"", "")
    record = (store or TrustStore()).get(spec.name)
    if not _matches(record, spec.weights_sha256, code_sha):
        changed = "; its files changed since you trusted it" if record is not None else ""
        raise TrustError(trust_message(spec, report) + changed)
    return TrustedCode(
        name=spec.name,
        code_path=spec.custom_code_path,
        code=code,
        code_sha256=code_sha,
        classes=spec.custom_code.classes if spec.custom_code else (),
        allow_lambda=bool(report.lambdas),
    )


def still_trusted(
    granted: TrustedCode, weights_sha256: str, store: TrustStore | None = None
) -> bool:
    """True while the store still holds the record ``granted`` came from (the AI process
    asks before reusing a loaded model: untrusting takes effect at the next request)."""
    try:
        record = (store or TrustStore()).get(granted.name)
    except TrustError:
        return False
    return _matches(record, weights_sha256, granted.code_sha256)
