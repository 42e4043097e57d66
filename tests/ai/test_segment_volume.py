"""Whole-volume segmentation through the AI process: labels on the volume's grid, progress,
cancel between batches, and the within_lungs restriction."""

from __future__ import annotations

import numpy as np
import pytest

from ai.classify import Cancelled
from ai.model_spec import ModelSpec, ModelSpecError
from ai.process.client import AIClient
from ai.registry import Registry, shipped_models_dir
from ai.segment import restrict_to_mask, volume_input
from viewer.core.demo import write_series
from viewer.core.study_index import build_index, load_series

SIZE = 32
#: window (centre, width) of the tiny CT models: x = (HU + 1000) / 1400
WINDOW = {"op": "window", "center": -300, "width": 1400}


def _x(hu: float) -> float:
    return (hu + 1000) / 1400


def pixel_model(weights, bias):
    """A 1x1-convolution softmax 'segmenter': per-pixel logits = weights * x + bias."""
    import keras
    from keras import layers

    inp = keras.Input((SIZE, SIZE, 1))
    out = layers.Conv2D(len(bias), 1, activation="softmax", name="seg")(inp)
    model = keras.Model(inp, out)
    model.get_layer("seg").set_weights(
        [np.array([[[weights]]], np.float32), np.array(bias, np.float32)]
    )
    return model


def ct_spec(name, labels, batch_size=None, postprocessing=None) -> dict:
    spec = {
        "name": name,
        "task": "segmentation",
        "modalities": ["CT"],
        "input": {"height": SIZE, "width": SIZE, "channels": 1},
        "preprocessing": [WINDOW, {"op": "resize", "height": SIZE, "width": SIZE}],
        "labels": {str(i): n for i, n in enumerate(labels)},
    }
    if batch_size:
        spec["batch_size"] = batch_size
    if postprocessing:
        spec["postprocessing"] = postprocessing
    return spec


@pytest.fixture(scope="module")
def ct_models(tmp_path_factory, helpers):
    """tiny-infection: HU -600..-100 -> 1 (ground-glass), > -100 -> 2 (consolidation);
    tiny-ctlungs: HU < -600 -> 1 (lung); tiny-restricted: tiny-infection within the lungs
    of tiny-ctlungs grown by 3 mm; tiny-in-ct-lungs: within the shipped classical ct-lungs;
    tiny-slow: tiny-infection one slice per batch."""
    root = tmp_path_factory.mktemp("ct-models")
    a, b = _x(-600), _x(-100)
    infection = ([0.0, 40.0, 80.0], [0.0, -40 * a, -80 * (a + b) / 2])
    names = ["background", "ground-glass opacity", "consolidation"]
    helpers.write_model(
        root / "tiny-infection",
        pixel_model(*infection),
        ct_spec("tiny-infection", names, batch_size=2),
    )
    helpers.write_model(
        root / "tiny-slow", pixel_model(*infection), ct_spec("tiny-slow", names, batch_size=1)
    )
    helpers.write_model(
        root / "tiny-ctlungs",
        pixel_model([0.0, -40.0], [0.0, 40 * a]),
        ct_spec("tiny-ctlungs", ["background", "lung"]),
    )
    helpers.write_model(
        root / "tiny-restricted",
        pixel_model(*infection),
        ct_spec(
            "tiny-restricted",
            names,
            postprocessing=[{"op": "within_lungs", "model": "tiny-ctlungs", "dilate_mm": 3}],
        ),
    )
    helpers.write_model(
        root / "tiny-in-ct-lungs",
        pixel_model(*infection),
        ct_spec(
            "tiny-in-ct-lungs", names, postprocessing=[{"op": "within_lungs", "model": "ct-lungs"}]
        ),
    )
    return root


@pytest.fixture(scope="module")
def client(ct_models):
    c = AIClient(Registry([shipped_models_dir(), ct_models]), request_timeout=120)
    yield c
    c.close()


def _expected(hu: np.ndarray) -> np.ndarray:
    return np.where(hu > -100, 2, np.where(hu > -600, 1, 0)).astype(np.uint8)


