"""Reconstruction losses and the total training objective.

The model emits pre-sigmoid logits; every loss is computed in [0, 1] image space,
so the target sketch is first mapped there from the data value range.
"""
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import optax
from jax import lax

from f2s import metrics as f2s_metrics
from f2s import value_range as value_ranges

def bce(logits: jax.Array, target01: jax.Array) -> jax.Array:
  """Mean binary cross-entropy of sigmoid(logits) against [0, 1] targets."""
  return optax.sigmoid_binary_cross_entropy(logits, target01).mean()


def l1(logits: jax.Array, target01: jax.Array) -> jax.Array:
  return jnp.abs(jax.nn.sigmoid(logits) - target01).mean()


def l2(logits: jax.Array, target01: jax.Array) -> jax.Array:
  return jnp.square(jax.nn.sigmoid(logits) - target01).mean()


def ssim_loss(logits: jax.Array, target01: jax.Array) -> jax.Array:
  """1 - mean per-image SSIM."""
  ssim = f2s_metrics.ssim(jax.nn.sigmoid(logits), target01, data_range=1.0)
  return 1.0 - ssim.mean()


def fsim_loss(logits: jax.Array, target01: jax.Array) -> jax.Array:
  """1 - mean per-image FSIM (the face-sketch field's metric, as piq's
  FSIMLoss): it scores phase congruency and gradient magnitude, so it asks
  for the target's edges and lines where BCE settles for their mean."""
  fsim = f2s_metrics.fsim(jax.nn.sigmoid(logits), target01, data_range=1.0)
  return 1.0 - fsim.mean()


def gradient_loss(logits: jax.Array, target01: jax.Array) -> jax.Array:
  """Mean absolute difference of the vertical and horizontal pixel
  differences (Mathieu et al. 2016's gradient difference loss, alpha 1).

  BCE and L1 are content with a blurred stroke of the right mean; this term
  asks for edges as steep as the target's, where the target has them.
  """
  pred = jax.nn.sigmoid(logits)
  dy = jnp.diff(pred, axis=-3) - jnp.diff(target01, axis=-3)
  dx = jnp.diff(pred, axis=-2) - jnp.diff(target01, axis=-2)
  return jnp.abs(dy).mean() + jnp.abs(dx).mean()


RECONSTRUCTION_LOSSES: Mapping[str, Callable[[jax.Array, jax.Array],
                                             jax.Array]] = {
    'bce': bce,
    'l1': l1,
    'l2': l2,
    'ssim': ssim_loss,
    'gradient': gradient_loss,
    'fsim': fsim_loss,
}


def check_terms(terms: Mapping[str, float]) -> None:
  """Raises ValueError unless `terms` is {known name: weight}, one non-zero."""
  unknown = sorted(set(terms) - set(RECONSTRUCTION_LOSSES))
  if unknown:
    raise ValueError(
        f'config.loss.terms: unknown loss name(s) {unknown}; expected names '
        f'from {sorted(RECONSTRUCTION_LOSSES)}')
  for name, weight in terms.items():
    if not isinstance(weight, (int, float)) or isinstance(weight, bool):
      raise ValueError(f'config.loss.terms[{name!r}]={weight!r}: expected a '
                       'number')
  if not any(terms.values()):
    raise ValueError(f'config.loss.terms={dict(terms)} has no non-zero weight: '
                     "give at least one loss, e.g. {'bce': 1.0}")


def total_loss(
    logits: jax.Array,
    aux: Mapping[str, jax.Array],
    target: jax.Array,
    *,
    terms: Mapping[str, float],
    kl_weight: float,
    value_range: str,
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Weighted reconstruction terms plus the model's auxiliary `*_loss` terms.

  Returns (loss, metrics): metrics holds every unweighted term, the model's
  other aux scalars and the total under 'loss'. `terms` are checked once,
  with `check_terms`, where the config is validated.
  """
  target01 = value_ranges.to_unit(target, value_range)
  metrics = {}
  loss = jnp.zeros((), jnp.float32)
  for name, weight in terms.items():
    if weight == 0:  # switched off: not computed
      continue
    value = RECONSTRUCTION_LOSSES[name](logits, target01)
    metrics[f'{name}_loss'] = value
    loss = loss + weight * value
  for key, value in aux.items():
    metrics[key] = value
    if key == 'kl_loss':
      loss = loss + kl_weight * value
    elif key.endswith('_loss'):
      loss = loss + value
  metrics['loss'] = loss
  return loss, metrics


def hinge_discriminator_loss(real_logits: jax.Array,
                             fake_logits: jax.Array) -> jax.Array:
  """The discriminator's hinge loss: real patches above +1, fakes below -1."""
  return (jax.nn.relu(1.0 - real_logits).mean()
          + jax.nn.relu(1.0 + fake_logits).mean())


def hinge_generator_loss(fake_logits: jax.Array) -> jax.Array:
  """The generator's side of the hinge GAN: raise the fakes' logits."""
  return -fake_logits.mean()


def feature_matching_loss(fake_features: Sequence[jax.Array],
                          real_features: Sequence[jax.Array]) -> jax.Array:
  """pix2pixHD's feature matching: the mean L1 distance between the
  discriminator's activations on the fake and on the real pair, averaged
  over its stages (`real_features` are taken as constants)."""
  return sum(jnp.abs(f - lax.stop_gradient(r)).mean()
             for f, r in zip(fake_features, real_features, strict=True)
             ) / len(fake_features)
