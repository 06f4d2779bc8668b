"""Convolutions tuned for XLA:CPU: the same functions as the plain layers,
with hand-written backward passes where XLA:CPU's own are slow.

Elsewhere they bring nothing (on an H100, per the GPU loop issue: 3->64 at
200x200 0.70 ms vs XLA's 0.57, 64->3 0.72 vs 0.94), so `layers.cpu_fast`
picks them (`layers.FastConv3x3`, the discriminator's stride-2 convs) only
on the CPU backend.
"""
import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from f2s.convolution import conv_nhwc

Padding = tuple[tuple[int, int], tuple[int, int]]
_PAD1: Padding = ((1, 1), (1, 1))


def _conv3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return conv_nhwc(x, kernel)


def _patches(x: jax.Array, kh: int, kw: int, padding: Padding,
             stride: int = 1) -> jax.Array:
  """(B, H, W, C) -> (B, Ho * Wo, kh * kw * C): the zero-padded windows at
  `stride`."""
  b, _, _, c = x.shape
  xp = jnp.pad(x, ((0, 0), *padding, (0, 0)))
  ho = (xp.shape[1] - kh) // stride + 1
  wo = (xp.shape[2] - kw) // stride + 1
  taps = [xp[:, i:i + stride * (ho - 1) + 1:stride,
             j:j + stride * (wo - 1) + 1:stride, :]
          for i in range(kh) for j in range(kw)]
  return jnp.concatenate(taps, axis=-1).reshape(b, ho * wo, kh * kw * c)


def _patches3x3(x: jax.Array) -> jax.Array:
  return _patches(x, 3, 3, _PAD1)


# `python experiments/benchmark_conv_grad.py` (README, CPU speed): on a
# 2-core AVX2 AMD EPYC, XLA:CPU's backward-filter convolution ran 1.2-9x
# slower than the patch matmul of the thinner side wherever the wider side
# had >= 64 channels (64 -> 32 at 100x100, batch 16: 517 vs 107 ms; 64 -> 128
# at 64x52, batch 8: 88 vs 37), and not reliably slower below (32 -> 16 at
# 50x50: 7 vs 9-11 ms; 32 -> 1 at 256x208: 20 vs 21 in one run, 28 vs 20 in
# another).
_PATCH_GRAD_MIN_WIDE = 64


def patch_weight_grad(c: int, d: int) -> bool:
  """Whether `conv3x3` with `c` input and `d` output channels takes its
  weight gradient as a patch matmul (else XLA's)."""
  return max(c, d) >= _PATCH_GRAD_MIN_WIDE


@jax.custom_vjp
def conv3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """3x3 'SAME' NHWC conv whose weight gradient may be a patch matmul.

  XLA:CPU's backward-filter convolution runs far below matmul speed on
  wide layers. There the weight gradient is sum patches^T @ dy, taking the
  3x3 patches of whichever of x and dy has fewer channels; below
  `_PATCH_GRAD_MIN_WIDE` channels it is XLA's. Being a custom_vjp, it
  supports reverse-mode differentiation only (no jvp/jacfwd).
  """
  return _conv3x3(x, kernel)


def _conv3x3_fwd(x, kernel):
  return _conv3x3(x, kernel), (x, kernel)


def _conv3x3_bwd(residuals, dy):
  x, kernel = residuals
  b, _, _, c = x.shape
  d = dy.shape[-1]
  if not patch_weight_grad(c, d):
    return jax.vjp(_conv3x3, x, kernel)[1](dy)
  (dx,) = jax.vjp(lambda x: _conv3x3(x, kernel), x)[1](dy)
  if c < d:  # dk[i, j] = sum x[p + (i, j) - 1] dy[p]
    dk = jnp.einsum('bnk,bnd->bkd', _patches3x3(x), dy.reshape(b, -1, d))
    dk = dk.sum(0).reshape(3, 3, c, d)
  else:  # the same sum written as x[p] dy[p - (i, j) + 1]: taps reversed
    dk = jnp.einsum('bnc,bnk->bck', x.reshape(b, -1, c), _patches3x3(dy))
    dk = dk.sum(0).reshape(c, 3, 3, d)[:, ::-1, ::-1].transpose(1, 2, 0, 3)
  return dx, dk


