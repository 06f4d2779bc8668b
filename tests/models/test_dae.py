"""Autoencoders (dense paper DAE, conv DAE): the output contract, the
paper's layer sizes, determinism."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from f2s.models import VARIANTS, build_model, default_config


@pytest.mark.parametrize('variant', VARIANTS['dae'])
def test_dae_contract(check_contract, variant, io_shapes, batch):
  check_contract('dae', variant, io_shapes, batch, aux_keys=set(), state=[])


def test_dense_dae_paper_sizes(make_rngs):
  dae = jax.eval_shape(
      lambda x: build_model(default_config('dae', 'paper'), (200, 200, 3)).init(make_rngs(), x),
      jax.ShapeDtypeStruct((1, 200, 200, 3), jnp.float32))['params']
  widths = [dae[f'dense{i}']['kernel'].shape[1] for i in range(5)]
  assert widths == [128, 64, 32, 64, 128]
  assert dae['dense0']['kernel'].shape[0] == 200 * 200 * 3


@pytest.mark.parametrize('variant,knobs', [
    ('paper', dict(hidden=(16, 8))),
    ('conv', dict(features=(4,), latent_channels=2, num_groups=2))])
def test_dae_is_deterministic_in_training(make_rngs, variant, knobs):
  cfg = default_config('dae', variant)
  cfg.update(knobs)
  model = build_model(cfg, (8, 8, 1))
  x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 3))
  variables = jax.jit(model.init)(make_rngs(), x)
  apply = jax.jit(model.apply, static_argnames='train')
  train, aux = apply(variables, x, train=True, rngs=make_rngs(1))
  evaluation, _ = apply(variables, x, train=False)
  np.testing.assert_array_equal(train, evaluation)
  assert aux == {}
  assert not np.allclose(train[0], train[1])  # each example its own output
