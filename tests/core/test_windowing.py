"""Window/level: the DICOM linear VOI function, presets, parsing, dragging, auto window."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from viewer.core.windowing import (
    PRESETS,
    WindowLevel,
    apply_window,
    auto_window,
    parse_window,
    window_from_drag,
)


def _dicom_linear(x, c, w):
    """PS3.3 C.11.2.1.2.1 written out literally, float64, y in 0..255."""
    x = np.asarray(x, dtype=np.float64)
    y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255
    y = np.where(x <= c - 0.5 - (w - 1) / 2, 0, y)
    y = np.where(x > c - 0.5 + (w - 1) / 2, 255, y)
    return y


def test_presets_in_number_key_order():
    assert list(PRESETS) == ["lung", "mediastinum", "bone", "brain", "abdomen"]
    assert PRESETS["lung"] == WindowLevel(-600, 1500)
    assert PRESETS["mediastinum"] == WindowLevel(40, 400)
    assert PRESETS["bone"] == WindowLevel(400, 1800)
    assert PRESETS["brain"] == WindowLevel(40, 80)
    assert PRESETS["abdomen"] == WindowLevel(50, 350)
    with pytest.raises(TypeError):
        PRESETS["mine"] = WindowLevel(0, 10)


def test_window_level_validates_width():
    with pytest.raises(ValueError, match=">= 1"):
        WindowLevel(0, 0.5)
    with pytest.raises(ValueError):
        WindowLevel(float("nan"), 100)
    wl = WindowLevel(40, 400)
    assert (wl.lower, wl.upper) == (-160.0, 239.0)
    assert wl.as_tuple() == (40.0, 400.0)


@pytest.mark.parametrize("wl", [WindowLevel(40, 400), WindowLevel(-600, 1500), WindowLevel(3, 2)])
def test_apply_window_matches_dicom_formula_at_boundaries(wl):
    lo, hi = wl.lower, wl.upper
    x = np.array([lo - 1000, lo - 0.25, lo, lo + 0.25, hi - 0.25, hi, hi + 1e-3, hi + 1000])
    got = apply_window(x, wl)
    assert got.dtype == np.uint8
    assert got[0] == got[1] == got[2] == 0
    assert got[5] == got[6] == got[7] == 255
    np.testing.assert_allclose(got, np.rint(_dicom_linear(x, wl.center, wl.width)), atol=1)


def test_apply_window_matches_dicom_formula_everywhere_on_ct_values():
    x = np.arange(-1024, 3072, dtype=np.int16).reshape(64, 64)
    wl = WindowLevel(40, 400)
    got = apply_window(x, wl).astype(int)
    expected = np.rint(_dicom_linear(x, 40, 400))
    assert np.abs(got - expected).max() <= 1
    assert (got == expected).mean() > 0.99
    assert got[x == -160].item() == 0 and got[x == 239].item() == 255
    assert got[x == 240].item() == 255 and got[x == -161].item() == 0


def test_apply_window_width_one_is_a_threshold():
    x = np.array([9.0, 9.5, 9.6, 10.0, 11.0])
    np.testing.assert_array_equal(apply_window(x, WindowLevel(10, 1)), [0, 0, 255, 255, 255])


def test_apply_window_invert_out_and_nan():
    x = np.array([[-2000.0, 40.0, np.nan, 5000.0]])
    wl = WindowLevel(40, 400)
    out = np.zeros(x.shape, dtype=np.uint8)
    result = apply_window(x, wl, invert=True, out=out)
    assert result is out
    assert out[0, 0] == 255 and out[0, 3] == 0 and out[0, 2] == 255
    assert out[0, 1] == 255 - apply_window(x, wl)[0, 1]
    with pytest.raises(ValueError):
        apply_window(x, wl, out=np.zeros((2, 2), dtype=np.uint8))


def test_apply_window_on_volume_equals_per_slice():
    rng = np.random.default_rng(1)
    vol = rng.integers(-1024, 2000, size=(20, 300, 300), dtype=np.int16)  # > one block
    wl = WindowLevel(-600, 1500)
    whole = apply_window(vol, wl)
    for k in (0, 7, 19):
        np.testing.assert_array_equal(whole[k], apply_window(vol[k], wl))


def test_apply_window_on_a_slice_allocates_no_float64_temporaries():
    vol = np.zeros((8, 512, 512), dtype=np.int16)
    view = vol[3]
    apply_window(view, PRESETS["lung"])  # warm up
    tracemalloc.start()
    try:
        apply_window(view, PRESETS["lung"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # float32 temporary + uint8 result (5 bytes per pixel) plus slack; float64 would be 8+
    assert peak < view.size * 6


def test_parse_window():
    assert parse_window("lung") == WindowLevel(-600, 1500)
    assert parse_window("  Bone ") == PRESETS["bone"]
    assert parse_window("-600,1500") == WindowLevel(-600, 1500)
    assert parse_window("40 , 400.5") == WindowLevel(40, 400.5)


@pytest.mark.parametrize("text", ["liver", "", "40", "a,b", "1,2,3", "40,0", "nan,400"])
def test_parse_window_bad_input_lists_valid_names(text):
    with pytest.raises(ValueError) as err:
        parse_window(text)
    message = str(err.value)
    assert "\n" not in message
    for name in PRESETS:
        assert name in message


def test_parse_window_rejects_narrow_width():
    with pytest.raises(ValueError, match="width"):
        parse_window("40,0")


def test_window_from_drag_is_proportional_to_width():
    ct, xr = WindowLevel(40, 400), WindowLevel(2000, 4000)
    ct2, xr2 = window_from_drag(ct, 50, 0, 0.005), window_from_drag(xr, 50, 0, 0.005)
    assert ct2.width / ct.width == pytest.approx(xr2.width / xr.width)
    assert ct2.width > ct.width and ct2.center == ct.center
    down = window_from_drag(ct, 0, 20, 0.005)
    assert down.width == ct.width
    assert down.center - ct.center == pytest.approx(20 * 0.005 * 400)
    assert window_from_drag(xr, 0, 20, 0.005).center - xr.center == pytest.approx(400)
    back = window_from_drag(window_from_drag(ct, 80, 0), -80, 0)
    assert back.width == pytest.approx(ct.width)
    assert window_from_drag(ct, -10_000, 0).width == 1


def test_auto_window_maps_percentiles_to_black_and_white():
    rng = np.random.default_rng(0)
    image = rng.normal(1000, 100, size=(256, 256)).astype(np.float32)
    wl = auto_window(image)
    lo, hi = np.percentile(image, [0.5, 99.5])
    assert wl.lower == pytest.approx(lo, abs=1e-3) and wl.upper == pytest.approx(hi, abs=1e-3)
    grey = apply_window(image, wl)
    assert 0.003 < (grey == 0).mean() < 0.01 and 0.003 < (grey == 255).mean() < 0.01


def test_auto_window_big_volume_constant_and_nan():
    vol = np.full((40, 200, 200), 7, dtype=np.int16)
    vol[:, :100] = 1000
    wl = auto_window(vol)
    assert wl.lower == pytest.approx(7) and wl.upper == pytest.approx(1000)
    const = auto_window(np.full((4, 4), 5.0))
    assert const.width == 1 and apply_window(np.array([5.0, 6.0]), const).tolist() == [0, 255]
    assert auto_window(np.array([np.nan, 0.0, 1.0])).width >= 1
    assert auto_window(np.array([np.nan])).width == 1
