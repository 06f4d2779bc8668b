"""Convolutions tuned for XLA:CPU: the same functions as the plain layers,
with hand-written backward passes where XLA:CPU's own are slow.

Elsewhere they bring nothing (on an H100, per the GPU loop issue: 3->64 at
200x200 0.70 ms vs XLA's 0.57, 64->3 0.72 vs 0.94), so
`layers.resolve_conv_impl('auto')` picks them (`layers.FastConv3x3`) only on
the CPU backend.
"""
import jax
import jax.numpy as jnp

from f2s.convolution import conv_nhwc

Padding = tuple[tuple[int, int], tuple[int, int]]
_PAD1: Padding = ((1, 1), (1, 1))


def _conv3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return conv_nhwc(x, kernel)


def _patches(x: jax.Array, kh: int, kw: int, padding: Padding) -> jax.Array:
  """(B, H, W, C) -> (B, Ho * Wo, kh * kw * C): the zero-padded windows."""
  b, _, _, c = x.shape
  xp = jnp.pad(x, ((0, 0), *padding, (0, 0)))
  ho, wo = xp.shape[1] - kh + 1, xp.shape[2] - kw + 1
  taps = [xp[:, i:i + ho, j:j + wo, :] for i in range(kh) for j in range(kw)]
  return jnp.concatenate(taps, axis=-1).reshape(b, ho * wo, kh * kw * c)


def _patches3x3(x: jax.Array) -> jax.Array:
  return _patches(x, 3, 3, _PAD1)


# Measured on XLA:CPU (batch 16, 25x25 to 200x200): the patch matmul wins
# when one side has >= 4x the other's channels and >= 64 of them (e.g.
# 32 -> 256: 164 vs 506 ms; 64 -> 3: 67 vs 116 ms), and loses otherwise (e.g.
# 16 -> 16: 231 vs 44 ms; 64 -> 128: 81 vs 45 ms).
_PATCH_GRAD_RATIO = 4
_PATCH_GRAD_MIN_WIDE = 64


@jax.custom_vjp
def conv3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """3x3 'SAME' NHWC conv whose weight gradient may be a patch matmul.

  XLA:CPU's backward-filter convolution runs far below matmul speed when the
  input and output channel counts are very unequal. There the weight
  gradient is sum_b patches^T @ dy, taking the 3x3 patches of whichever of x
  and dy has fewer channels; elsewhere it is XLA's. Being a custom_vjp, it
  supports reverse-mode differentiation only (no jvp/jacfwd).
  """
  return _conv3x3(x, kernel)


def _conv3x3_fwd(x, kernel):
  return _conv3x3(x, kernel), (x, kernel)


def _conv3x3_bwd(residuals, dy):
  x, kernel = residuals
  b, _, _, c = x.shape
  d = dy.shape[-1]
  thin, wide = min(c, d), max(c, d)
  if wide < _PATCH_GRAD_RATIO * thin or wide < _PATCH_GRAD_MIN_WIDE:
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

