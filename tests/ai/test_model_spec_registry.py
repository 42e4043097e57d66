"""model.json parsing, the registry's folders and the sha256 check (no TensorFlow)."""

from __future__ import annotations

import copy
import json

import pytest

from ai.model_spec import ModelSpec, ModelSpecError
from ai.registry import (
    ENV_MODELS,
    Registry,
    UnknownModelError,
    WeightsError,
    shipped_models_dir,
    user_models_dirs,
    verify_weights,
)

GOOD = {
    "format": 1,
    "name": "cxr-test",
    "version": "1.0.0",
    "task": "classification",
    "modalities": ["CR", "DX"],
    "input": {"height": 64, "width": 64, "channels": 1},
    "preprocessing": [
        {"op": "to_display", "invert_monochrome1": True},
        {"op": "percentile_scale", "low": 0.5, "high": 99.5},
        {"op": "letterbox", "height": 64, "width": 64},
    ],
    "classes": ["covid", "other"],
    "positive_class": "covid",
    "cam": {"method": "cam", "conv_layer": "last_conv", "dense_layer": "predictions"},
    "weights": {"file": "model.keras", "sha256": "0" * 64},
    "card": "MODEL_CARD.md",
}


def _with(path: str, value):
    data = copy.deepcopy(GOOD)
    node = data
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[k]
    if value is KeyError:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return data


def test_good_spec(tmp_path):
    spec = ModelSpec.from_dict(GOOD, tmp_path)
    assert spec.name == "cxr-test" and spec.classes == ("covid", "other")
    assert spec.input.height == 64 and spec.cam.method == "cam"
    assert spec.weights_path == tmp_path / "model.keras"
    assert spec.card_path is None  # not there
    (tmp_path / "MODEL_CARD.md").write_text("card")
    assert spec.card_path == tmp_path / "MODEL_CARD.md"
    assert spec.pipeline().forward.__self__.steps[-1].op == "letterbox"


@pytest.mark.parametrize(
    "path, value, message",
    [
        ("format", 2, "format 2 is not supported"),
        ("name", "Bad Name", "name 'Bad Name'"),
        ("task", "detection", "task 'detection'"),
        ("input.channels", 2, "channels must be 1 or 3"),
        ("input.height", KeyError, "missing field 'height'"),
        ("preprocessing", [{"op": "exec", "code": "x"}], "unknown preprocessing op 'exec'"),
        ("preprocessing", GOOD["preprocessing"][:2], "must end with a resize or letterbox"),
        ("classes", ["covid"], "at least 2 classes"),
        ("positive_class", "flu", "positive_class 'flu'"),
        ("cam.method", "magic", "cam.method 'magic'"),
        ("weights.file", "../x.keras", "file name inside the model folder"),
        ("weights.file", "model.pkl", "must end in .keras or .h5"),
        ("weights.sha256", "abc", "64 hexadecimal digits"),
        ("version", 1, "field 'version' must be str"),
    ],
)
def test_bad_specs_give_one_line_errors(tmp_path, path, value, message):
    with pytest.raises(ModelSpecError, match=message) as info:
        ModelSpec.from_dict(_with(path, value), tmp_path, source="m/model.json")
    assert str(info.value).startswith("m/model.json: ")
    assert "\n" not in str(info.value)


def test_segmentation_spec_needs_labels(tmp_path):
    data = _with("task", "segmentation")
    del data["classes"], data["positive_class"]
    with pytest.raises(ModelSpecError, match="missing field 'labels'"):
        ModelSpec.from_dict(data, tmp_path)
    data["labels"] = {"0": "background", "1": "lung"}
    assert ModelSpec.from_dict(data, tmp_path).labels == {0: "background", 1: "lung"}


def test_load_reports_bad_json(tmp_path):
    (tmp_path / "model.json").write_text("{nope")
    with pytest.raises(ModelSpecError, match="not valid JSON"):
        ModelSpec.load(tmp_path)


def _folder(root, name, sha="0" * 64, payload=b"weights"):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "model.keras").write_bytes(payload)
    data = _with("name", name)
    data["weights"]["sha256"] = sha
    (folder / "model.json").write_text(json.dumps(data))
    return folder


def test_registry_finds_models_and_user_models_replace_shipped(tmp_path):
    shipped, user = tmp_path / "shipped", tmp_path / "user"
    _folder(shipped, "alpha")
    _folder(shipped, "beta")
    _folder(user, "beta", payload=b"newer")
    (user / "broken").mkdir()
    (user / "broken" / "model.json").write_text("[]")
    reg = Registry([shipped, user, tmp_path / "missing"])
    assert reg.names() == ["alpha", "beta"]
    assert reg.get("beta").folder == (user / "beta").absolute()
    assert list(reg.problems) == [str(user / "broken" / "model.json")]
    with pytest.raises(UnknownModelError, match=r"unknown model 'gamma' \(available: alpha, beta"):
        reg.get("gamma")
    with pytest.raises(UnknownModelError, match="'broken' cannot be used: .*JSON object"):
        reg.get("broken")


def test_user_models_folder_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_MODELS, str(tmp_path))
    assert user_models_dirs() == [tmp_path]
    monkeypatch.delenv(ENV_MODELS)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert user_models_dirs() == [tmp_path / "data" / "radview" / "models"]
    assert shipped_models_dir().parts[-2:] == ("resources", "models")


def test_shipped_folder_inside_a_pyinstaller_bundle(tmp_path, monkeypatch):
    import sys

    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert shipped_models_dir() == tmp_path / "resources" / "models"


def test_weights_with_another_sha256_are_refused(tmp_path):
    import hashlib

    good = hashlib.sha256(b"weights").hexdigest()
    _folder(tmp_path, "ok", sha=good)
    _folder(tmp_path, "tampered", sha=good, payload=b"weights, changed")
    reg = Registry([tmp_path])
    assert verify_weights(reg.get("ok")) == (tmp_path / "ok" / "model.keras").absolute()
    with pytest.raises(WeightsError, match="does not match model.json .*refusing to load"):
        verify_weights(reg.get("tampered"))
    (tmp_path / "ok" / "model.keras").unlink()
    with pytest.raises(WeightsError, match="is missing"):
        verify_weights(reg.get("ok"))
