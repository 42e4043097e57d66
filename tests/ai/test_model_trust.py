"""Model trust end to end: custom layer code and Lambda layers load only once trusted, and
only in the AI process; damaged or unsafe model files give one line and the process lives.

The tests build their own tiny models (tests/ai/conftest.py builders) in a temporary user
models folder and keep the trust store in a temporary XDG_CONFIG_HOME.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import pickle
import shutil
import sys
import zipfile

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from ai import trust  # noqa: E402
from ai.backends import keras_backend as kb  # noqa: E402
from ai.classify import classify_image  # noqa: E402
from ai.model_file import inspect_model_file  # noqa: E402
from ai.process.client import AIClient, AIRequestError  # noqa: E402
from ai.registry import (  # noqa: E402
    ModelUnusableError,
    Registry,
    WeightsError,
    shipped_models_dir,
)

MONO2 = {"photometric": "MONOCHROME2", "modality": "CR"}
CODE = '''"""Custom layer of a test model."""
import os

import keras


@keras.saving.register_keras_serializable(package="RadviewTrustTest")
class Twice(keras.layers.Layer):
    def call(self, x):
        return x * 2


_marker = os.environ.get("RADVIEW_TEST_MARKER")
if _marker:
    with open(_marker, "a") as f:
        f.write(f"{os.getpid()}\\n")
'''


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _edit_spec(folder, **changes) -> None:
    data = json.loads((folder / "model.json").read_text())
    data.update(changes)
    (folder / "model.json").write_text(json.dumps(data))


def _net(middle, size):
    from keras import layers

    keras.utils.set_random_seed(5)
    inp = keras.Input((size, size, 1))
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inp)
    x = middle(x)
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="last_conv")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, layers.Dense(2, activation="softmax", name="predictions")(x))


@pytest.fixture(scope="module")
def built(tmp_path_factory, helpers):
    """A user models folder: tiny-custom (custom_layers.py), tiny-lambda, tiny-plain."""
    root = tmp_path_factory.mktemp("trust-models")
    code_dir = tmp_path_factory.mktemp("code")
    (code_dir / "custom_layers.py").write_text(CODE)
    spec = importlib.util.spec_from_file_location(
        "trust_test_layers", code_dir / "custom_layers.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    custom = _net(module.Twice(name="twice"), helpers.size)
    folder = helpers.write_model(
        root / "tiny-custom", custom, helpers.classifier_spec("tiny-custom")
    )
    shutil.copy(code_dir / "custom_layers.py", folder / "custom_layers.py")
    _edit_spec(
        folder,
        custom_code={
            "file": "custom_layers.py",
            "sha256": _sha(folder / "custom_layers.py"),
            "classes": ["Twice"],
        },
    )
    lam = _net(keras.layers.Lambda(lambda t: t * 2, name="doubler"), helpers.size)
    helpers.write_model(root / "tiny-lambda", lam, helpers.classifier_spec("tiny-lambda"))
    helpers.write_model(
        root / "tiny-plain", helpers.gap_model(4), helpers.classifier_spec("tiny-plain")
    )
    return {"root": root, "custom": custom, "lambda": lam}


@pytest.fixture
def env(built, tmp_path, monkeypatch):
    """A fresh trust store and a marker file the custom code writes its pid into."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("RADVIEW_TEST_MARKER", str(tmp_path / "marker"))
    return tmp_path


@pytest.fixture
def client(built, env):
    c = AIClient(Registry([built["root"]]), request_timeout=120)
    yield c
    c.close()


@pytest.fixture(scope="module")
def shared_client(built):
    """One AI process for the damaged-file cases (it must survive each of them)."""
    c = AIClient(Registry([built["root"]]), request_timeout=120)
    yield c
    c.close()


def _trust(name: str, root) -> None:
    check = trust.check_model(Registry([root]).get(name))
    assert check.trust == trust.NEEDS_TRUST, check
    trust.trust_model(check)


def test_custom_code_runs_only_when_trusted_and_only_in_the_ai_process(client, built, env, helpers):
    image = helpers.chest_like(60, 90)
    with pytest.raises(AIRequestError) as info:
        client.classify(image, MONO2, "tiny-custom")
    message = str(info.value)
    assert info.value.kind == "model" and "\n" not in message
    assert "model 'tiny-custom' needs your trust" in message
    assert "custom_layers.py defines Twice" in message
    assert "radview models trust tiny-custom" in message
    assert not (env / "marker").exists()  # refused before any of its code ran
    pid = client.pid
    _trust("tiny-custom", built["root"])
    pred = client.classify(image, MONO2, "tiny-custom")
    assert client.pid == pid  # the same AI process, alive after the refusal
    spec = client.spec("tiny-custom")
    local = classify_image(image, MONO2, spec, kb.KerasModel(built["custom"]))
    for name, p in local.probabilities.items():
        assert pred.probabilities[name] == pytest.approx(p, abs=1e-5)
    assert (env / "marker").read_text().split() == [str(pid)]  # ran once, in the child
    assert pid != os.getpid()
    assert not [m for m in sys.modules if m.startswith("radview_custom_")]
    # untrusting takes effect at the next request, although the model is loaded
    assert trust.TrustStore().remove("tiny-custom")
    with pytest.raises(AIRequestError, match="needs your trust"):
        client.classify(image, MONO2, "tiny-custom")


