"""2x2 max pooling (values, gradients shared among ties) and 2x upsampling."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from f2s.resample import max_pool2, upsample2


def _reference_pool(x):
  """JAX's own max reduction, differentiated by JAX (ties share equally)."""
  b, h, w, c = x.shape
  return jnp.max(x.reshape(b, h // 2, 2, w // 2, 2, c), axis=(2, 4))


def test_pool_and_upsample_values():
  x = jax.random.normal(jax.random.key(0), (2, 6, 4, 3))
  np.testing.assert_array_equal(max_pool2(x), nn.max_pool(x, (2, 2), (2, 2)))
  np.testing.assert_array_equal(upsample2(x), jnp.repeat(jnp.repeat(x, 2, 1), 2, 2))


@pytest.mark.parametrize('ties', [False, True])
def test_pool_gradient_is_jax_max_gradient(ties):
  """The gradient reaches each window's maximum; tied maxima (a constant
  background, rounded values) share it equally."""
  x = jax.random.normal(jax.random.key(1), (2, 6, 4, 3))
  if ties:
    x = jnp.round(x)  # many 2- to 4-way ties
  g = jax.random.normal(jax.random.key(2), (2, 3, 2, 3))
  ours = jax.grad(lambda x: jnp.vdot(max_pool2(x), g))(x)
  ref = jax.grad(lambda x: jnp.vdot(_reference_pool(x), g))(x)
  # One product and one division each, in another order: a few ulps.
  np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=0)
  # Each window passes on its pooled gradient: g / k summed k <= 4 times
  # rounds by a few ulps.
  np.testing.assert_allclose(_sum_pool(ours), g, rtol=1e-5, atol=1e-6)


def _sum_pool(x):
  b, h, w, c = x.shape
  return x.reshape(b, h // 2, 2, w // 2, 2, c).sum(axis=(2, 4))


def test_pool_needs_even_sides():
  with pytest.raises(ValueError, match='even'):
    max_pool2(jnp.zeros((1, 5, 4, 1)))
