"""The fast conv layers are the plain Flax/XLA layers, values and gradients."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from f2s.models.layers import Conv3x3, conv3x3, make_block, upsample2


def _lax_conv(x, kernel):
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), 'SAME',
                                      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


def _loss_grads(conv, x, kernel, dy):
  return jax.grad(lambda x, k: jnp.sum(conv(x, k) * dy), argnums=(0, 1))(x, kernel)


# 3 -> 64 takes the x-patch weight gradient, 64 -> 3 the dy-patch one, 5 -> 5 XLA's.
@pytest.mark.parametrize('cin,cout', [(3, 64), (64, 3), (5, 5)])
def test_conv3x3_matches_lax_conv_and_its_gradients(cin, cout):
  kx, kk, ky = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, (2, 7, 6, cin))
  kernel = jax.random.normal(kk, (3, 3, cin, cout))
  dy = jax.random.normal(ky, (2, 7, 6, cout))
  np.testing.assert_allclose(conv3x3(x, kernel), _lax_conv(x, kernel), rtol=1e-5, atol=1e-5)
  got = jax.jit(lambda *a: _loss_grads(conv3x3, *a))(x, kernel, dy)
  want = _loss_grads(_lax_conv, x, kernel, dy)
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-4)


def test_conv3x3_module_is_nn_conv():
  x = jax.random.normal(jax.random.key(1), (2, 6, 5, 4))
  ours, ref = Conv3x3(6), nn.Conv(6, (3, 3))
  params = ours.init(jax.random.key(2), x)
  jax.tree.map(np.testing.assert_array_equal, params, ref.init(jax.random.key(2), x))
  params = jax.tree.map(lambda p: p + 0.1, params)  # non-zero bias too
  np.testing.assert_allclose(ours.apply(params, x), ref.apply(params, x), rtol=1e-5,
                             atol=1e-5)


def test_upsample_conv_is_upsample_then_conv():
  """Same parameters, same outputs and same gradients as upsample2 + nn.Conv."""
  x = jax.random.normal(jax.random.key(3), (2, 5, 4, 3))
  ours, ref = Conv3x3(7, upsample=True), nn.Conv(7, (3, 3))
  params = ours.init(jax.random.key(4), x)
  jax.tree.map(np.testing.assert_array_equal, params,
               ref.init(jax.random.key(4), upsample2(x)))
  params = jax.tree.map(lambda p: p + 0.1, params)
  out = ours.apply(params, x)
  assert out.shape == (2, 10, 8, 7)
  np.testing.assert_allclose(out, ref.apply(params, upsample2(x)), rtol=1e-5, atol=1e-5)
  dy = jax.random.normal(jax.random.key(5), out.shape)
  got = jax.grad(lambda p, x: jnp.sum(ours.apply(p, x) * dy), argnums=(0, 1))(params, x)
  want = jax.grad(lambda p, x: jnp.sum(ref.apply(p, upsample2(x)) * dy),
                  argnums=(0, 1))(params, x)
  jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-4), got, want)


@pytest.mark.parametrize('block,num_groups,features', [
    ('plain', 0, 6), ('plain', 2, 6), ('residual', 2, 6), ('residual', 2, 4),
    ('residual', 0, 6)])
def test_upsampling_block_is_block_of_upsampled_input(block, num_groups, features):
  """make_block(..., upsample=True)(x) == make_block(...)(upsample2(x)), same params."""
  x = jax.random.normal(jax.random.key(6), (2, 5, 4, 4))
  ours = make_block(block, features, num_groups, 'b', upsample=True)
  ref = make_block(block, features, num_groups, 'b')
  params = ours.init(jax.random.key(7), x)
  jax.tree.map(np.testing.assert_array_equal, params,
               ref.init(jax.random.key(7), upsample2(x)))
  params = jax.tree.map(lambda p: p + 0.1, params)
  np.testing.assert_allclose(ours.apply(params, x), ref.apply(params, upsample2(x)),
                             rtol=1e-4, atol=1e-5)
