"""SAGAN self-attention: shapes, identity at gamma = 0, non-local once gamma != 0."""

import jax
import jax.numpy as jnp
import numpy as np

from f2s.models import SelfAttention


def _setup():
  x = jax.random.normal(jax.random.key(0), (2, 4, 5, 16))
  att = SelfAttention()
  return att, att.init(jax.random.key(1), x), x


def test_zero_gamma_is_identity():
  att, variables, x = _setup()
  assert float(variables['params']['gamma']) == 0.0
  np.testing.assert_array_equal(att.apply(variables, x), x)


def test_output_depends_on_every_position():
  att, variables, x = _setup()
  params = {**variables['params'], 'gamma': 1.0}
  # Jacobian of the output at position (0, 0) of example 0 w.r.t. the whole input.
  jac = jax.jacrev(lambda x: att.apply({'params': params}, x)[0, 0, 0])(x)
  per_position = np.abs(np.asarray(jac)).sum(axis=(0, -1))  # (B, H, W)
  assert np.all(per_position[0] > 0)  # every position of its own example
  assert np.all(per_position[1] == 0)  # never another example
  # Perturbing the far corner changes the output at (0, 0).
  y = att.apply({'params': params}, x)
  y2 = att.apply({'params': params}, x.at[0, -1, -1].add(1.0))
  assert np.abs(np.asarray(y2 - y)[0, 0, 0]).max() > 1e-4


def test_attention_shapes():
  for batch in (1, 2):
    x = jax.ShapeDtypeStruct((batch, 25, 25, 16), jnp.float32)
    att = SelfAttention()
    v = jax.eval_shape(att.init, jax.random.key(0), x)
    y = jax.eval_shape(att.apply, v, x)
    assert y.shape == x.shape and y.dtype == jnp.float32
    assert v['params']['query']['kernel'].shape == (1, 1, 16, 2)
    assert v['params']['value']['kernel'].shape == (1, 1, 16, 8)
