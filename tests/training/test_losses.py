"""Losses: BCE/L1/L2 against NumPy, the SSIM loss, weighting of terms and
auxiliary losses, naming of unknown terms."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from f2s import metrics
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
  with pytest.raises(ValueError, match=r"\['perceptual'\]"):
    losses.check_terms({'bce': 1.0, 'perceptual': 1.0})
  with pytest.raises(ValueError, match='no non-zero weight'):
    losses.check_terms({'bce': 0.0})


def test_feature_matching_is_mean_l1_over_stages_with_real_as_constant():
  fake = [jnp.ones((2, 4, 4, 3)), jnp.zeros((2, 2, 2, 5))]
  real = [jnp.zeros((2, 4, 4, 3)), jnp.full((2, 2, 2, 5), 3.0)]
  assert float(losses.feature_matching_loss(fake, real)) == pytest.approx(2.0)
  grad_real = jax.grad(lambda r: losses.feature_matching_loss(fake, r))(real)
  assert all(float(jnp.abs(g).max()) == 0 for g in grad_real)