def test_changing_the_code_or_the_weights_revokes_the_trust(client, built, env, helpers, tmp_path):
    folder = tmp_path / "models" / "tiny-custom"
    shutil.copytree(built["root"] / "tiny-custom", folder)
    _trust("tiny-custom", folder.parent)
    code = folder / "custom_layers.py"
    code.write_text(CODE + "\nprint('something else')\n")
    _edit_spec(
        folder, custom_code={"file": "custom_layers.py", "sha256": _sha(code), "classes": ["Twice"]}
    )
    spec = Registry([folder.parent]).get("tiny-custom")
    check = trust.check_model(spec)
    assert check.trust == trust.NEEDS_TRUST and "changed since you trusted it" in check.problem
    with pytest.raises(AIRequestError, match="changed since you trusted it"):
        client.load_model(spec)
    assert not (env / "marker").exists()
    _trust("tiny-custom", folder.parent)
    assert client.load_model(spec)["name"] == "tiny-custom"
    # the code file no longer the one model.json names: refused whatever the trust (the
    # AI process asks trust.grant before loading; the model already loaded stays as it was)
    code.write_text(CODE + "\n# edited after\n")
    spec = Registry([folder.parent]).get("tiny-custom")
    assert trust.check_model(spec).integrity == "mismatch"
    with pytest.raises(WeightsError, match="custom_layers.py does not match model.json"):
        trust.grant(spec, inspect_model_file(spec.weights_path))


def test_lambda_layers_need_trust_then_load_without_safe_mode(client, built, helpers):
    image = helpers.chest_like(50, 50)
    with pytest.raises(AIRequestError, match=r"needs your trust.*Lambda layer\(s\) doubler"):
        client.classify(image, MONO2, "tiny-lambda")
    _trust("tiny-lambda", built["root"])
    pred = client.classify(image, MONO2, "tiny-lambda")
    spec = client.spec("tiny-lambda")
    local = classify_image(image, MONO2, spec, kb.KerasModel(built["lambda"]))
    for name, p in local.probabilities.items():
        assert pred.probabilities[name] == pytest.approx(p, abs=1e-5)


def _copy(built, tmp_path, name="tiny-plain"):
    folder = tmp_path / "user" / name
    shutil.copytree(built["root"] / name, folder)
    return folder


def _reseal(folder, weights="model.keras") -> None:
    """model.json names ``weights`` with its current sha256 (the damage is not a mismatch)."""
    data = json.loads((folder / "model.json").read_text())
    data["weights"] = {"file": weights, "sha256": _sha(folder / weights)}
    (folder / "model.json").write_text(json.dumps(data))


