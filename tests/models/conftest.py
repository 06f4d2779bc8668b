"""Model-test fixtures: the rng streams, and the output contract every model
must meet for each input/output shape and batch size."""

import jax
import jax.numpy as jnp
import pytest

from f2s.models import build_model, default_config

RNG_NAMES = ('params', 'sample', 'codebook')


def _rngs(seed=0):
  return {k: jax.random.key(seed + i) for i, k in enumerate(RNG_NAMES)}


@pytest.fixture(scope='session')
def make_rngs():
  """`make_rngs(seed=0)`: one key per rng stream a model may use."""
  return _rngs


@pytest.fixture(params=[((200, 200, 3), (200, 200, 3)),
                        ((256, 208, 3), (256, 208, 1))],
                ids=['casq_protocol', 'standard_protocol'])
def io_shapes(request):
  """(photo shape, sketch shape) of each protocol."""
  return request.param


@pytest.fixture(params=[1, 3], ids=lambda b: f'batch{b}')
def batch(request):
  return request.param


@pytest.fixture(scope='session')
def check_contract():
  """`check_contract(name, variant, io_shapes, batch, aux_keys, state)`:
  logits of the sketch shape, scalar float32 aux `aux_keys`, and the
  non-param collections `state` updated in place (shapes kept) in training."""

  def check(name, variant, io_shapes, batch, aux_keys, state):
    in_shape, out_shape = io_shapes
    model = build_model(default_config(name, variant), out_shape)
    photo = jax.ShapeDtypeStruct((batch, *in_shape), jnp.float32)
    variables = jax.eval_shape(
        lambda x: model.init(_rngs(), x, train=False), photo)
    assert [c for c in variables if c != 'params'] == state
    for train in (True, False):
      fn = lambda v, x: model.apply(v, x, train=train, rngs=_rngs(),
                                    mutable=state if train else False)
      out = jax.eval_shape(fn, variables, photo)
      (logits, aux), new_state = out if train else (out, {})
      assert logits.shape == (batch, *out_shape)
      assert logits.dtype == jnp.float32
      assert set(aux) == aux_keys
      assert all(a.shape == () and a.dtype == jnp.float32
                 for a in aux.values())
      if train:
        assert (jax.tree.map(lambda a: (a.shape, a.dtype), dict(new_state))
                == jax.tree.map(lambda a: (a.shape, a.dtype),
                                {c: variables[c] for c in state}))

  return check
