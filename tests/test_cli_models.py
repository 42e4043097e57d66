"""``radview models list|trust|untrust`` and the one-line refusals of classify/segment.

No TensorFlow in this process, and none needed: the model files are Keras 3 zips written
by hand (config.json + a placeholder weights member). They are never deserialised: listing
and trusting only hash and parse, and the AI process refuses untrusted or damaged models
before it imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import stat
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from viewer.cli import main

CODE = (
    "import keras\n\n\nclass Twice(keras.layers.Layer):\n"
    "    def call(self, x):\n        return 2 * x\n"
)


def _layer(cls: str, name: str, module="keras.layers", registered=None, **config) -> dict:
    return {
        "module": module,
        "class_name": cls,
        "config": {
            "name": name,
            "dtype": {
                "module": "keras",
                "class_name": "DTypePolicy",
                "config": {"name": "float32"},
                "registered_name": None,
            },
            **config,
        },
        "registered_name": registered,
        "build_config": {"input_shape": [None, 8, 8, 1]},
        "name": name,
        "inbound_nodes": [],
    }


def keras_zip(path: Path, extra_layers=()) -> None:
    """A Keras 3 .keras zip whose architecture has a conv layer plus ``extra_layers``."""
    layers = [
        _layer("InputLayer", "input"),
        _layer("Conv2D", "conv", filters=2),
        *extra_layers,
        _layer("Dense", "predictions", units=2),
    ]
    config = {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {"name": "tiny", "layers": layers},
        "registered_name": "Functional",
    }
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n placeholder weights")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_spec(folder: Path, name: str, weights="model.keras", **extra) -> None:
    data = {
        "format": 1,
        "name": name,
        "version": "0.1.0",
        "task": "classification",
        "input": {"height": 8, "width": 8, "channels": 1},
        "preprocessing": [
            {"op": "percentile_scale", "low": 1, "high": 99},
            {"op": "resize", "height": 8, "width": 8},
        ],
        "classes": ["a", "b"],
        "weights": {
            "file": weights,
            "sha256": sha(folder / weights) if (folder / weights).exists() else "0" * 64,
        },
        **extra,
    }
    (folder / "model.json").write_text(json.dumps(data))


def make_model(root: Path, name: str, extra_layers=(), code: str | None = None, **extra) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    keras_zip(folder / "model.keras", extra_layers)
    if code is not None:
        (folder / "custom_layers.py").write_text(code)
        extra["custom_code"] = {
            "file": "custom_layers.py",
            "classes": ["Twice"],
            "sha256": sha(folder / "custom_layers.py"),
        }
    write_spec(folder, name, **extra)
    return folder


TWICE = _layer("Twice", "twice", module=None, registered="Pkg>Twice")
LAMBDA = _layer(
    "Lambda", "doubler", function={"class_name": "__lambda__", "config": {"code": "AAAA"}}
)


@pytest.fixture
def models(tmp_path, monkeypatch):
    root = tmp_path / "models"
    make_model(root, "u-plain")
    make_model(root, "u-custom", [TWICE], code=CODE)
    make_model(root, "u-lambda", [LAMBDA])
    tampered = make_model(root, "u-tampered")
    with open(tampered / "model.keras", "ab") as f:
        f.write(b"!")
    truncated = make_model(root, "u-truncated")
    data = (truncated / "model.keras").read_bytes()
    (truncated / "model.keras").write_bytes(data[: len(data) // 2])
    write_spec(truncated, "u-truncated")
    pickled = make_model(root, "u-pickle")
    (pickled / "model.keras").write_bytes(pickle.dumps({"w": 1}))
    write_spec(pickled, "u-pickle")
    make_model(root, "u-nocode", [TWICE])
    make_model(
        root,
        "u-segment",
        [TWICE],
        code=CODE,
        task="segmentation",
        labels={"0": "background", "1": "lung"},
    )
    (root / "u-broken").mkdir()
    (root / "u-broken" / "model.json").write_text("{not json")
    monkeypatch.setenv("RADVIEW_MODELS", str(root))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return root


def _store(tmp_path) -> Path:
    return tmp_path / "config" / "radview" / "trusted-models.json"


def _run(capsys, *argv, stdin: str | None = None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_source_trust_and_integrity(models, capsys):
    code, out, err = _run(capsys, "models", "list")
    assert code == 1 and err == ""  # some models are unusable
    rows = {
        line.split()[0]: line.split()
        for line in out.splitlines()[1:]
        if line.strip() and not line.split()[0].endswith(":")
    }
    assert rows["cxr-covid"][3:] == ["builtin", "ok", "ok"]
    assert rows["u-plain"][1:] == ["0.1.0", "classification", "user", "ok", "ok"]
    assert rows["u-custom"][4:] == ["needs-trust", "ok"]
    assert rows["u-lambda"][4:] == ["needs-trust", "ok"]
    assert rows["u-tampered"][4:] == ["-", "mismatch"]
    assert rows["u-truncated"][4:] == ["-", "damaged"]
    assert rows["u-pickle"][4:] == ["-", "damaged"]
    assert rows["u-nocode"][4:] == ["-", "refused"]
    assert rows["u-broken"] == ["u-broken", "-", "-", "user", "-", "bad-spec"]
    notes = {
        line.split(":")[0]: line
        for line in out.splitlines()
        if line.startswith("u-") and ": " in line
    }
    assert "custom_layers.py defines Twice" in notes["u-custom"]
    assert "radview models trust u-custom" in notes["u-custom"]
    assert "Lambda layer(s) doubler" in notes["u-lambda"]
    assert "does not match model.json" in notes["u-tampered"]
    assert "damaged or truncated zip" in notes["u-truncated"]
    assert "is a Python pickle" in notes["u-pickle"]
    assert "ships no custom code" in notes["u-nocode"]
    assert "not valid JSON" in notes["u-broken"]
    assert "u-plain" not in notes and "cxr-covid" not in notes

    code, out, _ = _run(capsys, "models", "list", "--json")
    data = json.loads(out)
    by_name = {m["name"]: m for m in data["models"]}
    custom = by_name["u-custom"]
    assert custom["custom_classes"] == ["Twice"] and custom["trust"] == "needs-trust"
    assert custom["code_sha256"] == sha(models / "u-custom" / "custom_layers.py")
    assert custom["weights_sha256"] == sha(models / "u-custom" / "model.keras")
    assert by_name["u-lambda"]["lambda_layers"] == ["doubler"]
    assert data["user_models_dirs"] == [str(models)]


def test_trust_asks_records_and_a_changed_file_revokes(models, capsys, monkeypatch, tmp_path):
    store = _store(tmp_path)
    code, out, err = _run(
        capsys, "models", "trust", "u-custom", stdin="n\n", monkeypatch=monkeypatch
    )
    assert code == 1 and "not trusted" in err and not store.exists()
    assert sha(models / "u-custom" / "custom_layers.py") in out and "classes       Twice" in out
    assert "run the Python code" in out and "on this computer" in out
    code, _, err = _run(capsys, "models", "trust", "u-custom", stdin="", monkeypatch=monkeypatch)
    assert code == 1 and not store.exists()  # no answer (EOF) is no
    code, out, err = _run(
        capsys, "models", "trust", "u-custom", stdin="yes\n", monkeypatch=monkeypatch
    )
    assert code == 0 and f"recorded in {store}" in out
    record = json.loads(store.read_text())["models"]["u-custom"]
    assert record["weights_sha256"] == sha(models / "u-custom" / "model.keras")
    assert record["code_sha256"] == sha(models / "u-custom" / "custom_layers.py")
    assert record["classes"] == ["Twice"]
    assert not store.stat().st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    assert [p.name for p in store.parent.iterdir()] == [store.name]  # no temporary left
    _, out, _ = _run(capsys, "models", "list")
    assert "u-custom" in out and " trusted " in next(
        line for line in out.splitlines() if line.startswith("u-custom ")
    )
    # the code changes (model.json updated with it): the trust no longer applies
    code_file = models / "u-custom" / "custom_layers.py"
    code_file.write_text(CODE + "# changed\n")
    data = json.loads((models / "u-custom" / "model.json").read_text())
    data["custom_code"]["sha256"] = sha(code_file)
    (models / "u-custom" / "model.json").write_text(json.dumps(data))
    _, out, _ = _run(capsys, "models", "list", "--json")
    (custom,) = [m for m in json.loads(out)["models"] if m["name"] == "u-custom"]
    assert custom["trust"] == "needs-trust"
    assert custom["problem"].endswith("its files changed since you trusted it")
    # Lambda layers are trusted the same way (the weights' sha256 is the record)
    assert _run(capsys, "models", "trust", "u-lambda", "--yes")[0] == 0
    code, out, _ = _run(capsys, "models", "untrust", "u-lambda")
    assert code == 0 and "no longer trusted" in out
    assert "u-lambda" not in json.loads(store.read_text())["models"]
    assert "was not trusted" in _run(capsys, "models", "untrust", "u-lambda")[1]


def test_trust_refusals(models, capsys):
    code, out, _ = _run(capsys, "models", "trust", "cxr-covid")
    assert code == 0 and "built-in Keras layers only: nothing to trust" in out
    code, _, err = _run(capsys, "models", "trust", "u-tampered", "--yes")
    assert code == 1 and err.count("\n") == 1
    assert "cannot be trusted: weights file model.keras does not match model.json" in err
    code, _, err = _run(capsys, "models", "trust", "no-such", "--yes")
    assert code == 2 and err.startswith("radview: error: unknown model 'no-such' (models: ")
    code, _, err = _run(capsys, "models")
    assert code == 2 and "radview: error:" in err


def test_a_store_others_can_write_is_not_used(models, capsys, tmp_path):
    assert _run(capsys, "models", "trust", "u-custom", "--yes")[0] == 0
    store = _store(tmp_path)
    os.chmod(store, 0o666)
    _, out, _ = _run(capsys, "models", "list", "--json")
    (custom,) = [m for m in json.loads(out)["models"] if m["name"] == "u-custom"]
    assert custom["trust"] == "needs-trust" and "writable by other users" in custom["problem"]
    store.write_text("{damaged")
    os.chmod(store, 0o644)
    code, _, err = _run(capsys, "models", "trust", "u-lambda", "--yes")
    assert code == 1 and "is damaged" in err and store.read_text() == "{damaged"


@pytest.mark.parametrize(
    ("command", "model", "message"),
    [
        (
            "classify",
            "u-custom",
            "model 'u-custom' needs your trust: loading it runs Python "
            "code on this computer (custom_layers.py defines Twice)",
        ),
        ("classify", "u-tampered", "weights file model.keras does not match model.json"),
        ("classify", "u-truncated", "damaged or truncated zip"),
        ("classify", "u-pickle", "model.keras is a Python pickle"),
        ("segment", "u-segment", "model 'u-segment' needs your trust"),
    ],
)
def test_classify_and_segment_refuse_with_one_line(models, tmp_path, command, model, message):
    """Through the real CLI and AI process; refused before TensorFlow is imported."""
    from pydicom.data import get_testdata_file

    image = tmp_path / "ct.dcm"
    shutil.copy(get_testdata_file("CT_small.dcm"), image)
    env = {**os.environ, "RADVIEW_MODELS": str(models), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    run = subprocess.run(
        [sys.executable, "-m", "viewer", command, str(image), "--model", model],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.startswith(f"radview: error: model '{model}' cannot be used: ")
    assert message in run.stderr and run.stderr.count("\n") == 1, run.stderr


def test_models_commands_never_import_tensorflow(models, tmp_path):
    probe = textwrap.dedent("""
        import sys
        from viewer.cli import main
        codes = [main(["models", "list", "--json"]), main(["models", "trust", "u-custom",
                 "--yes"]), main(["models", "untrust", "u-custom"])]
        loaded = [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras")]
        print("RESULT", codes, loaded)
    """)
    env = {**os.environ, "RADVIEW_MODELS": str(models), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    run = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=Path(__file__).parents[1],
    )
    assert run.stdout.strip().splitlines()[-1] == "RESULT [1, 0, 0] []", run.stderr


@pytest.mark.parametrize("command", ["classify", "segment"])
def test_a_malformed_model_json_is_named_not_unknown(models, capsys, tmp_path, command):
    """A user model folder whose model.json is broken: the reason, not "unknown model"."""
    image = tmp_path / "ct.dcm"
    from pydicom.data import get_testdata_file

    shutil.copy(get_testdata_file("CT_small.dcm"), image)
    code, out, err = _run(capsys, command, str(image), "--model", "u-broken")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "model.json" in err and "unknown model" not in err, err