def _truncate(folder):
    data = (folder / "model.keras").read_bytes()
    (folder / "model.keras").write_bytes(data[: len(data) // 2])
    _reseal(folder)


def _hdf5_named_keras(folder):
    keras.saving.load_model(folder / "model.keras").save(folder / "legacy.h5")
    os.replace(folder / "legacy.h5", folder / "model.keras")
    _reseal(folder)


def _pickle_named_keras(folder):
    (folder / "model.keras").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    _reseal(folder)


def _zip_with_pickle(folder):
    with zipfile.ZipFile(folder / "model.keras", "a") as z:
        z.writestr("assets/extra.pkl", pickle.dumps([1]))
    _reseal(folder)


def _weights_only_h5(folder):
    keras.saving.load_model(folder / "model.keras").save_weights(folder / "w.weights.h5")
    os.replace(folder / "w.weights.h5", folder / "model.h5")
    _reseal(folder, "model.h5")


def _tampered(folder):
    with open(folder / "model.keras", "ab") as f:
        f.write(b"x")


def _missing(folder):
    (folder / "model.keras").unlink()


CASES = [
    (_tampered, "mismatch", "does not match model.json"),
    (_missing, "missing", "is missing"),
    (_truncate, "damaged", "damaged or truncated zip"),
    (_hdf5_named_keras, "damaged", r"is a legacy HDF5 \(\.h5\) model, not a Keras 3 zip"),
    (_pickle_named_keras, "damaged", "is a Python pickle"),
    (_zip_with_pickle, "damaged", r"holds a Python pickle \(assets/extra.pkl\)"),
    (_weights_only_h5, "damaged", "holds weights only"),
]


@pytest.mark.parametrize(
    ("damage", "integrity", "message"), CASES, ids=[c[0].__name__.strip("_") for c in CASES]
)
def test_damaged_model_files_give_one_line_and_the_process_survives(
    shared_client, built, tmp_path, helpers, damage, integrity, message
):
    client = shared_client
    folder = _copy(built, tmp_path)
    damage(folder)
    spec = Registry([folder.parent]).get("tiny-plain")
    check = trust.check_model(spec)
    assert (check.integrity, check.trust) == (integrity, trust.UNUSABLE)
    assert "\n" not in check.problem
    with pytest.raises(AIRequestError, match=message) as info:
        client.load_model(spec)
    assert info.value.kind == "model" and "\n" not in str(info.value)
    pid = client.pid
    good = client.classify(helpers.chest_like(40, 40), MONO2, "tiny-plain")
    assert set(good.probabilities) == {"covid", "other"}
    assert pid is not None and client.pid == pid


def test_malformed_model_json_is_one_line(built, tmp_path):
    folder = _copy(built, tmp_path)
    (folder / "model.json").write_text('{"format": 1, "name": ')
    registry = Registry([folder.parent])
    with pytest.raises(ModelUnusableError, match="'tiny-plain' cannot be used: .*not valid JSON"):
        registry.get("tiny-plain")
    (check,) = trust.check_registry(registry)
    assert (check.name, check.integrity, check.trust) == ("tiny-plain", "bad-spec", "-")


def test_untrusted_listing_and_unlisted_classes_are_refused_in_process(built, env, tmp_path):
    folder = _copy(built, tmp_path, "tiny-custom")
    spec = Registry([folder.parent]).get("tiny-custom")
    path = spec.weights_path
    with pytest.raises(kb.ModelLoadError, match="layer 'twice' of class .*Twice.* refused"):
        kb.load_model(path)
    report = inspect_model_file(path)
    assert report.custom == ("RadviewTrustTest>Twice",)
    granted = trust.TrustedCode(
        "tiny-custom",
        spec.custom_code_path,
        spec.custom_code_path.read_bytes(),
        "0" * 64,
        ("Other",),
        False,
    )
    with pytest.raises(kb.ModelLoadError, match="nor one of the trusted custom classes"):
        kb.load_model(path, trusted=granted)
    broken = trust.TrustedCode(
        "tiny-custom", spec.custom_code_path, b"raise SystemExit(3)\n", "1" * 64, ("Twice",), False
    )
    with pytest.raises(kb.ModelLoadError, match="failed when imported: SystemExit: 3"):
        kb.load_model(path, trusted=broken)
    # a model.json that does not list the class the file needs: refused, trusted or not
    _edit_spec(
        folder,
        custom_code={
            "file": "custom_layers.py",
            "sha256": _sha(spec.custom_code_path),
            "classes": ["Other"],
        },
    )
    check = trust.check_model(Registry([folder.parent]).get("tiny-custom"))
    assert check.integrity == "refused" and "custom_code.classes does not list" in check.problem


def test_every_shipped_model_uses_built_in_layers_only():
    registry = Registry([shipped_models_dir()])
    specs = [s for s in registry.list_models() if not s.is_classical]
    assert specs and not registry.problems
    for spec in specs:
        assert spec.custom_code is None
        report = kb.check_architecture(spec.weights_path)
        assert not report.needs_code and not report.refused, spec.name
        check = trust.check_model(spec)
        assert (check.source, check.trust, check.integrity) == ("builtin", "ok", "ok"), check


def test_trusted_custom_layers_load_from_a_legacy_h5_file(built, env, tmp_path, helpers):
    folder = _copy(built, tmp_path, "tiny-custom")
    built["custom"].save(folder / "model.h5")
    _reseal(folder, "model.h5")
    spec = Registry([folder.parent]).get("tiny-custom")
    report = inspect_model_file(spec.weights_path)
    assert report.kind == "h5" and report.custom == ("RadviewTrustTest>Twice",)
    with pytest.raises(trust.TrustError, match="needs your trust"):
        trust.grant(spec, report)
    _trust("tiny-custom", folder.parent)
    loaded = kb.load_model(spec.weights_path, "tiny-custom", trusted=trust.grant(spec, report))
    x = np.random.default_rng(1).random((2, helpers.size, helpers.size, 1)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x), np.asarray(built["custom"](x)), rtol=1e-5)
