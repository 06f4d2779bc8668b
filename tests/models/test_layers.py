"""Layers: pooling and upsampling; an upsampling block is the block of the
upsampled input, with either conv implementation."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from f2s.models.cpu_conv import FastConv3x3
from f2s.models.layers import (Conv3x3, make_block, max_pool2, resolve_conv_impl,
                               upsample2)


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


def test_pool_and_upsample():
  x = jax.random.normal(jax.random.key(0), (2, 6, 4, 3))
  np.testing.assert_array_equal(max_pool2(x), nn.max_pool(x, (2, 2), (2, 2)))
  np.testing.assert_array_equal(upsample2(x), jnp.repeat(jnp.repeat(x, 2, 1), 2, 2))
  with pytest.raises(ValueError, match='even'):
    max_pool2(jnp.zeros((1, 5, 4, 1)))
