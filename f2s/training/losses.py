"""Reconstruction losses and the total training objective.

The model emits pre-sigmoid logits; every loss is computed in [0, 1] image space,
so the target sketch is first mapped there from the data value range.

Two terms compare images in the feature space of LPIPS' pretrained VGG16
(`f2s.features`; its weights are constants, never trained): `perceptual`,
the distance of channel-normalised features (LPIPS without its learned
heads), and `style`, the distance of their Gram matrices (Gatys et al.
2016: which features occur together, the texture, wherever it lies). A
model trained with them is scored by LPIPS-VGG on features it was trained
on: LPIPS-Alex is then the independent score.
"""
from collections.abc import Callable, Mapping, Sequence
import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax import lax

from f2s import features as f2s_features
from f2s import metrics as f2s_metrics
from f2s import value_range as value_ranges

# A discriminator's output: one logit grid, or one per scale.
Logits = jax.Array | Sequence[jax.Array]


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


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
  """Where the feature terms look (config.loss.perceptual_*).

  layers: VGG16 taps used, the first `layers` of relu1_2, relu2_2, relu3_3,
    relu4_3, relu5_3 (the deeper ones cost most of the network's time and
    see parts of faces rather than strokes).
  downsample: both images average-pooled by this factor before VGG16 (2 cuts
    the network's cost by 4 on the 256x208 sketches).
  style_grid: the style term compares Gram matrices per cell of a
    style_grid x style_grid grid over each feature map (1: one over the whole
    map). An aligned face puts its parts in the same cells, so the artist's
    hatching is asked for where the artist hatches (hair, shadows) and not
    where the paper stays smooth (skin); a whole-map Gram asks for the same
    mix everywhere.
  """
  layers: int = 3
  downsample: int = 2
  style_grid: int = 1

  def __post_init__(self):
    for name, knob in (('layers', 'perceptual_layers'),
                       ('downsample', 'perceptual_downsample'),
                       ('style_grid', 'style_grid')):
      value = getattr(self, name)
      if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f'config.loss.{knob}={value!r}: expected a positive '
                         'integer')
    if self.layers > f2s_features.VGG16_TAPS:
      raise ValueError(f'config.loss.perceptual_layers={self.layers!r}: '
                       f'VGG16 has {f2s_features.VGG16_TAPS} taps')


def feature_spec_from_config(loss_config: Any) -> FeatureSpec:
  """The FeatureSpec of `config.loss`."""
  return FeatureSpec(layers=loss_config.perceptual_layers,
                     downsample=loss_config.perceptual_downsample,
                     style_grid=loss_config.style_grid)


