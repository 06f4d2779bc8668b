"""Convolutional building blocks: conv blocks, pooling, upsampling, encoder/decoder stacks."""

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from f2s.convolution import conv_nhwc
from f2s.models import cpu_conv
from f2s.resample import max_pool2, upsample2

ModuleDef = Any

BLOCKS = ('plain', 'residual')


class Conv3x3(nn.Module):
  """`nn.Conv(features, (3, 3))`, or with `upsample` the same conv applied to
  `upsample2(x)`: XLA's convolution (see `FastConv3x3` for CPU).

  With `pool`, `max_pool2` of that, computed before the bias is added: the
  same numbers (rounding is monotonic, so max(a + b, c + b) = max(a, c) + b),
  one pass over the unpooled output fewer.
  """
  features: int
  upsample: bool = False
  pool: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param('kernel', nn.initializers.lecun_normal(),
                        (3, 3, x.shape[-1], self.features))
    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    y = self._conv(x, kernel)
    return (max_pool2(y) if self.pool else y) + bias

  def _conv(self, x: jax.Array, kernel: jax.Array) -> jax.Array:
    return conv_nhwc(upsample2(x) if self.upsample else x, kernel)


class FastConv3x3(Conv3x3):
  """`Conv3x3` computed by `cpu_conv.conv3x3` (faster weight gradient on
  XLA:CPU) or, with `upsample`, `cpu_conv.upsample_conv3x3` (at the input
  resolution). The same parameters (names, shapes, initialisation): a
  checkpoint trained with either loads into the other."""

  def _conv(self, x: jax.Array, kernel: jax.Array) -> jax.Array:
    return (cpu_conv.upsample_conv3x3 if self.upsample
            else cpu_conv.conv3x3)(x, kernel)


CONV_IMPLS = ('auto', 'xla', 'cpu_fast')


def cpu_fast(impl: str) -> bool:
  """Whether `model.conv_impl` picks the CPU-tuned convolutions (`cpu_conv`):
  'cpu_fast', or 'auto' on the CPU backend; 'xla' never."""
  if impl not in CONV_IMPLS:
    raise ValueError(f'config.model.conv_impl={impl!r}: expected one of '
                     f'{CONV_IMPLS}')
  if impl == 'auto':
    return jax.default_backend() == 'cpu'
  return impl == 'cpu_fast'


def resolve_conv_impl(impl: str) -> type[nn.Module]:
  """The 3x3 conv module of `model.conv_impl`: `FastConv3x3` where
  `cpu_fast(impl)`, else `Conv3x3`."""
  return FastConv3x3 if cpu_fast(impl) else Conv3x3


def _norm(num_groups: int, features: int, name: str) -> nn.Module | None:
  """GroupNorm with `num_groups` groups, or None when num_groups == 0."""
  if num_groups == 0:
    return None
  if features % num_groups:
    raise ValueError(
        f'num_groups={num_groups} does not divide the {features} channels of {name}.')
  return nn.GroupNorm(num_groups=num_groups, name=name)


class ConvBlock(nn.Module):
  """(optional nearest 2x upsampling ->) 3x3 conv -> optional GroupNorm -> ReLU
  (-> optional 2x2 max pool).

  Without a norm the pool runs before the bias and ReLU, which commute with
  it: the same output, at a quarter of the pixels (on XLA:CPU the casq/paper
  encoder's first block trains 2.3x faster so).
  """
  features: int
  num_groups: int = 0
  upsample: bool = False
  conv: ModuleDef = Conv3x3
  pool: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    norm = _norm(self.num_groups, self.features, 'norm')
    fuse_pool = self.pool and norm is None
    x = self.conv(self.features, self.upsample, pool=fuse_pool, name='conv')(x)
    if norm is not None:
      x = norm(x)
    x = nn.relu(x)
    return max_pool2(x) if self.pool and not fuse_pool else x


