"""Preprocessing steps from model.json data, and their inverses for maps (no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

from ai.transforms import (
    TransformError,
    build_pipeline,
    build_step,
    output_shape,
    resample_linear,
)

MONO2 = {"photometric": "MONOCHROME2", "modality": "CR"}
MONO1 = {"photometric": "MONOCHROME1", "modality": "CR"}


def _run(step: dict, image, meta=MONO2, context=None):
    return build_pipeline([step], context).forward(image, meta)


def test_to_display_inverts_monochrome1_only():
    img = np.array([[0, 10], [20, 30]], dtype=np.float32)
    out, _ = _run({"op": "to_display", "invert_monochrome1": True}, img, MONO1)
    np.testing.assert_array_equal(out, [[30, 20], [10, 0]])
    out, _ = _run({"op": "to_display", "invert_monochrome1": True}, img, MONO2)
    np.testing.assert_array_equal(out, img)
    out, _ = _run({"op": "to_display", "invert_monochrome1": False}, img, MONO1)
    np.testing.assert_array_equal(out, img)


def test_window_follows_dicom_linear_formula():
    img = np.array([[-1000, -600, 40, 1000]], dtype=np.float32)
    out, _ = _run({"op": "window", "center": 40, "width": 400}, img)
    # PS3.3 C.11.2.1.2.1: ((x - (c - 0.5)) / (w - 1) + 0.5), clipped
    expected = np.clip((img - 39.5) / 399 + 0.5, 0, 1)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert out.dtype == np.float32


def test_percentile_scale_maps_percentiles_to_0_1():
    img = np.arange(10000, dtype=np.float32).reshape(100, 100)
    out, rec = _run({"op": "percentile_scale", "low": 1, "high": 99}, img)
    assert out.min() == 0 and out.max() == 1
    lo, hi = np.percentile(img, [1, 99])
    assert rec.steps[0].data["low"] == pytest.approx(lo)
    np.testing.assert_allclose(out[50, 50], (5050 - lo) / (hi - lo), atol=1e-6)
    flat, _ = _run({"op": "percentile_scale", "low": 1, "high": 99}, np.ones((4, 4)))
    assert not flat.any()


def test_clip():
    out, _ = _run({"op": "clip", "low": 0, "high": 1}, np.array([[-2, 0.5, 3]]))
    np.testing.assert_array_equal(out, [[0, 0.5, 1]])


def test_resize_half_pixel_convention_and_edges():
    img = np.array([[0, 1, 2], [3, 4, 5]], dtype=np.float32)
    up = resample_linear(img, (4, 6))
    assert up.shape == (4, 6) and up.dtype == np.float32
    # output pixel o samples input coordinate (o + 0.5) * n_in / n_out - 0.5
    assert up[0, 0] == pytest.approx(0.0)  # clamped at the edge
    assert up[1, 1] == pytest.approx(1.0)  # input (0.25, 0.25): 0.25 + 0.25 * 3
    assert up[-1, -1] == pytest.approx(5.0)
    # shrinking a constant keeps it; shrinking a checkerboard averages it (anti-aliasing)
    board = (np.indices((64, 96)).sum(axis=0) % 2).astype(np.float32)
    small = resample_linear(board, (8, 12))
    np.testing.assert_allclose(small, 0.5, atol=1e-6)


def test_letterbox_non_square_pads_and_keeps_aspect():
    img = np.ones((50, 100), dtype=np.float32)
    out, rec = _run({"op": "letterbox", "height": 64, "width": 64}, img)
    assert out.shape == (64, 64)
    top, left, nr, nc = rec.steps[0].data["inner"]
    assert (top, left, nr, nc) == (16, 0, 32, 64)
    assert out[:16].max() == 0 and out[48:].max() == 0 and out[16:48].min() == 1


def test_lung_crop_uses_the_segmenter_and_margin():
    img = np.zeros((100, 80), dtype=np.float32)
    calls = []

    def segment(name, image01):
        calls.append((name, image01.shape))
        mask = np.zeros(image01.shape, dtype=bool)
        mask[20:60, 10:50] = True
        return mask

    step = {"op": "lung_crop", "model": "cxr-lungs", "margin": 0.1}
    out, rec = _run(step, img, context={"segment": segment})
    assert calls == [("cxr-lungs", (100, 80))]
    assert rec.steps[0].data["box"] == (16, 64, 6, 54)
    assert out.shape == (48, 48)
    # no lung found: the whole image
    out, rec = _run(step, img, context={"segment": lambda n, i: np.zeros(i.shape, bool)})
    assert out.shape == (100, 80) and rec.steps[0].data["found"] is False
    with pytest.raises(TransformError, match="segmenter"):
        _run(step, img)


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"op": "eval", "code": "1"}, "unknown preprocessing op"),
        ({"op": "window", "center": 40}, "missing parameter 'width'"),
        ({"op": "window", "center": 40, "width": 400, "x": 1}, "unknown parameter 'x'"),
        ({"op": "letterbox", "height": 256.5, "width": 256}, "must be int"),
        ({"op": "to_display", "invert_monochrome1": 1}, "must be bool"),
        ({"op": "percentile_scale", "low": 99, "high": 1}, "low < high"),
        ("window", "must be an object"),
        ({"op": "clip", "low": 0, "high": 1, "modalities": "CT"}, "'modalities' must be"),
        ({"op": "clip", "low": 0, "high": 1, "modalities": []}, "'modalities' must be"),
    ],
)
def test_bad_steps_are_refused_with_one_line(bad, message):
    with pytest.raises(TransformError, match=message) as info:
        build_step(bad)
    assert "\n" not in str(info.value)


def test_output_shape():
    steps = [
        {"op": "percentile_scale", "low": 1, "high": 99},
        {"op": "letterbox", "height": 32, "width": 48},
    ]
    assert output_shape(steps) == (32, 48)
    assert output_shape(steps[:1]) is None


def _fake_lungs(image01):
    mask = np.zeros(image01.shape, dtype=bool)
    mask[30:150, 40:260] = True  # a 120 x 220 box in a 200 x 300 image
    return mask


FULL = [
    {"op": "to_display", "invert_monochrome1": True},
    {"op": "percentile_scale", "low": 0.5, "high": 99.5},
    {"op": "lung_crop", "model": "cxr-lungs", "margin": 0.05},
    {"op": "letterbox", "height": 64, "width": 64},
]


def test_forward_puts_a_marker_where_expected_on_a_non_square_image():
    img = np.zeros((200, 300), dtype=np.float32)
    img[99:102, 199:202] = 100.0  # a bright 3x3 spot centred on (100, 200)
    steps = [FULL[0], FULL[2], FULL[3]]  # a 9-pixel spot is above every percentile
    pipe = build_pipeline(steps, {"segment": lambda name, im: _fake_lungs(im)})
    x, rec = pipe.forward(img, MONO2)
    assert x.shape == (64, 64)
    # crop box (24, 156, 29, 271): 132 x 242, scale 64/242, inner rows 35 -> top 14
    assert rec.steps[1].data["box"] == (24, 156, 29, 271)
    top, left, nr, nc = rec.steps[2].data["inner"]
    assert (top, left, nr, nc) == (14, 0, 35, 64)
    peak = np.unravel_index(np.argmax(x), x.shape)
    expect_r = top + (100 - 24 + 0.5) * nr / 132 - 0.5
    expect_c = left + (200 - 29 + 0.5) * nc / 242 - 0.5
    assert abs(peak[0] - expect_r) <= 1 and abs(peak[1] - expect_c) <= 1


def test_inverse_puts_a_cam_peak_back_on_the_right_pixel_of_a_non_square_image():
    img = np.random.default_rng(0).random((200, 300)).astype(np.float32)
    pipe = build_pipeline(FULL, {"segment": lambda name, im: _fake_lungs(im)})
    x, rec = pipe.forward(img, MONO1)
    top, left, nr, nc = rec.steps[3].data["inner"]
    r0, _, c0, _ = rec.steps[2].data["box"]
    cam = np.zeros((64, 64), dtype=np.float32)
    cam[30, 40] = 1.0  # inside the letterboxed image rows 14..48
    back = pipe.inverse_map(cam, rec)
    assert back.shape == (200, 300) and back.dtype == np.float32
    # output pixel (30, 40) covers original coordinate (o - top + 0.5) * 132/35 - 0.5 + r0
    expect_r = (30 - top + 0.5) * 132 / nr - 0.5 + r0
    expect_c = (40 - left + 0.5) * 242 / nc - 0.5 + c0
    peak = np.unravel_index(np.argmax(back), back.shape)
    assert abs(peak[0] - expect_r) <= 1 and abs(peak[1] - expect_c) <= 1
    # outside the lung box nothing
    assert back[:r0].max() == 0 and back[:, :c0].max() == 0
    assert back.max() > 0.5


def test_inverse_of_a_full_map_is_one_inside_the_crop():
    pipe = build_pipeline(
        [
            {"op": "lung_crop", "model": "m", "margin": 0.0},
            {"op": "resize", "height": 16, "width": 16},
        ],
        {"segment": lambda name, im: _fake_lungs(im)},
    )
    _, rec = pipe.forward(np.zeros((200, 300), np.float32), MONO2)
    back = pipe.inverse_map(np.ones((16, 16), np.float32), rec)
    assert back[30:150, 40:260].min() == pytest.approx(1.0)
    assert back.sum() == pytest.approx(120 * 220)
    with pytest.raises(TransformError, match="not the output shape"):
        pipe.inverse_map(np.ones((8, 8)), rec)


def test_lung_mask_zeroes_outside_the_dilated_lungs_and_keeps_the_grid():
    img = np.full((100, 80), 0.5, dtype=np.float32)
    calls = []

    def segment(name, image01):
        calls.append((name, image01.shape))
        mask = np.zeros(image01.shape, dtype=bool)
        mask[40:60, 30:50] = True
        return mask

    # no dilation: exactly the mask
    out, rec = _run({"op": "lung_mask", "model": "cxr-lungs"}, img, context={"segment": segment})
    assert calls == [("cxr-lungs", (100, 80))]
    assert out.shape == (100, 80) and out.dtype == np.float32
    assert out[40:60, 30:50].min() == pytest.approx(0.5)
    assert out.sum() == pytest.approx(0.5 * 20 * 20)
    assert rec.steps[0].data["found"] is True and rec.steps[0].data["radius"] == 0
    # dilate 0.05 of max(100, 80) = a 5-pixel disc
    step = {"op": "lung_mask", "model": "cxr-lungs", "dilate": 0.05}
    out, rec = _run(step, img, context={"segment": segment})
    assert rec.steps[0].data["radius"] == pytest.approx(5.0)
    assert out[35, 40] == pytest.approx(0.5) and out[34, 40] == 0  # 5 px above, 6 px above
    assert out[50, 54] == pytest.approx(0.5) and out[50, 55] == 0
    assert out[35, 25] == 0  # corner: sqrt(50) > 5 away from the box corner
    assert out[37, 27] == pytest.approx(0.5)  # sqrt(18) <= 5
    # no lung found: unchanged
    out, rec = _run(step, img, context={"segment": lambda n, i: np.zeros(i.shape, bool)})
    assert np.array_equal(out, img) and rec.steps[0].data["found"] is False
    with pytest.raises(TransformError, match="segmenter"):
        _run(step, img)
    with pytest.raises(TransformError, match="dilate"):
        build_step({"op": "lung_mask", "model": "m", "dilate": -0.1})
    with pytest.raises(TransformError, match="mask shape"):
        _run(step, img, context={"segment": lambda n, i: np.ones((3, 3), bool)})


def test_lung_mask_inverse_is_identity():
    pipe = build_pipeline(
        [{"op": "lung_mask", "model": "m", "dilate": 0.01}],
        {"segment": lambda name, im: _fake_lungs(im)},
    )
    _, rec = pipe.forward(np.ones((200, 300), np.float32), MONO2)
    cam = np.random.default_rng(1).random((200, 300)).astype(np.float32)
    assert np.array_equal(pipe.inverse_map(cam, rec), cam)
    assert pipe.needs_segmenter == ["m"]


@pytest.mark.parametrize("mask_first", [True, False])
def test_lung_mask_composes_with_lung_crop_either_order(mask_first):
    img = np.random.default_rng(2).random((200, 300)).astype(np.float32) + 0.5
    mask_step = {"op": "lung_mask", "model": "cxr-lungs", "dilate": 0.0}
    crop_step = {"op": "lung_crop", "model": "cxr-lungs", "margin": 0.05}

    def segment(name, image01):
        # lungs at the same place in original coordinates, whatever grid is asked for
        if image01.shape == (200, 300):
            return _fake_lungs(image01)
        mask = np.zeros(image01.shape, dtype=bool)
        mask[6:126, 11:231] = True  # the fake lungs inside the crop box (24, 156, 29, 271)
        return mask

    steps = [mask_step, crop_step] if mask_first else [crop_step, mask_step]
    pipe = build_pipeline(
        [*steps, {"op": "resize", "height": 66, "width": 121}], {"segment": segment}
    )
    x, rec = pipe.forward(img, MONO2)
    crop_rec = rec.steps[1] if mask_first else rec.steps[0]
    assert crop_rec.data["box"] == (24, 156, 29, 271)
    assert x.shape == (66, 121)
    # the 6-row / 11-column band around the lungs in the crop is zero, the lungs are not
    assert x[:2].max() == 0 and x[:, :4].max() == 0 and x[-2:].max() == 0
    assert x[5:60, 8:112].min() > 0.4
    back = pipe.inverse_map(np.ones((66, 121), np.float32), rec)
    assert back.shape == (200, 300)
    assert back[30:150, 40:260].min() == pytest.approx(1.0)
    assert back[:24].max() == 0 and back[:, :29].max() == 0


def test_steps_limited_to_modalities_run_only_for_them():
    """HU CT gets the lung window, an 8-bit picture (OT) gets x / 256; both letterboxed, and
    the inverse skips the steps the forward pass skipped."""
    steps = [
        {"op": "window", "center": -520, "width": 1250, "modalities": ["CT"]},
        {"op": "window", "center": 128, "width": 256, "modalities": ["OT"]},
        {"op": "letterbox", "height": 16, "width": 16},
    ]
    pipeline = build_pipeline(steps)
    hu = np.full((8, 16), -520.0, np.float32)  # the window centre -> 0.5 (DICOM formula)
    x_ct, rec_ct = pipeline.forward(hu, {"modality": "CT", "photometric": "MONOCHROME2"})
    picture = np.full((8, 16), 200.0, np.float32)
    x_ot, rec_ot = pipeline.forward(picture, {"modality": "OT", "photometric": "MONOCHROME2"})
    assert x_ct[8, 8] == pytest.approx(0.5, abs=0.01)
    assert x_ot[8, 8] == pytest.approx((200 - 127.5) / 255 + 0.5, abs=0.01)  # DICOM formula
    assert [r.data.get("skipped", False) for r in rec_ct.steps] == [False, True, False]
    assert [r.data.get("skipped", False) for r in rec_ot.steps] == [True, False, False]
    # a map on the model grid comes back on the original grid either way
    ones = np.ones((16, 16), np.float32)
    assert pipeline.inverse_map(ones, rec_ct).shape == (8, 16)
    assert pipeline.inverse_map(ones, rec_ot).shape == (8, 16)
    # an unknown modality skips both windows: the raw values reach the letterbox
    x_mr, _ = pipeline.forward(picture, {"modality": "MR", "photometric": "MONOCHROME2"})
    assert x_mr[8, 8] == pytest.approx(200.0)


@pytest.mark.parametrize(
    "shape_in, shape_out",
    [((224, 224), (1662, 1815)), ((7, 9), (60, 90)), ((10, 10), (10, 37)), ((3, 3), (300, 1)),
     ((1, 1), (4, 5)), ((50, 40), (51, 41))],
)  # fmt: skip
def test_enlarging_in_numpy_gives_simpleitks_values(shape_in, shape_out):
    """Both axes growing (a CAM or probabilities put back on a radiograph) take the numpy
    path; it must give SimpleITK's linear resample, edges included."""
    from ai import resample

    rng = np.random.default_rng(sum(shape_in) + sum(shape_out))
    src = rng.random(shape_in, dtype=np.float32)
    reference = resample._resample_sitk(src, *shape_out, antialias=False)
    got = resample_linear(src, shape_out, antialias=False)
    assert got.dtype == np.float32 and got.shape == shape_out
    np.testing.assert_allclose(got, reference, atol=1e-6)
