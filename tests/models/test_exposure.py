"""ExposureInput: the photo scaled so that its face's mean luma is the
target, through `config.model.face_exposure`."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from f2s import config_lib
from f2s.models import ExposureInput, build_model, default_config
from f2s.models.exposure import FACE_BOX, column_offsets, light_slope
from f2s.colour import LUMA


class _Seen(nn.Module):
  """Returns the photo it is given as its logits."""

  @nn.compact
  def __call__(self, photo, **kwargs):
    return photo, {}


def _face_luma_numpy(photo01: np.ndarray) -> np.ndarray:
  """The face box's mean luma, written out in numpy (rows 70-200 and
  columns 55-145 of a 250x200 frame)."""
  h, w = photo01.shape[1:3]
  rows = slice(int(FACE_BOX[0][0] * h + 0.5), int(FACE_BOX[0][1] * h + 0.5))
  cols = slice(int(FACE_BOX[1][0] * w + 0.5), int(FACE_BOX[1][1] * w + 0.5))
  return (photo01[:, rows, cols] @ LUMA.astype(np.float64)).mean(axis=(1, 2))


# A float32 mean of the face box's n = 130 x 90 lumas is within n 2^-24
# (7e-4) of the exact mean, relatively: the bound on the gain's error. A
# wrong box or a missing gain would be off by tens of percent.
_MEAN_RTOL = 130 * 90 * 2.0 ** -24


def _photos(seed: int, scale: float) -> np.ndarray:
  """float32 (2, 250, 200, 3) photos in [0, scale]."""
  rng = np.random.default_rng(seed)
  return (rng.random((2, 250, 200, 3)) * scale).astype(np.float32)


def test_face_box_is_the_cuhk_frames_face():
  h, w = 250, 200
  assert (round(FACE_BOX[0][0] * h), round(FACE_BOX[0][1] * h)) == (70, 200)
  assert (round(FACE_BOX[1][0] * w), round(FACE_BOX[1][1] * w)) == (55, 145)


def test_dark_photo_is_scaled_to_the_target():
  """A photo whose brightest pixel stays below 1 after the gain: every pixel
  is multiplied by one number per photo, and the face's mean luma becomes
  the target, to _MEAN_RTOL. Each pixel's gain (read back in float64) is
  one float32 product away from its photo's: within 2^-23 of their mean,
  relatively."""
  photo = _photos(0, 0.25)  # face luma ~0.125: gain ~3.2, max 0.8
  photo[1] *= 0.5  # a second, darker photo gets its own gain
  seen, _ = ExposureInput(_Seen(), target=0.4, value_range='unit').apply(
      {}, jnp.asarray(photo))
  seen = np.asarray(seen)
  np.testing.assert_allclose(_face_luma_numpy(seen), [0.4, 0.4],
                             rtol=_MEAN_RTOL)
  gains = seen.astype(np.float64) / photo
  for i in range(2):
    np.testing.assert_allclose(gains[i], gains[i].mean(), rtol=2.0 ** -23)
  assert gains[1].mean() == pytest.approx(2 * gains[0].mean(),
                                          rel=2 * _MEAN_RTOL)


def test_bright_pixels_clip_and_exposure_is_undone():
  """The model sees the same photo however it was exposed, up to clipping
  (here none: both versions map below 1). Halving is exact in float32 and
  commutes with every rounding of the gain's sums and products, so the two
  exposed photos are bit-identical."""
  photo = _photos(1, 0.4)
  model = ExposureInput(_Seen(), target=0.75, value_range='unit')
  a, _ = model.apply({}, jnp.asarray(photo))
  b, _ = model.apply({}, jnp.asarray(photo * np.float32(0.5)))
  np.testing.assert_array_equal(a, b)
  bright, _ = model.apply({}, jnp.asarray(_photos(2, 1.0)))
  assert float(bright.max()) == 1.0 and float(bright.min()) >= 0


def test_symmetric_range_scales_the_same_image():
  """The two ranges' photos differ by a rounding per pixel, so their face
  means each carry their own rounding (_MEAN_RTOL): the exposed pixels, at
  most 1, agree to twice that, plus a few float32 steps of the range maps."""
  photo = _photos(3, 0.3)
  unit, _ = ExposureInput(_Seen(), 0.75, 'unit').apply({}, jnp.asarray(photo))
  symmetric, _ = ExposureInput(_Seen(), 0.75, 'symmetric').apply(
      {}, jnp.asarray(photo * 2 - 1))
  np.testing.assert_allclose((np.asarray(symmetric) + 1) / 2, unit,
                             atol=2 * _MEAN_RTOL + 2.0 ** -21)


def test_black_photo_stays_black():
  seen, _ = ExposureInput(_Seen(), 0.75, 'unit').apply(
      {}, jnp.zeros((1, 250, 200, 3)))
  assert np.all(np.isfinite(seen)) and float(jnp.abs(seen).max()) == 0


def test_build_model_wraps_outermost(make_rngs):
  config = default_config('casq', 'gan')
  config.update(config_lib.TINY_MODELS[('casq', 'gan')], face_exposure=0.75,
                grey_input=True)
  model = build_model(config, (32, 32, 1), value_range='unit')
  assert isinstance(model, ExposureInput) and model.target == 0.75
  photo = jax.random.uniform(jax.random.key(0), (2, 32, 32, 3)) * 0.3
  variables = jax.jit(model.init)(make_rngs(), photo)
  logits, _ = jax.jit(model.apply)(variables, photo, rngs=make_rngs(1))
  # Twice the exposure (exact in float32, as is every rounding of the gain
  # on it) reaches the network as the same photo: the same logits.
  again, _ = jax.jit(model.apply)(variables, photo * 2, rngs=make_rngs(1))
  assert logits.shape == (2, 32, 32, 1)
  np.testing.assert_array_equal(logits, again)


# light_slope averages 130 x 90 float32 logs of lumas in [0.05, 0.3]
# (|log| < 3): each column mean is within _MEAN_RTOL * 3 of exact, and the
# slope, sum(mean_c x_c) / sum(x_c^2) with |x_c| <= 0.5 over 90 columns
# (sum x_c^2 ~ 90 / 12), within 3 times that: its worst-case error.
_SLOPE_ATOL = 3 * 3 * _MEAN_RTOL


def _side_lit(photo: np.ndarray, slope: float) -> np.ndarray:
  """photo times exp(slope * x), x the column's offset in face widths."""
  ramp = np.exp(slope * np.asarray(column_offsets(photo.shape[2])))
  return (photo * ramp[None, None, :, None]).astype(np.float32)