conv3x3.defvjp(_conv3x3_fwd, _conv3x3_bwd)


def _fold_taps(w: jax.Array) -> jax.Array:
  """(3, ...) taps of a conv on a 2x-nearest-upsampled axis -> (2, 2, ...).

  Output row 2i reads upsampled rows 2i-1, 2i, 2i+1 = input rows i-1, i, i;
  row 2i+1 reads input rows i, i, i+1. So parity 0 is the 2-tap filter
  (w0, w1 + w2) over input rows (i-1, i) and parity 1 is (w0 + w1, w2) over
  (i, i+1). Indexed by parity, then tap.
  """
  return jnp.stack([jnp.stack([w[0], w[1] + w[2]]),
                    jnp.stack([w[0] + w[1], w[2]])])


def _parity_kernel(kernel: jax.Array) -> jax.Array:
  """(3, 3, C, F) kernel -> (2, 2, C, 4F) kernel of the four output parities."""
  c, f = kernel.shape[2:]
  k = _fold_taps(kernel)                        # (pr, th, kw, c, f)
  k = _fold_taps(jnp.moveaxis(k, 2, 0))         # (pc, tw, pr, th, c, f)
  return jnp.transpose(k, (3, 1, 4, 2, 0, 5)).reshape(2, 2, c, 4 * f)


def _interleave(y: jax.Array) -> jax.Array:
  """(B, H+1, W+1, 4F) parity outputs -> (B, 2H, 2W, F).

  Parity (pr, pc)'s output at (a, b) covers input rows a-1, a and columns
  b-1, b, so pixel (2i + pr, 2j + pc) is its output at (i + pr, j + pc).
  """
  b, h1, w1, f4 = y.shape
  h, w, f = h1 - 1, w1 - 1, f4 // 4
  y = y.reshape(b, h1, w1, 2, 2, f)
  rows = [jnp.stack([y[:, pr:pr + h, pc:pc + w, pr, pc] for pc in range(2)], axis=3)
          for pr in range(2)]
  return jnp.stack(rows, axis=2).reshape(b, 2 * h, 2 * w, f)