def test_three_slice_series_labels_on_the_volume_grid(client, tmp_path):
    hu = np.full((3, 40, 56), -1000, np.int16)
    for k in range(3):  # a different place on every slice: slices must not mix
        hu[k, 4 + 8 * k : 16 + 8 * k, 6:30] = -400
        hu[k, 22:36, 30 + 6 * k : 50] = 60
    write_series(hu, tmp_path / "series", spacing=(3.0, 0.8, 0.6))
    volume = load_series(build_index(tmp_path / "series").series[0])
    array, meta = volume_input(volume)
    assert array.dtype == np.int16 and meta["modality"] == "CT"
    assert meta["spacing_mm"] == pytest.approx((3.0, 0.8, 0.6))

    seen = []
    labels = client.segment_volume(
        array, meta, "tiny-infection", progress=lambda f, m: seen.append((f, m))
    )
    assert labels.shape == volume.geometry.shape and labels.dtype == np.uint8
    expected = _expected(hu)
    # 40x56 -> 32x32 -> back: only the pixels next to an edge may differ
    assert (labels == expected).mean() > 0.97
    for k in range(3):
        assert (labels[k, 6 + 8 * k : 14 + 8 * k, 9:27] == 1).all()
        assert (labels[k, 24:34, 33 + 6 * k : 47] == 2).all()
        assert (labels[k, :, :4] == 0).all()
    messages = [m for _, m in seen]
    assert "slice 2/3" in messages and "slice 3/3" in messages  # batches of 2
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_cancel_mid_volume_then_the_process_is_still_usable(client):
    hu = np.full((300, SIZE, SIZE), -400, np.int16)
    meta = {"modality": "CT", "photometric": "MONOCHROME2", "spacing_mm": (1.0, 1.0, 1.0)}
    client.segment_volume(hu[:1], meta, "tiny-slow")  # model loaded
    pid = client.pid
    seen = []
    with pytest.raises(Cancelled):
        client.segment_volume(
            hu,
            meta,
            "tiny-slow",
            progress=lambda f, m: seen.append(m),
            cancelled=lambda: any(m.startswith("slice 2/") for m in seen),
        )
    done = [m for m in seen if m.startswith("slice ")]
    assert "slice 2/300" in done and "slice 300/300" not in done  # stopped between batches
    labels = client.segment_volume(hu[:3], meta, "tiny-slow")
    assert client.pid == pid and (labels == 1).all()


def test_within_lungs_zeroes_labels_outside_the_lungs(client):
    hu = np.full((2, SIZE, SIZE), 40, np.int16)  # soft tissue: 'consolidation' to the model
    hu[:, 4:28, 3:15] = -850  # the lung
    hu[:, 14:18, 7:11] = -400  # ground-glass inside the lung
    hu[:, 14:18, 22:26] = -400  # 'ground-glass' in the chest wall
    meta = {"modality": "CT", "photometric": "MONOCHROME2", "spacing_mm": (2.0, 1.0, 1.0)}
    plain = client.segment_volume(hu, meta, "tiny-infection")
    assert (plain[:, 14:18, 22:26] == 1).all() and (plain[:, :, 20:] != 0).all()

    seen = []
    labels = client.segment_volume(
        hu, meta, "tiny-restricted", progress=lambda f, m: seen.append(m)
    )
    assert (labels[:, 14:18, 7:11] == 1).all()  # inside the lung: kept
    assert (labels[:, 14:18, 22:26] == 0).all()  # outside: gone
    # kept: the lung grown by 3 mm (3 pixels of 1 mm), nothing beyond
    assert (labels[:, :, 18:] == 0).all() and (labels[:, 31:, :] == 0).all()
    assert (labels[:, 4:28, 15:18] == 2).all()  # the rim within 3 mm of the lung is kept
    assert any(m.startswith("tiny-ctlungs: slice") for m in seen)

    # not CT (a picture of a slice): no restriction, the labels stay as the model gave them
    picture = {**meta, "modality": "OT"}
    np.testing.assert_array_equal(client.segment_volume(hu, picture, "tiny-restricted"), plain)


def test_within_the_ct_lungs_of_a_chest_phantom(client):
    """The shipped classical ct-lungs as the restriction: findings only inside its lungs."""
    from ai.ct_lungs import segment_lungs
    from viewer.core.demo.phantom import chest_phantom

    spacing = (7.5, 2.8, 2.8)
    hu, info = chest_phantom((40, 128, 128), spacing, seed=0)
    meta = {
        "modality": "CT",
        "photometric": "MONOCHROME2",
        "spacing_mm": spacing,
        "direction": np.eye(3).tolist(),
    }
    labels = client.segment_volume(hu, meta, "tiny-in-ct-lungs")
    lungs = segment_lungs(hu, spacing) > 0
    assert labels.any() and not labels[~lungs].any()  # nothing outside the lungs
    plain = client.segment_volume(hu, meta, "tiny-infection")
    assert (plain[~lungs] == 2).sum() > 10_000  # the body wall, 'consolidation' to the model
    np.testing.assert_array_equal(labels[lungs], plain[lungs])  # inside: untouched
    lesions = info["labels"] >= 3
    # what the model finds on the phantom's lesions stays: they lie in the lungs (ct-lungs
    # fills enclosed lesions in; a few peripheral ones touch the chest wall)
    assert (labels[lesions] > 0).sum() > 0.85 * (plain[lesions] > 0).sum()


