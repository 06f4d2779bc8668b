"""Deterministic autoencoders photo -> sketch logits (dense paper DAE and a conv one)."""

import math
from typing import Sequence

import flax.linen as nn
import jax

from f2s.models.common import check_io
from f2s.models.layers import ConvDecoder, ConvEncoder, resolve_conv_impl


class DenseDAE(nn.Module):
  """The CASQ study's dense autoencoder: flatten -> hidden... -> mirrored -> logits.

  With hidden=(128, 64, 32): in -> 128 -> 64 -> 32 -> 64 -> 128 -> prod(out_shape),
  ReLU between layers, no activation on the logits (the study's sigmoid is
  applied by the caller).
  """
  out_shape: tuple[int, int, int]
  hidden: Sequence[int]

  @nn.compact
  def __call__(self, photo: jax.Array, *, train: bool = False):
    del train
    check_io(photo, self.out_shape, 0, 'DenseDAE')
    x = photo.reshape(photo.shape[0], -1)
    for i, f in enumerate(list(self.hidden) + list(self.hidden[-2::-1])):
      x = nn.relu(nn.Dense(f, name=f'dense{i}')(x))
    logits = nn.Dense(math.prod(self.out_shape), name='out')(x)
    return logits.reshape(photo.shape[0], *self.out_shape), {}


class ConvDAE(nn.Module):
  """Conv encoder (H/2**L) -> 1x1 conv to `latent_channels` -> conv decoder -> logits."""
  out_shape: tuple[int, int, int]
  features: Sequence[int]
  latent_channels: int
  block: str
  num_groups: int
  conv_impl: str = 'auto'  # layers.resolve_conv_impl: same parameters either way

  @nn.compact
  def __call__(self, photo: jax.Array, *, train: bool = False):
    del train
    check_io(photo, self.out_shape, len(self.features), 'ConvDAE')
    conv = resolve_conv_impl(self.conv_impl)
    h, _ = ConvEncoder(self.features, self.block, self.num_groups, conv,
                       skips=False, name='encoder')(photo)
    h = nn.Conv(self.latent_channels, (1, 1), name='bottleneck')(h)
    logits = ConvDecoder(tuple(self.features[::-1]), self.out_shape[-1], self.block,
                         self.num_groups, conv, name='decoder')(h)
    return logits, {}
