"""Photometry on synthetic frames with known truth: grey card cast and level, vignetting."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.photometry import (FlatField, FlatFieldCriteria, GreyCardCriteria,
                                    GreyCardNotFound, find_grey_card, inset_quad, quad_mask,
                                    measure_flat_field, measure_grey_card)
from tests.calibration import synthetic

CAST = (1.25, 1.0, 0.8)       # the light is reddish: red high, blue low


@pytest.fixture(scope="module")
def card_scene():
    return synthetic.scene(card=True)


def test_the_grey_card_is_found_where_it_lies(card_scene):
    frame = synthetic.capture(card_scene.radiance, cast=CAST, noise=1.5)
    corners = find_grey_card(frame)
    truth_centre = synthetic.CARD_CORNERS.mean(axis=0)
    assert np.linalg.norm(corners.mean(axis=0) - truth_centre) < 3
    # Found inside the card, not beyond it: within 8 px of each true corner.
    assert np.abs(corners - synthetic.CARD_CORNERS).max() < 8


def test_colour_cast_gives_white_balance_and_a_second_frame_passes(card_scene):
    first = synthetic.capture(card_scene.radiance, cast=CAST, exposure=0.8, noise=1.5)
    card = measure_grey_card(first, exposure_us=8000)
    assert not card.passed and card.found_automatically
    assert card.cast_percent[0] > 15 and card.cast_percent[2] < -15
    # Known truth: gains undo the cast, relative to green.
    np.testing.assert_allclose(card.white_balance, (1 / 1.25, 1.0, 1 / 0.8), rtol=0.01)
    assert not card.level_ok and card.suggested_exposure_us > 8000
    assert any("not neutral" in failure for failure in card.failures)
    assert any("too dark" in failure for failure in card.failures)
    # The camera applies the proposal; the new frame passes.
    exposure = card.suggested_exposure_us
    second = synthetic.capture(card_scene.radiance, cast=CAST, exposure=0.8 * exposure / 8000,
                               white_balance=card.white_balance, noise=1.5, seed=2)
    again = measure_grey_card(second, exposure_us=exposure, white_balance=card.white_balance)
    assert again.passed, again.failures
    assert again.max_cast_percent < 1.0
    assert again.level == pytest.approx(GreyCardCriteria().target_level, abs=0.02)
    np.testing.assert_allclose(again.white_balance, card.white_balance, rtol=0.01)


def test_clipped_card_is_reported_and_exposure_lowered(card_scene):
    frame = synthetic.capture(card_scene.radiance, exposure=2.6, noise=1.5)
    card = measure_grey_card(frame, synthetic.CARD_CORNERS, exposure_us=8000)
    assert not card.found_automatically
    assert set(card.clipped_channels) == {"red", "green", "blue"}
    assert card.suggested_exposure_us <= 4000
    assert any("clipped" in failure for failure in card.failures)


def test_a_given_rectangle_region_and_no_card(card_scene):
    frame = synthetic.capture(card_scene.radiance, noise=1.0)
    card = measure_grey_card(frame, (430, 310, 100, 90))
    assert card.level == pytest.approx(110 / 255, abs=0.01) and card.passed  # 43 %: in band
    plain = synthetic.tray_frame()
    with pytest.raises(GreyCardNotFound, match="no grey card found"):
        measure_grey_card(plain)
    with pytest.raises(ValueError, match="outside the frame"):
        measure_grey_card(plain, (2000, 2000, 50, 50))


@pytest.fixture(scope="module")
def empty_tray():
    return synthetic.scene(textured=False)


@pytest.mark.parametrize("strength", [0.2, 0.35])
def test_flat_field_recovers_known_vignetting(empty_tray, strength):
    frame = synthetic.capture(empty_tray.radiance, vignette=strength, noise=1.5)
    measured = measure_flat_field(frame, synthetic.TRAY_CORNERS)
    region = np.asarray(measured.region)
    shape = frame.shape[:2]
    truth = 100 * (1 - synthetic.vignetting_at(region, shape, strength)
                   / synthetic.vignetting_at(np.array([measured.centre]), shape, strength))
    np.testing.assert_allclose(measured.corner_falloff_percent, truth, atol=1.0)
    assert measured.residual_percent < 1.5
    assert measured.passed == (max(truth) <= FlatFieldCriteria().max_falloff_percent)
    # Applying the stored correction flattens the tray.
    mask = quad_mask(shape, region)
    before = frame[..., 1][mask].astype(float)
    after = measured.flat_field.apply(frame)[..., 1][mask].astype(float)
    assert before.std() / before.mean() > 0.05
    assert after.std() / after.mean() < 0.015
    assert measured.preview.shape == (48, 64)


def test_flat_field_ignores_dirt_but_reports_it(empty_tray):
    clean = synthetic.capture(empty_tray.radiance, vignette=0.2, noise=1.5)
    dirty = clean.copy()
    dirty[300:340, 420:470] = 40                  # a dark object left in the tray
    clean_fit = measure_flat_field(clean, synthetic.TRAY_CORNERS)
    dirty_fit = measure_flat_field(dirty, synthetic.TRAY_CORNERS)
    np.testing.assert_allclose(dirty_fit.corner_falloff_percent,
                               clean_fit.corner_falloff_percent, atol=1.0)
    assert dirty_fit.residual_percent > FlatFieldCriteria().max_residual_percent
    assert any("uneven" in failure for failure in dirty_fit.failures)


def test_flat_field_travels_through_other_resolutions_and_refuses_other_aspects():
    flat = FlatField(2, (1.0, 0.0, 0.0, -0.3, 0.0, -0.3), (400, 300))
    full = flat.brightness((300, 400))
    half = flat.brightness((150, 200))
    assert full[150, 200] == pytest.approx(1.0, abs=0.01)
    assert half[0, 0] == pytest.approx(full[0, 0], abs=0.02)
    with pytest.raises(ValueError, match="measure lighting uniformity again"):
        flat.gain_map((300, 300))
    with pytest.raises(ValueError, match="needs 6 coefficients"):
        FlatField(2, (1.0,), (400, 300))


def test_inset_quad_moves_every_side_in_by_the_fraction():
    square = np.array([[0, 0], [100, 0], [100, 100], [0, 100]], float)
    np.testing.assert_allclose(inset_quad(square, 0.1), [[10, 10], [90, 10], [90, 90],
                                                         [10, 90]], atol=1e-9)
