"""SAGAN self-attention block (Zhang et al. 2019) for NHWC feature maps."""

import flax.linen as nn
import jax
import jax.numpy as jnp


class SelfAttention(nn.Module):
  """Non-local self-attention with a learned residual gate.

  query/key: 1x1 convs to C // 8 channels; value: 1x1 conv to C // 2 channels
  followed by a 1x1 output projection back to C (the BigGAN form of SAGAN's
  value/output convs); softmax over all H*W positions, logits unscaled as in
  SAGAN; output `x + gamma * o` with the scalar `gamma` initialised to 0, so the
  block starts as the identity.
  """

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    ck, cv = max(c // 8, 1), max(c // 2, 1)
    q = nn.Conv(ck, (1, 1), name='query')(x).reshape(b, h * w, ck)
    k = nn.Conv(ck, (1, 1), name='key')(x).reshape(b, h * w, ck)
    v = nn.Conv(cv, (1, 1), name='value')(x).reshape(b, h * w, cv)
    attn = jax.nn.softmax(jnp.einsum('bqc,bkc->bqk', q, k), axis=-1)
    o = jnp.einsum('bqk,bkc->bqc', attn, v).reshape(b, h, w, cv)
    o = nn.Conv(c, (1, 1), name='out')(o)
    gamma = self.param('gamma', nn.initializers.zeros, ())
    return x + gamma * o
