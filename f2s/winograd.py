"""3x3 stride-1 'SAME' convolutions by Winograd's minimal filtering F(2x2, 3x3)
(Lavin & Gray 2016): each 2x2 output tile from a 4x4 input tile with 16
products per channel pair instead of 36, so 2.25x fewer multiply-adds.

The input and output transforms are sums and differences (XLA fuses them
into loops); the products are 16 batched matmuls, which XLA:CPU runs near
the CPU's FMA peak. The transforms cost memory traffic, so it wins only
where the matmuls dominate: many channels on a small image (`faster`,
measured on XLA:CPU). Results match `lax.conv_general_dilated` to float32
rounding (the transforms' entries are 0, +-1 and +-1/2).
"""
import jax
import jax.numpy as jnp
import numpy as np

from f2s.convolution import conv_nhwc

# F(2, 3): input transform B^T, kernel transform G, output transform A^T.
_BT = ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1))
_G = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], np.float32)
_AT = ((1, 1, 1, 0), (0, 1, -1, -1))

# Measured on XLA:CPU (2-core AMD EPYC, VGG16's convs at 128x104 and below:
# forward at batch 16, input gradient at batch 8, ms, XLA -> Winograd):
# 32x26x256->256 90 -> 54 and 97 -> 59, 16x13x512->512 89 -> 46 and 97 -> 52,
# 8x6x512->512 22 -> 11 and 24 -> 19, 64x52x128->128 80 -> 75 and 95 -> 85;
# level at 64x52x64->128 (41 -> 38, 72 -> 72) and slower at 128x104x64->64
# (94 -> 117, 123 -> 125): with few channels the transforms' memory traffic
# outweighs the products saved.
_MIN_CHANNELS = 128
_MIN_SIDE = 6  # the smallest side measured


def faster(x_shape: tuple[int, ...], kernel_shape: tuple[int, ...]) -> bool:
  """Whether `conv3x3` beats XLA:CPU's convolution for NHWC x and HWIO
  kernel of these shapes."""
  _, h, w, c = x_shape
  return (tuple(kernel_shape[:2]) == (3, 3)
          and min(c, kernel_shape[3]) >= _MIN_CHANNELS
          and min(h, w) >= _MIN_SIDE)


def _combine(rows: tuple[tuple[int, ...], ...],
             xs: list[jax.Array]) -> list[jax.Array]:
  """[sum_i rows[r][i] * xs[i] for each r], for rows of 0 and +-1."""
  out = []
  for row in rows:
    acc = None
    for coef, x in zip(row, xs):
      if coef:
        acc = (x if coef > 0 else -x) if acc is None else (
            acc + x if coef > 0 else acc - x)
    out.append(acc)
  return out


def _lax_conv3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return conv_nhwc(x, kernel, precision=jax.lax.Precision.HIGHEST)


def _forward(x: jax.Array, kernel: jax.Array) -> jax.Array:
  b, h, w, c = x.shape
  d = kernel.shape[-1]
  th, tw = -(-h // 2), -(-w // 2)  # tiles per column and row
  # One pixel of 'SAME' padding before, enough after for whole tiles.
  xp = jnp.pad(x, ((0, 0), (1, 2 * th + 1 - h), (1, 2 * tw + 1 - w), (0, 0)))
  # Tile (i, j) reads rows 2i..2i+3 and columns 2j..2j+3: B^T d B, one
  # (b, th, tw, c) array per transformed position.
  rows = _combine(_BT, [xp[:, r:r + 2 * th:2] for r in range(4)])
  v = jnp.stack([t for row in rows for t in _combine(
      _BT, [row[:, :, s:s + 2 * tw:2] for s in range(4)])])
  u = jnp.einsum('xi,ijcd,yj->xycd', _G, kernel, _G,
                 precision=jax.lax.Precision.HIGHEST).reshape(16, c, d)
  m = jnp.einsum('sbhwc,scd->sbhwd', v, u,
                 precision=jax.lax.Precision.HIGHEST)
  # A^T m A: along the tile's rows, then its columns.
  cols = [_combine(_AT, [m[4 * r + s] for r in range(4)]) for s in range(4)]
  y = [_combine(_AT, [cols[s][p] for s in range(4)]) for p in range(2)]
  y = jnp.stack([jnp.stack(y[p], axis=3) for p in range(2)], axis=2)
  return y.reshape(b, 2 * th, 2 * tw, d)[:, :h, :w]


@jax.custom_vjp
def conv3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """3x3 stride-1 'SAME' NHWC/HWIO convolution by Winograd F(2x2, 3x3).

  Its input gradient is the same convolution of the output gradient with
  the kernel flipped and transposed (Winograd where `faster` says so); the
  kernel gradient is XLA's (dropped by XLA when the kernel is a constant,
  as VGG16's in the feature losses)."""
  return _forward(x, kernel)


def _fwd(x, kernel):
  return _forward(x, kernel), (x, kernel)


def _bwd(residuals, dy):
  x, kernel = residuals
  flipped = jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2)
  dx = (_forward(dy, flipped) if faster(dy.shape, flipped.shape)
        else _lax_conv3x3(dy, flipped))
  (dk,) = jax.vjp(lambda k: _lax_conv3x3(x, k), kernel)[1](dy)
  return dx, dk


conv3x3.defvjp(_fwd, _bwd)
