"""ExposureInput: the photo scaled so that its face's mean luma is the
target, through `config.model.face_exposure`."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from f2s import config_lib
from f2s.models import ExposureInput, build_model, default_config
from f2s.models.exposure import FACE_BOX
from f2s.models.grey import LUMA


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
  the target. The gain divides by a float32 sum of n = 130 x 90 lumas, whose
  rounding error is bounded by n 2^-24 (7e-4) relative; a wrong box or a
  missing gain would be off by tens of percent."""
  photo = _photos(0, 0.25)  # face luma ~0.125: gain ~3.2, max 0.8
  photo[1] *= 0.5  # a second, darker photo gets its own gain
  seen, _ = ExposureInput(_Seen(), target=0.4, value_range='unit').apply(
      {}, jnp.asarray(photo))
  seen = np.asarray(seen)
  rtol = 130 * 90 * 2.0 ** -24
  np.testing.assert_allclose(_face_luma_numpy(seen), [0.4, 0.4], rtol=rtol)
  gains = seen / photo
  for i in range(2):
    np.testing.assert_allclose(gains[i], gains[i].mean(), rtol=1e-6)
  assert gains[1].mean() == pytest.approx(2 * gains[0].mean(), rel=2 * rtol)


def test_bright_pixels_clip_and_exposure_is_undone():
  """The model sees the same photo however it was exposed, up to clipping
  (here none: both versions map below 1)."""
  photo = _photos(1, 0.4)
  model = ExposureInput(_Seen(), target=0.75, value_range='unit')
  a, _ = model.apply({}, jnp.asarray(photo))
  b, _ = model.apply({}, jnp.asarray(photo * 0.6))
  np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  bright, _ = model.apply({}, jnp.asarray(_photos(2, 1.0)))
  assert float(bright.max()) == 1.0 and float(bright.min()) >= 0


def test_symmetric_range_scales_the_same_image():
  photo = _photos(3, 0.3)
  unit, _ = ExposureInput(_Seen(), 0.75, 'unit').apply({}, jnp.asarray(photo))
  symmetric, _ = ExposureInput(_Seen(), 0.75, 'symmetric').apply(
      {}, jnp.asarray(photo * 2 - 1))
  np.testing.assert_allclose((np.asarray(symmetric) + 1) / 2, unit, atol=1e-6)


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
  # The inner model's variables, unchanged in shape: an exposed model's
  # checkpoint is a plain one's under 'model'.
  again, _ = jax.jit(model.apply)(variables, photo * 2, rngs=make_rngs(1))
  assert logits.shape == (2, 32, 32, 1)
  np.testing.assert_allclose(logits, again, rtol=1e-4, atol=1e-4)


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
