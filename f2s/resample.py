"""2x resampling of NHWC feature maps, written for fast gradients on XLA:CPU."""
import jax
import jax.numpy as jnp


@jax.custom_vjp
def max_pool2(x: jax.Array) -> jax.Array:
  """2x2 max pooling with stride 2 on NHWC input.

  The gradient goes to each window's maximum, shared equally among tied
  maxima (as JAX's own max reductions do), in one pass. On XLA:CPU this
  trains the casq/paper step (batch 16) in 0.55 s against 0.63 s for the
  maximum of four strided sub-grids, whose slices XLA fuses into every
  consumer, and is far faster than `nn.max_pool`'s select-and-scatter.
  """
  b, h, w, c = x.shape
  if h % 2 or w % 2:
    raise ValueError(f'max_pool2 needs even spatial dims, got {(h, w)}.')
  return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def _max_pool2_fwd(x):
  y = max_pool2(x)
  return y, (x, y)


def _max_pool2_bwd(residuals, g):
  x, y = residuals
  b, h, w, c = x.shape
  mask = x.reshape(b, h // 2, 2, w // 2, 2, c) == y[:, :, None, :, None, :]
  ones = mask.astype(g.dtype)
  # Ties counted by adding the four window positions: XLA:CPU runs a sum
  # over the window axes as a YNNPACK fusion at a fraction of memory speed
  # (README, "CPU speed"). The count is an exact small integer either way.
  ties = (ones[:, :, 0, :, 0] + ones[:, :, 0, :, 1]
          + ones[:, :, 1, :, 0] + ones[:, :, 1, :, 1])
  share = (g / ties)[:, :, None, :, None, :]
  return (jnp.where(mask, share, 0).reshape(x.shape),)


max_pool2.defvjp(_max_pool2_fwd, _max_pool2_bwd)


def upsample2(x: jax.Array) -> jax.Array:
  """Nearest-neighbour 2x upsampling of NHWC input (no strided ConvTranspose)."""
  b, h, w, c = x.shape
  x = jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, 2, w, 2, c))
  return x.reshape(b, 2 * h, 2 * w, c)