def test_restrict_to_mask_in_millimetres():
    labels = np.ones((1, 1, 21), np.uint8)
    mask = np.zeros_like(labels, dtype=bool)
    mask[0, 0, 10] = True
    assert restrict_to_mask(labels.copy(), mask).nonzero()[2].tolist() == [10]
    kept = restrict_to_mask(labels.copy(), mask, dilate_mm=2.0, spacing=(1.0, 1.0, 0.5))
    assert kept.nonzero()[2].tolist() == list(range(6, 15))  # 2 mm = 4 columns each side
    with pytest.raises(ValueError, match="does not match"):
        restrict_to_mask(labels, mask[:, :, :5])


def test_restrict_to_mask_touching_keeps_what_reaches_the_lung():
    """A finding that reaches into the lung stays (within the margin); an island in the
    margin that does not touch the lung goes; beyond the margin everything goes."""
    lung = np.zeros((3, 9, 30), bool)
    lung[:, 2:7, 2:12] = True
    labels = np.zeros(lung.shape, np.uint8)
    labels[1, 3:6, 9:16] = 2  # consolidation from inside the lung out to the chest wall
    labels[1, 3:6, 18:20] = 1  # an island 6 columns (mm) out: in the 8 mm margin
    labels[1, 3:6, 24:27] = 1  # far out: beyond the margin
    margin = restrict_to_mask(labels.copy(), lung, dilate_mm=8.0)
    assert margin[1, 3:6, 18:20].all() and not margin[:, :, 21:].any()
    kept = restrict_to_mask(labels.copy(), lung, dilate_mm=8.0, touching=True)
    assert (kept[1, 3:6, 9:16] == 2).all()  # whole, also the part outside the lung
    assert not kept[:, :, 17:].any()


def test_postprocessing_and_batch_size_are_checked(ct_models):
    import json

    data = json.loads((ct_models / "tiny-restricted" / "model.json").read_text())
    spec = ModelSpec.from_dict(data, ct_models / "tiny-restricted")
    assert spec.lungs_model == "tiny-ctlungs" and spec.helper_models == ("tiny-ctlungs",)
    assert spec.batch_size == 8
    for bad, message in [
        ({"postprocessing": [{"op": "grow"}]}, "must have an op in within_lungs"),
        (
            {"postprocessing": [{"op": "within_lungs", "model": "tiny-restricted"}]},
            "must name another model",
        ),
        (
            {"postprocessing": [{"op": "within_lungs", "model": "x", "radius": 1}]},
            "unknown parameter(s) radius",
        ),
        ({"batch_size": 0}, "batch_size must be 1 to 1024"),
    ]:
        with pytest.raises(ModelSpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
            ModelSpec.from_dict({**data, **bad}, ct_models)


def test_classical_spec_parsing(tmp_path):
    from ai.registry import WeightsError, verify_weights

    spec = Registry([shipped_models_dir()]).get("ct-lungs")
    assert spec.is_classical and spec.method == "ct_lungs" and spec.modalities == ("CT",)
    assert spec.input is None and spec.weights_path is None and spec.preprocessing == ()
    assert spec.labels == {0: "background", 1: "right lung", 2: "left lung"}
    with pytest.raises(WeightsError, match="classical model: it has no weights"):
        verify_weights(spec)
    good = {
        "format": 1,
        "name": "x",
        "version": "1",
        "task": "segmentation",
        "backend": "classical",
        "method": "ct_lungs",
        "labels": {"0": "bg", "1": "lung"},
    }
    for change, message in [
        ({"method": "os.system"}, "method 'os.system' must be one of ct_lungs"),
        ({"backend": "torch"}, "backend 'torch' must be one of keras, classical"),
        ({"weights": {"file": "m.keras", "sha256": "0" * 64}}, "classical model has no 'weights'"),
        ({"task": "classification", "classes": ["a", "b"]}, "must have task 'segmentation'"),
    ]:
        with pytest.raises(ModelSpecError, match=message):
            ModelSpec.from_dict({**good, **change}, tmp_path)


def test_classical_model_through_the_2d_segment_request(client):
    """The 2D Segment request (lung_crop's) also runs a classical model: 0/1 probabilities."""
    from viewer.core.demo.phantom import chest_phantom

    hu, info = chest_phantom((40, 128, 128), (7.5, 2.8, 2.8), seed=0)
    meta = {"modality": "CT", "photometric": "MONOCHROME2", "pixel_spacing_mm": (2.8, 2.8)}
    probs = client.segment(hu[20], meta, "ct-lungs")
    assert probs.shape == (3, 128, 128) and set(np.unique(probs)) == {0.0, 1.0}
    np.testing.assert_array_equal(probs.sum(axis=0), 1.0)
    truth = info["labels"][20]
    right = probs[1] > 0.5
    assert 2 * (right & (truth == 1)).sum() / (right.sum() + (truth == 1).sum()) > 0.85
    with pytest.raises(Exception, match="works on CT images"):
        client.segment(hu[20], {**meta, "modality": "OT"}, "ct-lungs")
