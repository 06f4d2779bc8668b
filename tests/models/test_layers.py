"""Layers: an upsampling block is the block of the upsampled input, a pooling
block the pooled block, an encoder without skips the encoder with them, with
either conv implementation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from f2s.models.layers import (Conv3x3, ConvBlock, ConvEncoder, FastConv3x3,
                               make_block, resolve_conv_impl)
from f2s.resample import max_pool2, upsample2


@pytest.mark.parametrize('block,num_groups,features', [
    ('plain', 0, 6), ('plain', 2, 6), ('residual', 2, 6), ('residual', 2, 4),
    ('residual', 0, 6)])
@pytest.mark.parametrize('conv', [Conv3x3, FastConv3x3])
def test_upsampling_block_is_block_of_upsampled_input(block, num_groups, features,
                                                      conv):
  """make_block(..., upsample=True)(x) == make_block(...)(upsample2(x)), same params."""
  x = jax.random.normal(jax.random.key(6), (2, 5, 4, 4))
  ours = make_block(block, features, num_groups, 'b', upsample=True, conv=conv)
  ref = make_block(block, features, num_groups, 'b', conv=conv)
  params = ours.init(jax.random.key(7), x)
  jax.tree.map(np.testing.assert_array_equal, params,
               ref.init(jax.random.key(7), upsample2(x)))
  params = jax.tree.map(lambda p: p + 0.1, params)
  np.testing.assert_allclose(ours.apply(params, x), ref.apply(params, upsample2(x)),
                             rtol=1e-4, atol=1e-5)


def test_auto_conv_impl_is_cpu_fast_only_on_cpu():
  assert resolve_conv_impl('xla') is Conv3x3
  assert resolve_conv_impl('cpu_fast') is FastConv3x3
  expected = FastConv3x3 if jax.default_backend() == 'cpu' else Conv3x3
  assert resolve_conv_impl('auto') is expected


@pytest.mark.parametrize('num_groups', [0, 2])
@pytest.mark.parametrize('conv', [Conv3x3, FastConv3x3])
def test_pooling_block_is_pooled_block(num_groups, conv):
  """ConvBlock(pool=True) == max_pool2(ConvBlock()), output and gradients;
  without a norm it pools before the bias and ReLU (exactly equal outputs)."""
  x = jax.random.normal(jax.random.key(8), (2, 6, 4, 3))
  ours = ConvBlock(4, num_groups, conv=conv, pool=True)
  ref = ConvBlock(4, num_groups, conv=conv)
  params = ours.init(jax.random.key(9), x)
  jax.tree.map(np.testing.assert_array_equal, params, ref.init(jax.random.key(9), x))
  params = jax.tree.map(lambda p: p + 0.1, params)
  np.testing.assert_array_equal(ours.apply(params, x), max_pool2(ref.apply(params, x)))

  def loss(module, params, x):
    out = module.apply(params, x)
    return jnp.sum(jnp.sin(3 * (out if module.pool else max_pool2(out))))

  ours_grads = jax.grad(lambda p, x: loss(ours, p, x), argnums=(0, 1))(params, x)
  ref_grads = jax.grad(lambda p, x: loss(ref, p, x), argnums=(0, 1))(params, x)
  # Same terms, summed in another order by XLA: the weight gradient's 48
  # products (2x6x4 pixels) differ by at most ~48 float32 eps (6e-6) of
  # their absolute sum.
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               ours_grads, ref_grads)


@pytest.mark.parametrize('block,num_groups', [('plain', 0), ('plain', 2),
                                              ('residual', 2)])
def test_encoder_without_skips_is_encoder_with_them(block, num_groups):
  x = jax.random.normal(jax.random.key(10), (2, 8, 8, 3))
  ours = ConvEncoder((4, 4), block, num_groups, skips=False)
  ref = ConvEncoder((4, 4), block, num_groups)
  params = ours.init(jax.random.key(11), x)
  jax.tree.map(np.testing.assert_array_equal, params, ref.init(jax.random.key(11), x))
  code, skips = ours.apply(params, x)
  ref_code, ref_skips = ref.apply(params, x)
  np.testing.assert_allclose(code, ref_code, rtol=1e-6, atol=1e-6)
  assert skips == [] and [s.shape for s in ref_skips] == [(2, 8, 8, 4), (2, 4, 4, 4)]