def vgg_features(images01: jax.Array, spec: FeatureSpec) -> list[jax.Array]:
  """VGG16 taps of (N, H, W, C) images in [0, 1], pooled by spec.downsample.

  Raises ValueError when the pooled images are smaller than VGG16's 16x16.
  """
  n, h, w, c = images01.shape
  k = spec.downsample
  if h // k < f2s_features.NETS['vgg'][2] or w // k < f2s_features.NETS['vgg'][2]:
    raise ValueError(
        f'perceptual/style loss: {h}x{w} images pooled by '
        f'config.loss.perceptual_downsample={k} are smaller than VGG16\'s '
        f'{f2s_features.NETS["vgg"][2]}x{f2s_features.NETS["vgg"][2]}')
  if k > 1:
    images01 = images01[:, :h // k * k, :w // k * k].reshape(
        n, h // k, k, w // k, k, c).mean(axis=(2, 4))
  convs, _ = f2s_features.lpips_weights('vgg')
  return f2s_features.vgg16_taps(
      f2s_features.scaling_layer(images01, 1.0), convs, spec.layers)


def perceptual_distance(pred: Sequence[jax.Array],
                        target: Sequence[jax.Array],
                        spec: FeatureSpec) -> jax.Array:
  """Sum over taps of the mean squared distance of unit-normalised feature
  vectors (LPIPS' 'lin=False' form): each layer's value is in [0, 4]."""
  return sum(jnp.mean(jnp.sum(jnp.square(
      f2s_features.unit_normalize(p) - f2s_features.unit_normalize(t)),
      axis=-1)) for p, t in zip(pred, target, strict=True))


def gram(feat: jax.Array) -> jax.Array:
  """(N, H, W, C) -> (N, C, C) Gram matrices of the unit-normalised feature
  vectors averaged over positions (trace 1 where no vector is zero), so
  every layer's texture statistics are on one scale."""
  f = f2s_features.unit_normalize(feat)
  f = f.reshape(f.shape[0], -1, f.shape[-1])
  return jnp.einsum('npc,npd->ncd', f, f,
                    precision=lax.Precision.HIGHEST) / f.shape[1]


def grid_cells(feat: jax.Array, grid: int) -> list[jax.Array]:
  """The grid x grid cells of (N, H, W, C) feature maps, row by row (cell
  edges at the nearest lower pixel: sides that `grid` does not divide give
  cells one pixel apart in size)."""
  h, w = feat.shape[1:3]
  if h < grid or w < grid:
    raise ValueError(f'config.loss.style_grid={grid}: a {h}x{w} VGG16 tap '
                     f'cannot be cut into {grid}x{grid} cells (use fewer '
                     'cells, or fewer taps or less downsampling)')
  rows = [h * i // grid for i in range(grid + 1)]
  cols = [w * j // grid for j in range(grid + 1)]
  return [feat[:, rows[i]:rows[i + 1], cols[j]:cols[j + 1]]
          for i in range(grid) for j in range(grid)]


def style_distance(pred: Sequence[jax.Array],
                   target: Sequence[jax.Array],
                   spec: FeatureSpec) -> jax.Array:
  """Sum over taps of the squared Frobenius distance of the Gram matrices
  (one per cell of spec.style_grid's grid), averaged over the batch and the
  cells."""
  grid = spec.style_grid
  return sum(
      jnp.mean(jnp.stack([
          jnp.mean(jnp.sum(jnp.square(gram(pc) - gram(tc)), axis=(-2, -1)))
          for pc, tc in zip(grid_cells(p, grid), grid_cells(t, grid))]))
      for p, t in zip(pred, target, strict=True))


# Terms computed on VGG16 features, (pred taps, target taps, spec) -> scalar:
# they share one pass of the network over the batch.
FEATURE_LOSSES: Mapping[str, Callable[[Sequence[jax.Array],
                                       Sequence[jax.Array], FeatureSpec],
                                      jax.Array]] = {
    'perceptual': perceptual_distance,
    'style': style_distance,
}
LOSS_NAMES = (*RECONSTRUCTION_LOSSES, *FEATURE_LOSSES)


def feature_losses(logits: jax.Array, target01: jax.Array,
                   names: Sequence[str], spec: FeatureSpec
                   ) -> dict[str, jax.Array]:
  """The FEATURE_LOSSES `names` of sigmoid(logits) against the target.

  The target's features are constants (no backward pass through them).
  """
  pred_taps = vgg_features(jax.nn.sigmoid(logits), spec)
  target_taps = [lax.stop_gradient(t)
                 for t in vgg_features(target01, spec)]
  return {name: FEATURE_LOSSES[name](pred_taps, target_taps, spec)
          for name in names}


def check_terms(terms: Mapping[str, float]) -> None:
  """Raises ValueError unless `terms` is {known name: weight}, one non-zero."""
  unknown = sorted(set(terms) - set(LOSS_NAMES))
  if unknown:
    raise ValueError(
        f'config.loss.terms: unknown loss name(s) {unknown}; expected names '
        f'from {sorted(LOSS_NAMES)}')
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
    feature_spec: FeatureSpec = FeatureSpec(),
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Weighted reconstruction terms plus the model's auxiliary `*_loss` terms.

  Returns (loss, metrics): metrics holds every unweighted term, the model's
  other aux scalars and the total under 'loss'. `terms` are checked once,
  with `check_terms`, where the config is validated; `feature_spec` sets
  the feature terms' VGG16 taps and input size.
  """
  target01 = value_ranges.to_unit(target, value_range)
  on = {name: weight for name, weight in terms.items() if weight != 0}
  values = {name: RECONSTRUCTION_LOSSES[name](logits, target01)
            for name in on if name in RECONSTRUCTION_LOSSES}
  wanted = [name for name in on if name in FEATURE_LOSSES]
  if wanted:  # switched off: the network is not run
    values.update(feature_losses(logits, target01, wanted, feature_spec))
  metrics = {}
  loss = jnp.zeros((), jnp.float32)
  for name, weight in on.items():
    metrics[f'{name}_loss'] = values[name]
    loss = loss + weight * values[name]
  for key, value in aux.items():
    metrics[key] = value
    if key == 'kl_loss':
      loss = loss + kl_weight * value
    elif key.endswith('_loss'):
      loss = loss + value
  metrics['loss'] = loss
  return loss, metrics


def mean_over_grids(values: Logits) -> jax.Array:
  """The mean of each logit grid's mean: a multi-scale discriminator's
  scales count alike whatever their sizes."""
  grids = jax.tree.leaves(values)
  return sum(g.mean() for g in grids) / len(grids)


def hinge_discriminator_loss(real_logits: Logits,
                             fake_logits: Logits) -> jax.Array:
  """The discriminator's hinge loss: real patches above +1, fakes below -1
  (averaged over the grids of a multi-scale discriminator)."""
  return (mean_over_grids(jax.tree.map(lambda l: jax.nn.relu(1.0 - l),
                                        real_logits))
          + mean_over_grids(jax.tree.map(lambda l: jax.nn.relu(1.0 + l),
                                          fake_logits)))


def r1_penalty(logits_fn: Callable[[jax.Array], Logits],
               real: jax.Array) -> jax.Array:
  """Mescheder et al.'s (2018) R1 for a patch discriminator: per logit grid,
  the squared norm of d (sum of an image's logits) / d real, divided by the
  grid's size (where patches do not overlap, the mean over patches of each
  logit's own R1, so gamma keeps its per-output meaning whatever the grid);
  averaged over images and over grids (as the hinge losses average them).
  `logits_fn` maps the real sketches to the discriminator's logits; its
  images must not interact (no batch statistics), so one gradient of the
  batch's sum gives each image's own."""
  logits, vjp = jax.vjp(logits_fn, real)
  grids = jax.tree.leaves(logits)
  penalties = []
  for k, grid in enumerate(grids):
    cotangent = jax.tree.unflatten(
        jax.tree.structure(logits),
        [jnp.ones_like(g) if j == k else jnp.zeros_like(g)
         for j, g in enumerate(grids)])
    (grad,) = vjp(cotangent)
    norms = jnp.sum(jnp.square(grad.reshape(grad.shape[0], -1)), axis=1)
    penalties.append(jnp.mean(norms) / (grid.size // grid.shape[0]))
  return sum(penalties) / len(penalties)


def hinge_generator_loss(fake_logits: Logits) -> jax.Array:
  """The generator's side of the hinge GAN: raise the fakes' logits."""
  return -mean_over_grids(fake_logits)


def feature_matching_loss(fake_features: Sequence[jax.Array],
                          real_features: Sequence[jax.Array]) -> jax.Array:
  """pix2pixHD's feature matching: the mean L1 distance between the
  discriminator's activations on the fake and on the real pair, averaged
  over its stages (`real_features` are taken as constants)."""
  return sum(jnp.abs(f - lax.stop_gradient(r)).mean()
             for f, r in zip(fake_features, real_features, strict=True)
             ) / len(fake_features)
