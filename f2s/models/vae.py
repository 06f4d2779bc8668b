"""Variational autoencoders photo -> sketch logits (dense paper VAE and a conv one).

Unlike the study's code (which reconstructed the photo), the encoder reads the
photo and the decoder produces the *sketch*: q(z | photo), p(sketch | z).
`kl_loss` is KL(q(z|photo) || N(0, I)) summed over latent dimensions and
averaged over the batch, unweighted (the trainer applies `loss.kl_weight`).
"""

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from f2s.models.common import check_io
from f2s.models.layers import ConvDecoder, ConvEncoder, resolve_conv_impl

SAMPLE_RNG = 'sample'


def kl_divergence(mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """Mean over the batch of the per-example KL(N(mean, exp(logvar)) || N(0, I))."""
  kl = 0.5 * (jnp.exp(logvar) + mean**2 - 1.0 - logvar)
  return jnp.mean(jnp.sum(kl.reshape(kl.shape[0], -1), axis=1))


def reparameterize(mean: jax.Array, logvar: jax.Array, key: jax.Array | None) -> jax.Array:
  """mean + exp(logvar / 2) * eps with eps ~ N(0, I) from `key`; the mean if key is None."""
  if key is None:
    return mean
  return mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape, mean.dtype)


class DenseVAE(nn.Module):
  """The study's dense VAE: flatten -> hidden... -> (mean, logvar) of `latent_dim`
  -> reversed hidden -> logits. Samples z in training (rng 'sample'), uses the mean
  in evaluation."""
  out_shape: tuple[int, int, int]
  hidden: Sequence[int]
  latent_dim: int

  @nn.compact
  def __call__(self, photo: jax.Array, *, train: bool = False):
    check_io(photo, self.out_shape, 0, 'DenseVAE')
    x = photo.reshape(photo.shape[0], -1)
    for i, f in enumerate(self.hidden):
      x = nn.relu(nn.Dense(f, name=f'enc{i}')(x))
    mean = nn.Dense(self.latent_dim, name='mean')(x)
    logvar = nn.Dense(self.latent_dim, name='logvar')(x)
    z = reparameterize(mean, logvar, self.make_rng(SAMPLE_RNG) if train else None)
    for i, f in enumerate(self.hidden[::-1]):
      z = nn.relu(nn.Dense(f, name=f'dec{i}')(z))
    logits = nn.Dense(math.prod(self.out_shape), name='out')(z)
    return (logits.reshape(photo.shape[0], *self.out_shape),
            {'kl_loss': kl_divergence(mean, logvar)})


class ConvVAE(nn.Module):
  """Conv encoder -> 1x1 conv to a spatial latent (H/2**L, W/2**L, latent_channels)
  mean and logvar -> sample -> conv decoder -> logits."""
  out_shape: tuple[int, int, int]
  features: Sequence[int]
  latent_channels: int
  block: str
  num_groups: int
  conv_impl: str = 'auto'  # layers.resolve_conv_impl: same parameters either way

  @nn.compact
  def __call__(self, photo: jax.Array, *, train: bool = False):
    check_io(photo, self.out_shape, len(self.features), 'ConvVAE')
    conv = resolve_conv_impl(self.conv_impl)
    h, _ = ConvEncoder(self.features, self.block, self.num_groups, conv,
                       skips=False, name='encoder')(photo)
    stats = nn.Conv(2 * self.latent_channels, (1, 1), name='posterior')(h)
    mean, logvar = jnp.split(stats, 2, axis=-1)
    z = reparameterize(mean, logvar, self.make_rng(SAMPLE_RNG) if train else None)
    logits = ConvDecoder(tuple(self.features[::-1]), self.out_shape[-1], self.block,
                         self.num_groups, conv, name='decoder')(z)
    return logits, {'kl_loss': kl_divergence(mean, logvar)}
