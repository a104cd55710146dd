"""Oculus-15 → client weight sets: identity for oculus15, a pose matrix for ARKit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from presence.lipsync.base import VISEME_INDEX, VISEMES, rest_weights
from presence.lipsync.weightsets import ARKIT_NAMES, UnknownWeightSetError, quantize, to_weight_set
from presence.protocol.hello import WEIGHT_SETS


def one(viseme: str) -> np.ndarray:
    weights = np.zeros(len(VISEMES), dtype=np.float32)
    weights[VISEME_INDEX[viseme]] = 1.0
    return weights


def arkit(viseme: str) -> dict[str, float]:
    return dict(zip(ARKIT_NAMES, to_weight_set(one(viseme), "arkit").tolist(), strict=True))


def test_oculus15_is_the_identity() -> None:
    weights = np.linspace(0, 1, len(VISEMES), dtype=np.float32)
    assert np.array_equal(to_weight_set(weights, "oculus15"), weights)


def test_arkit_output_has_the_negotiated_names_and_order() -> None:
    assert WEIGHT_SETS["arkit"][1] == ARKIT_NAMES
    assert to_weight_set(rest_weights(), "arkit").shape == (len(ARKIT_NAMES),)


def test_rest_is_a_neutral_face() -> None:
    assert not to_weight_set(rest_weights(), "arkit").any()


def test_open_vowel_opens_the_jaw_most() -> None:
    jaw = {v: arkit(v)["jawOpen"] for v in VISEMES}
    assert max(jaw, key=lambda v: jaw[v]) == "aa"
    assert jaw["PP"] < 0.1 and jaw["aa"] > jaw["E"] > jaw["ih"]


def test_bilabials_press_the_lips_and_labiodentals_roll_the_lower_lip() -> None:
    pp, ff = arkit("PP"), arkit("FF")
    assert pp["mouthPressLeft"] == pp["mouthPressRight"] > 0.3
    assert ff["mouthRollLower"] > 0.3 and ff["mouthPressLeft"] == 0


def test_rounded_visemes_pucker_or_funnel_and_spread_ones_stretch() -> None:
    assert arkit("ou")["mouthPucker"] > 0.5
    assert arkit("oh")["mouthFunnel"] > 0.3
    assert arkit("CH")["mouthFunnel"] > 0.3
    assert arkit("ih")["mouthSmileLeft"] > 0 and arkit("E")["mouthStretchRight"] > 0
    assert arkit("ou")["mouthStretchLeft"] == 0


def test_th_shows_the_tongue_and_nothing_else_does() -> None:
    assert arkit("TH")["tongueOut"] > 0.3
    assert all(arkit(v)["tongueOut"] == 0 for v in VISEMES if v != "TH")


def test_a_blend_of_visemes_maps_to_the_blend_of_their_poses() -> None:
    mixed = 0.5 * one("aa") + 0.5 * one("ou")
    expected = 0.5 * to_weight_set(one("aa"), "arkit") + 0.5 * to_weight_set(one("ou"), "arkit")
    assert np.allclose(to_weight_set(mixed, "arkit"), expected)


def test_batches_map_row_by_row() -> None:
    batch = np.stack([one("PP"), one("aa")])
    assert np.allclose(to_weight_set(batch, "arkit")[1], to_weight_set(one("aa"), "arkit"))


def test_an_unknown_weight_set_is_refused() -> None:
    with pytest.raises(UnknownWeightSetError):
        to_weight_set(rest_weights(), "mpeg4")


@given(
    arrays(np.float32, len(VISEMES), elements=st.floats(width=32, allow_nan=True, allow_infinity=True)),
    st.sampled_from(["oculus15", "arkit"]),
)
def test_any_input_gives_finite_weights_in_unit_range(weights: np.ndarray, name: str) -> None:
    out = to_weight_set(weights, name)
    assert np.isfinite(out).all() and (out >= 0).all() and (out <= 1).all()


def test_quantize_rounds_to_bytes_and_survives_garbage() -> None:
    assert quantize(np.array([0.0, 1.0, 0.5, 0.2], np.float32)) == bytes([0, 255, 128, 51])
    assert quantize(np.array([np.nan, np.inf, -np.inf, -3.0, 7.0])) == bytes([0, 255, 0, 0, 255])


@given(arrays(np.float64, st.integers(0, 40), elements=st.floats(allow_nan=True, allow_infinity=True)))
def test_quantize_gives_one_byte_per_weight(weights: np.ndarray) -> None:
    assert len(quantize(weights)) == len(weights)
