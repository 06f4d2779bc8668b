"""pix2pix's conditional PatchGAN discriminator, spectral norm optional, and
pix2pixHD's multi-scale stack of them."""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from f2s.models import cpu_conv, layers

# The collection of the spectral norm's power-iteration vectors.
SPECTRAL_COLLECTION = 'batch_stats'
# What a config saved before `gan.spectral_norm` existed trained with.
LEGACY_SPECTRAL_NORM = True
# ... and before `gan.scales` existed: one PatchGAN.
LEGACY_SCALES = 1


class PatchDiscriminator(nn.Module):
  """(photo, sketch) -> a grid of real/fake logits, one per image patch.

  A 4x4 stride-2 conv + LeakyReLU(0.2) per entry of `features`, then a 4x4
  conv to one logit per position: each logit sees a ~46-pixel patch (three
  stages), the scale of pencil strokes rather than of the whole face.
  With `return_features=True` it also returns each stage's activations, for
  pix2pixHD's feature-matching loss.
  Spectral norm on every conv (as SAGAN, whose attention CASQ uses) keeps
  the discriminator 1-Lipschitz without a gradient penalty's second
  backward pass; its power-iteration state lives in `SPECTRAL_COLLECTION`
  and is updated only with `update_stats=True` (the discriminator's own
  step). With `spectral_norm=False` the convs are plain (pix2pix's own
  discriminator, free to grow its logits; in the 300-step CUHK recipe it
  still barely tells real from fake, hinge loss 1.82 of 2 at the end
  against 1.88 normalised); the parameters are the same.
  `conv_impl` (`layers.cpu_fast`): the stride-2 convs by
  `cpu_conv.strided_conv` (a faster weight gradient on XLA:CPU), the same
  parameters and function.
  """
  features: Sequence[int] = (32, 64, 128)
  spectral_norm: bool = True
  conv_impl: str = 'auto'

  def _conv(self, conv: nn.Conv, name: str, x: jax.Array,
            update_stats: bool) -> jax.Array:
    if not self.spectral_norm:
      return conv(x)
    return nn.SpectralNorm(conv, collection_name=SPECTRAL_COLLECTION,
                           name=name)(x, update_stats=update_stats)

  @nn.compact
  def __call__(self, photo: jax.Array, sketch: jax.Array, *,
               update_stats: bool = False, return_features: bool = False
               ) -> jax.Array | tuple[jax.Array, list[jax.Array]]:
    if photo.shape[:3] != sketch.shape[:3]:
      raise ValueError(f'PatchDiscriminator: photo {photo.shape} and sketch '
                       f'{sketch.shape} differ in batch or spatial size')
    x = jnp.concatenate([photo, sketch.astype(photo.dtype)], axis=-1)
    features = []
    conv_fn = (cpu_conv.conv_general_dilated
               if layers.cpu_fast(self.conv_impl) else None)
    for i, f in enumerate(self.features):
      conv = nn.Conv(f, (4, 4), strides=2, name=f'conv{i}',
                     conv_general_dilated=conv_fn)
      x = self._conv(conv, f'sn{i}', x, update_stats)
      x = nn.leaky_relu(x, 0.2)
      features.append(x)
    logits = self._conv(nn.Conv(1, (4, 4), name='logits'), 'sn_logits', x,
                        update_stats)
    return (logits, features) if return_features else logits


def _halve(x: jax.Array) -> jax.Array:
  """pix2pixHD's downsampling between scales: a 3x3 mean, stride 2, the
  padding left out of the count."""
  return nn.avg_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)),
                     count_include_pad=False)


class MultiScaleDiscriminator(nn.Module):
  """pix2pixHD's multi-scale discriminator: `scales` PatchDiscriminators
  (submodules `scale0`, `scale1`, ...), the k-th on the pair downsampled k
  times by 2, so the coarser ones judge patches of ~92, ~184 pixels: the
  face's contours rather than its strokes.

  Returns a tuple of logit grids, one per scale (finest first); with
  `return_features=True` also every scale's stage activations, in order.
  """
  features: Sequence[int] = (32, 64, 128)
  spectral_norm: bool = True
  scales: int = 2
  conv_impl: str = 'auto'

  @nn.compact
  def __call__(self, photo: jax.Array, sketch: jax.Array, *,
               update_stats: bool = False, return_features: bool = False
               ) -> tuple[jax.Array, ...] | tuple[tuple[jax.Array, ...],
                                                  list[jax.Array]]:
    logits, features = [], []
    for k in range(self.scales):
      if k:
        photo, sketch = _halve(photo), _halve(sketch)
      grid, stages = PatchDiscriminator(
          self.features, self.spectral_norm, self.conv_impl,
          name=f'scale{k}')(
              photo, sketch, update_stats=update_stats, return_features=True)
      logits.append(grid)
      features.extend(stages)
    return (tuple(logits), features) if return_features else tuple(logits)
