"""Convolutional building blocks: conv blocks, pooling, upsampling, encoder/decoder stacks."""

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

BLOCKS = ('plain', 'residual')


def max_pool2(x: jax.Array) -> jax.Array:
  """2x2 max pooling with stride 2 on NHWC input.

  Written as reshape + max because the backward pass of `nn.max_pool`
  (select-and-scatter) is slow on XLA:CPU.
  """
  b, h, w, c = x.shape
  if h % 2 or w % 2:
    raise ValueError(f'max_pool2 needs even spatial dims, got {(h, w)}.')
  return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def upsample2(x: jax.Array) -> jax.Array:
  """Nearest-neighbour 2x upsampling of NHWC input (no strided ConvTranspose)."""
  b, h, w, c = x.shape
  x = jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, 2, w, 2, c))
  return x.reshape(b, 2 * h, 2 * w, c)


def _norm(num_groups: int, features: int, name: str) -> nn.Module | None:
  """GroupNorm with `num_groups` groups, or None when num_groups == 0."""
  if num_groups == 0:
    return None
  if features % num_groups:
    raise ValueError(
        f'num_groups={num_groups} does not divide the {features} channels of {name}.')
  return nn.GroupNorm(num_groups=num_groups, name=name)


class ConvBlock(nn.Module):
  """3x3 conv -> optional GroupNorm -> ReLU."""
  features: int
  num_groups: int = 0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = nn.Conv(self.features, (3, 3), name='conv')(x)
    norm = _norm(self.num_groups, self.features, 'norm')
    if norm is not None:
      x = norm(x)
    return nn.relu(x)


class ResBlock(nn.Module):
  """Pre-activation residual block: (norm, ReLU, 3x3 conv) x 2 plus a skip.

  The skip is a 1x1 conv when the channel count changes.
  """
  features: int
  num_groups: int = 0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = x
    for i in range(2):
      norm = _norm(self.num_groups, h.shape[-1], f'norm{i}')
      if norm is not None:
        h = norm(h)
      h = nn.Conv(self.features, (3, 3), name=f'conv{i}')(nn.relu(h))
    if x.shape[-1] != self.features:
      x = nn.Conv(self.features, (1, 1), name='skip')(x)
    return x + h


def make_block(block: str, features: int, num_groups: int, name: str) -> nn.Module:
  """The block named `block` ('plain' or 'residual')."""
  if block == 'plain':
    return ConvBlock(features, num_groups, name=name)
  if block == 'residual':
    return ResBlock(features, num_groups, name=name)
  raise ValueError(f'Unknown block {block!r}; expected one of {BLOCKS}.')


class ConvEncoder(nn.Module):
  """One block then a 2x2 max pool per entry of `features`: H -> H / 2**len(features).

  Residual encoders start with a 3x3 stem conv so the first block's norm sees
  `features[0]` channels rather than the 3 image channels.
  """
  features: Sequence[int]
  block: str = 'plain'
  num_groups: int = 0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.block == 'residual':
      x = nn.Conv(self.features[0], (3, 3), name='stem')(x)
    for i, f in enumerate(self.features):
      x = make_block(self.block, f, self.num_groups, f'block{i}')(x)
      x = max_pool2(x)
    return x


class ConvDecoder(nn.Module):
  """Nearest 2x upsample then one block per entry of `features`, then a 3x3 conv
  to `out_channels` logits: H -> H * 2**len(features)."""
  features: Sequence[int]
  out_channels: int
  block: str = 'plain'
  num_groups: int = 0

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for i, f in enumerate(self.features):
      x = make_block(self.block, f, self.num_groups, f'block{i}')(upsample2(x))
    if self.block == 'residual':
      # Pre-activation blocks end on a conv: normalise and activate before the head.
      norm = _norm(self.num_groups, x.shape[-1], 'head_norm')
      x = nn.relu(norm(x) if norm is not None else x)
    return nn.Conv(self.out_channels, (3, 3), name='head')(x)