def _deinterleave(d: jax.Array) -> jax.Array:
  """The transpose of `_interleave`: (B, 2H, 2W, F) -> (B, H+1, W+1, 4F)."""
  b, h2, w2, f = d.shape
  blocks = [[jnp.pad(d[:, pr::2, pc::2], ((0, 0), (pr, 1 - pr), (pc, 1 - pc), (0, 0)))
             for pc in range(2)] for pr in range(2)]
  y = jnp.stack([jnp.stack(row, axis=3) for row in blocks], axis=3)
  return y.reshape(b, h2 // 2 + 1, w2 // 2 + 1, 4 * f)


@jax.custom_vjp
def upsample_conv3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """`conv3x3(upsample2(x), kernel)` computed at the input resolution.

  One 2x2 conv of the 1-padded input to 4x the channels (one group per
  output pixel parity, kernels folded from `kernel`), then an interleave:
  16/36 of the multiply-adds, on a quarter of the pixels. The backward pass
  is written out because XLA:CPU's own input gradient of a 2x2 conv is slow
  (233 ms vs 118 ms for the equivalent 3x3 conv, 101x101, 256 -> 32
  channels, batch 16). Reverse-mode only.
  """
  return _interleave(conv_nhwc(x, _parity_kernel(kernel), _PAD1))


def _upsample_conv3x3_fwd(x, kernel):
  return upsample_conv3x3(x, kernel), (x, kernel)


def _upsample_conv3x3_bwd(residuals, d):
  x, kernel = residuals
  b, h, w, _ = x.shape
  k2, fold_vjp = jax.vjp(_parity_kernel, kernel)
  dy = _deinterleave(d)
  # dx[i, j] = sum_{t, u} dy[i + t, j + u] k2[1 - t, 1 - u]^T: one matmul to
  # the four taps' terms, then the sum of their shifted windows. XLA:CPU's
  # 2x2 or zero-padded 3x3 conv of dy is slower (dec2 of casq/paper, batch
  # 16: 165 vs 210 ms for the whole gradient).
  z = jnp.einsum('bhwf,tucf->bhwtuc', dy, k2[::-1, ::-1])
  dx = sum(z[:, t:t + h, u:u + w, t, u] for t in range(2) for u in range(2))
  dk2 = jnp.einsum('bnk,bnd->bkd', _patches(x, 2, 2, _PAD1),
                   dy.reshape(b, -1, dy.shape[-1])).sum(0)
  (dkernel,) = fold_vjp(dk2.reshape(k2.shape))
  return dx, dkernel


upsample_conv3x3.defvjp(_upsample_conv3x3_fwd, _upsample_conv3x3_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def strided_conv(x: jax.Array, kernel: jax.Array, stride: int,
                 padding: Padding) -> jax.Array:
  """NHWC/HWIO conv at `stride` whose weight gradient is a patch matmul.

  XLA:CPU's backward-filter convolution of the discriminator's 4x4 stride-2
  convs ran at a third of the speed of sum patches^T @ dy (batch 16, 2-core
  AMD EPYC, `experiments/benchmark_conv_grad.py`: 32 -> 64 at 128x104, 139
  vs 63 ms). The input gradient is XLA's. Reverse-mode only.
  """
  return conv_nhwc(x, kernel, padding, stride)


def _strided_conv_fwd(x, kernel, stride, padding):
  return conv_nhwc(x, kernel, padding, stride), (x, kernel)


def _strided_conv_bwd(stride, padding, residuals, dy):
  x, kernel = residuals
  kh, kw, c, d = kernel.shape
  (dx,) = jax.vjp(lambda x: conv_nhwc(x, kernel, padding, stride), x)[1](dy)
  patches = _patches(x, kh, kw, padding, stride)
  dk = jnp.einsum('bnk,bnd->kd', patches, dy.reshape(dy.shape[0], -1, d))
  return dx, dk.reshape(kh, kw, c, d)


strided_conv.defvjp(_strided_conv_fwd, _strided_conv_bwd)


def conv_general_dilated(lhs: jax.Array, rhs: jax.Array,
                         window_strides: Sequence[int],
                         padding: str | Sequence[tuple[int, int]],
                         lhs_dilation: Sequence[int] | None = None,
                         rhs_dilation: Sequence[int] | None = None,
                         dimension_numbers=None, feature_group_count: int = 1,
                         precision=None) -> jax.Array:
  """`strided_conv` behind `lax.conv_general_dilated`'s signature, for
  `nn.Conv(conv_general_dilated=...)`: the same parameters as a plain
  `nn.Conv`. Only the 2-D NHWC, undilated, ungrouped, equal-stride
  convolutions that flax's Conv makes of NHWC inputs."""
  nhwc = jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape,
                                        ('NHWC', 'HWIO', 'NHWC'))
  dilated = any(d != 1 for d in (*(lhs_dilation or ()), *(rhs_dilation or ())))
  if (lhs.ndim != 4 or dimension_numbers != nhwc or dilated
      or feature_group_count != 1 or precision is not None
      or len(set(window_strides)) != 1):
    raise ValueError(
        f'cpu_conv.conv_general_dilated: input {lhs.shape}, kernel '
        f'{rhs.shape}, strides {tuple(window_strides)}: expected a 2-D NHWC '
        'convolution with equal strides, no dilation, groups or precision')
  if isinstance(padding, str):
    padding = jax.lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2],
                                      window_strides, padding)
  return strided_conv(lhs, rhs, window_strides[0],
                      tuple(tuple(p) for p in padding))