def _dim_photos(seed: int) -> np.ndarray:
  """float32 (2, 250, 200, 3) photos in [0.05, 0.3]."""
  return (_photos(seed, 0.25) + 0.05).astype(np.float32)


def test_light_slope_is_a_float64_least_squares_fit():
  """Against numpy's polyfit of the face box's column means of log luma,
  written out here (rows 70-200, columns 55-145)."""
  photo = _side_lit(_dim_photos(4), 0.6)
  log_luma = np.log(photo.astype(np.float64) @ LUMA.astype(np.float64))
  columns = np.arange(55, 145)
  means = log_luma[:, 70:200, 55:145].mean(axis=1)
  expected = [np.polyfit((columns - 99.5) / 90, m, 1)[0] for m in means]
  np.testing.assert_allclose(light_slope(jnp.asarray(photo)), expected,
                             atol=_SLOPE_ATOL)
  assert expected[0] == pytest.approx(0.6, abs=0.05)  # the light's slope


def test_balance_undoes_light_from_one_side():
  """Light falling off exponentially across the frame (as seen: brighter to
  the right) reaches the network as the evenly lit photo. Each pixel's gain
  exp(-slope x), |x| <= 1.11 in the frame, is off by at most 1.11 times the
  two slopes' errors, relatively, beside the two exposures' (_MEAN_RTOL
  each); without balance the right edge would be 1.7 times brighter."""
  photo = _dim_photos(5)
  model = ExposureInput(_Seen(), 0.5, 'unit', balance=True)
  even, _ = model.apply({}, jnp.asarray(photo))
  lit, _ = model.apply({}, jnp.asarray(_side_lit(photo, 0.5)))
  assert float(jnp.max(even)) < 1  # nothing clipped
  np.testing.assert_allclose(
      lit, even, rtol=1.11 * 2 * _SLOPE_ATOL + 2 * _MEAN_RTOL)
  unbalanced, _ = ExposureInput(_Seen(), 0.5, 'unit').apply(
      {}, jnp.asarray(_side_lit(photo, 0.5)))
  assert not np.allclose(unbalanced, even, rtol=0.1)


def test_balance_leaves_a_symmetric_photo_as_exposure_does():
  """A photo that is its own mirror image has no slope to divide out."""
  photo = _dim_photos(6)
  photo = (photo + photo[:, :, ::-1]) / 2
  balanced, _ = ExposureInput(_Seen(), 0.5, 'unit', balance=True).apply(
      {}, jnp.asarray(photo))
  exposed, _ = ExposureInput(_Seen(), 0.5, 'unit').apply(
      {}, jnp.asarray(photo))
  np.testing.assert_allclose(balanced, exposed,
                             rtol=1.11 * _SLOPE_ATOL + 2 * _MEAN_RTOL)


def test_build_model_passes_the_balance():
  config = default_config('dae', 'paper')
  config.update(face_exposure=0.75, face_light_balance=True)
  model = build_model(config, (16, 16, 1), value_range='unit')
  assert isinstance(model, ExposureInput) and model.balance


def test_balance_needs_the_exposure():
  config = default_config('dae', 'paper')
  config.face_light_balance = True
  with pytest.raises(ValueError, match='face_light_balance=true needs '
                     'config.model.face_exposure'):
    build_model(config, (16, 16, 1), value_range='unit')


@pytest.mark.parametrize('value', [1.5, -0.1])
def test_bad_target_names_the_knob(value):
  """(ConfigDict itself refuses a bool or a string for the float knob.)"""
  config = default_config('dae', 'paper')
  config.face_exposure = value
  with pytest.raises(ValueError, match='config.model.face_exposure'):
    build_model(config, (16, 16, 1), value_range='unit')


def test_value_range_is_needed_and_checked():
  config = default_config('dae', 'paper')
  config.face_exposure = 0.5
  with pytest.raises(ValueError, match='value range'):
    build_model(config, (16, 16, 1))
  with pytest.raises(ValueError, match='value_range'):
    build_model(config, (16, 16, 1), value_range='percent')


def test_grey_photo_is_refused_by_name():
  with pytest.raises(ValueError,
                     match=r'ExposureInput: the photo has 1 channels, '
                           r'expected 3 \(RGB\)'):
    ExposureInput(_Seen(), 0.75, 'unit').apply({}, jnp.zeros((1, 8, 8, 1)))
