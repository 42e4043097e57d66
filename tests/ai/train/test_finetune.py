"""Fine-tuning a segmentation model on radview label exports (ai.train.finetune).

A tiny 3-class U-Net stands in for ct-infection; the series is a synthetic CT written as
DICOM (viewer.core.demo.writer) and the labels are exported the way radview exports them
(viewer.core.export.label_files.write_label_nifti: NIfTI + sidecar).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from ai import transforms
from ai.__main__ import main
from ai.model_spec import ModelSpec
from ai.registry import sha256_file
from ai.train import card, finetune
from viewer.core.demo.writer import write_series
from viewer.core.export.label_files import write_label_nifti
from viewer.core.labelmap import LabelMap
from viewer.core.study_index import build_index, load_series

SIZE = 32
LABELS = {"0": "background", "1": "ground-glass opacity", "2": "consolidation"}


def _model_folder(folder, base=2, depth=1):
    """A untrained 3-class U-Net in ``folder`` with a valid model.json and a card."""
    from ai.train.common import setup_tf
    from ai.train.models import unet

    setup_tf(0, 2)
    folder.mkdir()
    net = unet((SIZE, SIZE, 1), base=base, depth=depth, n_classes=3, name="tiny")
    net.save(folder / "model.keras")
    (folder / "MODEL_CARD.md").write_text(f"# Model card: {folder.name}\n\nbase card text\n")
    card.write_spec(
        folder,
        {
            "format": 1,
            "name": folder.name,
            "version": "1.0.0",
            "task": "segmentation",
            "modalities": ["CT"],
            "input": {"height": SIZE, "width": SIZE, "channels": 1},
            "preprocessing": [
                {"op": "window", "center": -520, "width": 1250},
                {"op": "letterbox", "height": SIZE, "width": SIZE},
            ],
            "labels": LABELS,
            "weights": {"file": "model.keras", "sha256": ""},
            "metrics": {"cross_validation": {"mean_dice": [0.5, 0.4, 0.6]}},
            "card": "MODEL_CARD.md",
        },
    )
    return folder


@pytest.fixture(scope="module")
def base_model(tmp_path_factory):
    """A tiny untrained 3-class model folder."""
    return _model_folder(tmp_path_factory.mktemp("models") / "tiny-inf")


def _chest(n=10, rows=40, cols=48):
    """HU volume: air, body (40 HU), two lungs (-850 HU) on slices 0..n-1."""
    hu = np.full((n, rows, cols), -1000, dtype=np.int16)
    hu[:, 4:36, 3:45] = 40
    hu[:, 8:32, 6:22] = -850
    hu[:, 8:32, 26:42] = -850
    return hu


NAMES = {3: "Ground-Glass Opacity", 4: "consolidation", 9: "left lung"}


def _export(tmp_path, names=None, labelled=range(2, 9), sidecar=True):
    """Series in tmp/src, labels exported to tmp/masks/case1.nii.gz (+ case1.json)."""
    names = names or NAMES
    hu = _chest()
    labels = np.zeros(hu.shape, np.uint8)
    for k in labelled:
        hu[k, 12:20, 8:16] = -450  # ground-glass
        labels[k, 12:20, 8:16] = 3
        hu[k, 22:28, 30:38] = 30  # consolidation
        labels[k, 22:28, 30:38] = 4
    labels[:, 8:32, 26:30] = np.where(labels[:, 8:32, 26:30] == 0, 9, labels[:, 8:32, 26:30])
    src = tmp_path / "src"
    write_series(hu, src, spacing=(5.0, 0.8, 0.8), origin=(-20.0, -20.0, 0.0))
    volume = load_series(build_index(src).series[0])
    lm = LabelMap.from_names(volume.geometry, labels, names)
    masks = tmp_path / "masks"
    masks.mkdir()
    write_label_nifti(lm, masks / "case1.nii.gz", volume=volume, sidecar=sidecar)
    return volume, masks


def test_exports_are_mapped_by_name(tmp_path):
    volume, masks = _export(tmp_path)
    (e,) = finetune.read_exports(masks, {int(k): v for k, v in LABELS.items()})
    assert e.classes.shape == volume.geometry.shape
    assert e.matched == {1: ["Ground-Glass Opacity"], 2: ["consolidation"]}
    assert (e.classes[4, 12:20, 8:16] == 1).all() and (e.classes[4, 22:28, 30:38] == 2).all()
    assert e.classes[4, 10, 27] == 0  # "left lung" is not a model label -> background
    assert not e.classes[0].any() and not e.classes[9].any()
    labelled, empty = finetune.select_slices(e)
    assert labelled == list(range(2, 9))
    assert len(empty) == 2 and set(empty) <= {0, 1, 9}  # ceil(7 / 4) aerated-lung negatives


def test_labels_follow_the_model_geometry(tmp_path, base_model):
    volume, masks = _export(tmp_path)
    spec = ModelSpec.load(base_model)
    (e,) = finetune.read_exports(masks, spec.labels)
    pipeline = spec.pipeline()
    x, record = pipeline.forward(np.asarray(volume.array[4], np.float32), {"modality": "CT"})
    grid = finetune.to_model_grid(pipeline, record, e.classes[4], 3)
    # the same letterbox applied to the GGO mask as an image
    geo = transforms.build_pipeline(spec.preprocessing[-1:])
    ggo, _ = geo.forward((e.classes[4] == 1).astype(np.float32), {})
    assert grid.shape == (SIZE, SIZE)
    assert np.array_equal(grid == 1, ggo > 0.5)
    # 48 wide -> 32: rows 40 -> 27 (letterboxed rows 2..28); nothing labelled in the padding
    assert not grid[:2].any() and not grid[-3:].any()
    # training inputs are the inference inputs
    xs, ys = finetune.build_arrays([e], spec, [(e, 4)])
    assert np.array_equal(xs[0, ..., 0], x) and np.array_equal(ys[0].argmax(-1), grid)


def test_finetune_writes_a_new_version_and_keeps_the_base(tmp_path, base_model):
    _, masks = _export(tmp_path)
    before = {p.name: sha256_file(p) for p in base_model.iterdir()}
    out = finetune.finetune_segmentation(
        str(base_model), masks, epochs=2, out_root=tmp_path / "user"
    )
    assert {p.name: sha256_file(p) for p in base_model.iterdir()} == before
    assert out.parent == tmp_path / "user" and out.name.startswith("tiny-inf-ft-")
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary left
    spec = ModelSpec.load(out)
    assert spec.name == out.name and spec.version == "1.0.0-ft.1"
    assert spec.labels == {0: "background", 1: "ground-glass opacity", 2: "consolidation"}
    assert spec.weights_sha256 == sha256_file(out / "model.keras")
    assert spec.weights_sha256 != ModelSpec.load(base_model).weights_sha256
    assert spec.preprocessing == ModelSpec.load(base_model).preprocessing
    ft = spec.training["fine_tuned"]
    assert ft["base"]["name"] == "tiny-inf" and ft["n_labelled_slices"] == 7
    assert ft["n_held_out_slices"] == 2 and ft["n_train_slices"] == 5 + 2
    held = spec.metrics["fine_tuning_held_out"]
    for when in ("before", "after"):
        assert set(held[when]) == {"ground-glass opacity", "consolidation", "mean"}
        assert all(v is None or 0 <= v <= 1 for v in held[when].values())
    text = (out / "MODEL_CARD.md").read_text()
    assert "Research use only" in text and "Fine-tuned from `tiny-inf` version 1.0.0" in text
    assert "base card text" in text
    # the fine-tuned model can be fine-tuned again: the version counts up, the name does not grow
    again = finetune.finetune_segmentation(str(out), masks, epochs=1, out_root=tmp_path / "user")
    assert ModelSpec.load(again).version == "1.0.0-ft.2"
    assert again.name.startswith("tiny-inf-ft-") and again.name.count("-ft-") == 1


def test_missing_sidecar_is_a_clear_error(tmp_path, base_model):
    _, masks = _export(tmp_path, sidecar=False)
    with pytest.raises(finetune.FinetuneError, match=r"case1.nii.gz: no sidecar case1.json"):
        finetune.finetune_segmentation(str(base_model), masks, out_root=tmp_path / "u")
    assert not (tmp_path / "u").exists() or not any((tmp_path / "u").iterdir())


def test_missing_source_folder_is_a_clear_error(tmp_path, base_model):
    _, masks = _export(tmp_path)
    shutil.rmtree(tmp_path / "src")
    with pytest.raises(finetune.FinetuneError, match=r"source folder .*src.* is missing"):
        finetune.finetune_segmentation(str(base_model), masks, out_root=tmp_path / "u")


def test_images_option_replaces_the_source_folder(tmp_path, base_model):
    _, masks = _export(tmp_path)
    moved = tmp_path / "moved"
    shutil.move(tmp_path / "src", moved)
    (e,) = finetune.read_exports(masks, ModelSpec.load(base_model).labels, images_dir=moved)
    assert e.classes.any()


def test_no_matching_label_is_a_clear_error(tmp_path, base_model):
    _, masks = _export(tmp_path, names={3: "nodule", 4: "effusion", 9: "left lung"})
    with pytest.raises(
        finetune.FinetuneError,
        match=r"no label matches the model's "
        r"\(ground-glass opacity, consolidation\); the export has: effusion",
    ):
        finetune.finetune_segmentation(str(base_model), masks, out_root=tmp_path / "u")


def test_wrong_series_uid_is_a_clear_error(tmp_path, base_model):
    _, masks = _export(tmp_path)
    side = masks / "case1.json"
    doc = json.loads(side.read_text())
    doc["source"]["series_uid"] = "1.2.3.4"
    side.write_text(json.dumps(doc))
    with pytest.raises(finetune.FinetuneError, match=r"no series with UID 1.2.3.4"):
        finetune.read_exports(masks, ModelSpec.load(base_model).labels)


def test_cli(tmp_path, base_model, capsys):
    _, masks = _export(tmp_path)
    rc = main(
        [
            "finetune",
            "segmentation",
            "--model",
            str(base_model),
            "--masks",
            str(masks),
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "user"),
        ]
    )
    assert rc == 0
    (out,) = (tmp_path / "user").iterdir()
    assert f"wrote {out}" in capsys.readouterr().out
    assert (
        "python -m ai finetune segmentation"
        in ModelSpec.load(out).training["fine_tuned"]["command"]
    )
    rc = main(["finetune", "segmentation", "--model", "no-such-model", "--masks", str(masks)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and "no-such-model" in err
    assert len(err.strip().splitlines()) == 1


def test_finetuning_learns_the_corrected_labels(tmp_path):
    """On a learnable synthetic task, the held-out Dice rises well above the base model's."""
    model = _model_folder(tmp_path / "small-inf", base=8, depth=2)
    _, masks = _export(tmp_path, labelled=range(0, 10))
    out = finetune.finetune_segmentation(
        str(model), masks, epochs=60, lr=3e-3, out_root=tmp_path / "user"
    )
    held = ModelSpec.load(out).metrics["fine_tuning_held_out"]
    assert held["n_slices"] == 2
    assert held["after"]["ground-glass opacity"] > 0.6
    assert held["after"]["mean"] > (held["before"]["mean"] or 0) + 0.3