class ResBlock(nn.Module):
  """Pre-activation residual block: (norm, ReLU, 3x3 conv) x 2 plus a skip.

  The skip is a 1x1 conv when the channel count changes. With `upsample`,
  the block computes `ResBlock(upsample2(x))` exactly, but its first conv
  runs as an upsampling `conv`: GroupNorm statistics, ReLU and the 1x1 skip are
  unchanged by nearest upsampling, so they run at the input resolution.
  """
  features: int
  num_groups: int = 0
  upsample: bool = False
  conv: ModuleDef = Conv3x3

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = x
    for i in range(2):
      norm = _norm(self.num_groups, h.shape[-1], f'norm{i}')
      if norm is not None:
        h = norm(h)
      upsample = self.upsample and i == 0
      h = self.conv(self.features, upsample, name=f'conv{i}')(nn.relu(h))
    if x.shape[-1] != self.features:
      x = nn.Conv(self.features, (1, 1), name='skip')(x)
    return (upsample2(x) if self.upsample else x) + h


def make_block(block: str, features: int, num_groups: int, name: str,
               upsample: bool = False, conv: ModuleDef = Conv3x3) -> nn.Module:
  """The block named `block` ('plain' or 'residual'), optionally preceded by
  nearest 2x upsampling (computed at the input resolution), its 3x3
  convolutions `conv`."""
  if block == 'plain':
    return ConvBlock(features, num_groups, upsample, conv, name=name)
  if block == 'residual':
    return ResBlock(features, num_groups, upsample, conv, name=name)
  raise ValueError(f'Unknown block {block!r}; expected one of {BLOCKS}.')


class ConvEncoder(nn.Module):
  """One block then a 2x2 max pool per entry of `features`: H -> H / 2**len(features).

  Residual encoders start with a 3x3 stem conv so the first block's norm sees
  `features[0]` channels rather than the 3 image channels. Returns the code
  and, with `skips`, each block's output before its pool, finest first (a
  U-Net's skip connections, for `ConvDecoder(x, skips)`); without, an empty
  list, and plain blocks pool inside (`ConvBlock(pool=True)`).
  """
  features: Sequence[int]
  block: str = 'plain'
  num_groups: int = 0
  conv: ModuleDef = Conv3x3
  skips: bool = True

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
    if self.block == 'residual':
      x = self.conv(self.features[0], name='stem')(x)
    outputs = []
    for i, f in enumerate(self.features):
      name = f'block{i}'
      if self.block == 'plain' and not self.skips:
        x = ConvBlock(f, self.num_groups, conv=self.conv, pool=True, name=name)(x)
        continue
      x = make_block(self.block, f, self.num_groups, name, conv=self.conv)(x)
      if self.skips:
        outputs.append(x)
      x = max_pool2(x)
    return x, outputs


class ConvDecoder(nn.Module):
  """Nearest 2x upsample then one block per entry of `features`, then a 3x3 conv
  to `out_channels` logits: H -> H * 2**len(features).

  `skips` (an encoder's, finest first, or none) are concatenated to the
  blocks' outputs of the same resolution.
  """
  features: Sequence[int]
  out_channels: int
  block: str = 'plain'
  num_groups: int = 0
  conv: ModuleDef = Conv3x3

  @nn.compact
  def __call__(self, x: jax.Array,
               skips: Sequence[jax.Array] = ()) -> jax.Array:
    if skips and len(skips) != len(self.features):
      raise ValueError(f'ConvDecoder: {len(skips)} skips for '
                       f'{len(self.features)} stages')
    for i, f in enumerate(self.features):
      x = make_block(self.block, f, self.num_groups, f'block{i}', upsample=True,
                     conv=self.conv)(x)
      if skips:
        x = jnp.concatenate([x, skips[-1 - i]], axis=-1)
    if self.block == 'residual':
      # Pre-activation blocks end on a conv: normalise and activate before the head.
      norm = _norm(self.num_groups, x.shape[-1], 'head_norm')
      x = nn.relu(norm(x) if norm is not None else x)
    return self.conv(self.out_channels, name='head')(x)
