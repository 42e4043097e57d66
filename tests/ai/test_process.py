"""The AI process: shared-memory classify, cancel, crash recovery, no TensorFlow in the parent."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ai.classify import Cancelled
from ai.process.client import AIClient, AIProcessError, AIRequestError
from ai.registry import Registry

MONO2 = {"photometric": "MONOCHROME2", "modality": "CR"}


def _shm_blocks() -> set[str]:
    return (
        {n for n in os.listdir("/dev/shm") if n.startswith("psm_")}
        if os.path.isdir("/dev/shm")
        else set()
    )


@pytest.fixture(scope="module")
def client(models_dir):
    before = _shm_blocks()
    c = AIClient(Registry([models_dir]), request_timeout=120)
    yield c
    c.close()
    assert c.pid is None
    assert _shm_blocks() <= before, "shared memory blocks were leaked"


def test_classify_through_the_ai_process_matches_in_process(client, models_dir, helpers):
    image = helpers.chest_like(60, 90)
    seen = []
    pred = client.classify(image, MONO2, "tiny-cam", progress=lambda f, m: seen.append((f, m)))
    assert pred.model == "tiny-cam" and pred.version == "0.0.1" and pred.device == "CPU"
    assert set(pred.probabilities) == {"covid", "other"}
    assert sum(pred.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert pred.label == max(pred.probabilities, key=pred.probabilities.get)
    assert pred.cam.shape == (60, 90) and pred.cam.dtype == np.float32
    assert pred.cam.min() >= 0 and 0.8 < pred.cam.max() <= 1.0
    assert seen and seen[-1][0] == 1.0
    # the same numbers as in this process (the image crossed the boundary intact)
    pytest.importorskip("keras")
    from ai.backends import keras_backend
    from ai.classify import classify_image

    spec = client.spec("tiny-cam")
    local = classify_image(image, MONO2, spec, keras_backend.load_model(spec.weights_path))
    for name, p in local.probabilities.items():
        assert pred.probabilities[name] == pytest.approx(p, abs=1e-5)
    np.testing.assert_allclose(pred.cam, local.cam, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.uint8, np.float64, np.int32])
def test_stored_pixel_types_give_the_float32_result(client, helpers, dtype):
    """8/16-bit images cross the shared memory unconverted (the child makes float32); the
    result is the one of the same values as float32."""
    image = np.round(helpers.chest_like(60, 90) / 15)  # 50..220: fits every dtype
    ref = client.classify(image.astype(np.float32), MONO2, "tiny-cam")
    pred = client.classify(image.astype(dtype), MONO2, "tiny-cam")
    for name, p in ref.probabilities.items():
        assert pred.probabilities[name] == pytest.approx(p, abs=1e-6)
    np.testing.assert_allclose(pred.cam, ref.cam, atol=1e-6)


def test_classify_reuses_its_shared_memory_blocks(client, helpers):
    """The image and CAM blocks stay from one classify to the next (same names), a larger
    image replaces them (the old ones unlinked), and a smaller one after it is still right."""
    small, large = helpers.chest_like(60, 90), helpers.chest_like(120, 150, seed=1)
    first = client.classify(small, MONO2, "tiny-cam")
    blocks = _shm_blocks()
    again = client.classify(small, MONO2, "tiny-cam")
    assert _shm_blocks() == blocks
    np.testing.assert_array_equal(again.cam, first.cam)
    assert again.probabilities == first.probabilities
    big = client.classify(large, MONO2, "tiny-cam")
    assert big.cam.shape == (120, 150)
    grown = _shm_blocks()
    assert len(grown) == len(blocks) and grown != blocks  # replaced, not added
    back = client.classify(small, MONO2, "tiny-cam")  # a view of part of the larger blocks
    assert _shm_blocks() == grown and back.cam.shape == (60, 90)
    np.testing.assert_allclose(back.cam, first.cam, atol=1e-6)
    for name, value in first.probabilities.items():
        assert back.probabilities[name] == pytest.approx(value, abs=1e-6)


def test_gradcam_and_lung_crop_models(client, helpers):
    image = helpers.chest_like(60, 90)
    pred = client.classify(image, MONO2, "tiny-gradcam")
    assert pred.cam.shape == (60, 90) and pred.cam_class == pred.label
    # tiny-crop crops to tiny-lungs' mask (the bright block rows 20-40, cols 50-75)
    pred = client.classify(image, MONO2, "tiny-crop")
    assert pred.cam.shape == (60, 90)
    assert pred.cam[:, :45].max() == 0 and pred.cam[:15].max() == 0
    assert pred.cam[20:40, 50:75].max() > 0


def test_segment_through_the_ai_process(client, helpers):
    probs = client.segment(helpers.chest_like(60, 90), MONO2, "tiny-lungs")
    assert probs.shape == (2, 60, 90) and probs.dtype == np.float32
    assert probs[1, 25:35, 55:70].mean() > 0.9 and probs[1, :15].mean() < 0.1


def test_cancel_is_acknowledged_and_the_process_survives(client, helpers):
    image = helpers.chest_like(40, 40)
    client.classify(image, MONO2, "tiny-cam")  # model loaded
    pid = client.pid
    with pytest.raises(Cancelled):
        client.classify(image, MONO2, "tiny-cam", cancelled=lambda: True)
    assert client.pid == pid
    assert client.classify(image, MONO2, "tiny-cam").cam.shape == (40, 40)


def test_killed_process_is_reported_and_restarted(client, helpers):
    image = helpers.chest_like(50, 30)
    client.classify(image, MONO2, "tiny-cam")
    old = client.pid

    def kill_it(fraction, message):
        os.kill(old, signal.SIGKILL)

    with pytest.raises(
        AIProcessError,
        match=r"stopped unexpectedly \(exit code -9\); it will "
        r"be restarted",
    ):
        client.classify(image, MONO2, "tiny-cam", progress=kill_it)
    assert client.pid is None
    pred = client.classify(image, MONO2, "tiny-cam")
    assert client.pid not in (None, old) and pred.cam.shape == (50, 30)


def test_weights_that_do_not_match_are_refused_by_the_process(client, models_dir, tmp_path):
    folder = tmp_path / "tiny-cam"
    shutil.copytree(models_dir / "tiny-cam", folder)
    with open(folder / "model.keras", "ab") as f:
        f.write(b"tampered")
    spec = Registry([tmp_path]).get("tiny-cam")
    with pytest.raises(AIRequestError, match="does not match model.json") as info:
        client.load_model(spec)
    assert info.value.kind == "model"


def test_bad_image_is_an_input_error(client):
    with pytest.raises(ValueError, match="2D image"):
        client.classify(np.zeros((2, 3, 4)), MONO2, "tiny-cam")
    with pytest.raises(AIRequestError) as info:
        client.classify(np.zeros((4, 4)), {**MONO2}, "tiny-cam", cam_class="flu")
    assert info.value.kind == "input"


def test_closed_client_refuses(models_dir):
    c = AIClient(Registry([models_dir]))
    c.close()
    with pytest.raises(AIProcessError, match="closed"):
        c.classify(np.zeros((4, 4)), MONO2, "tiny-cam")
    assert c.pid is None


def test_the_parent_never_imports_tensorflow(models_dir):
    probe = textwrap.dedent(f"""
        import sys
        import numpy as np
        from ai.process.client import AIClient
        from ai.registry import Registry
        with AIClient(Registry([{str(models_dir)!r}])) as client:
            pred = client.classify(np.random.rand(40, 50).astype(np.float32),
                                   {{"photometric": "MONOCHROME1", "modality": "CR"}}, "tiny-cam")
        assert pred.cam.shape == (40, 50), pred
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras")))
    """)
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=os.getcwd()
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
