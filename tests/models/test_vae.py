"""Variational autoencoders: the output contract, the paper's sizes,
sampling in training vs the mean in evaluation, the KL term."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from f2s.models import VARIANTS, build_model, default_config
from f2s.models.vae import kl_divergence, reparameterize


@pytest.mark.parametrize('variant', VARIANTS['vae'])
def test_vae_contract(check_contract, variant, io_shapes, batch):
  check_contract('vae', variant, io_shapes, batch, aux_keys={'kl_loss'},
                 state=[])


def test_dense_vae_paper_sizes(make_rngs):
  vae = jax.eval_shape(
      lambda x: build_model(default_config('vae', 'paper'), (200, 200, 3)).init(make_rngs(), x),
      jax.ShapeDtypeStruct((1, 200, 200, 3), jnp.float32))['params']
  assert vae['mean']['kernel'].shape == (32, 4)


def test_vae_sampling_uses_sample_rng_and_eval_uses_mean(make_rngs):
  cfg = default_config('vae', 'conv')
  cfg.features, cfg.latent_channels, cfg.num_groups = (4, 4, 4), 2, 2
  model = build_model(cfg, (16, 16, 1))
  x = jax.random.uniform(jax.random.key(0), (2, 16, 16, 3))
  variables = jax.jit(model.init)(make_rngs(), x)
  apply = jax.jit(model.apply, static_argnames='train')
  ev1, _ = apply(variables, x, train=False)
  ev2, _ = apply(variables, x, train=False, rngs={'sample': jax.random.key(9)})
  np.testing.assert_array_equal(ev1, ev2)
  tr1, aux1 = apply(variables, x, train=True, rngs={'sample': jax.random.key(1)})
  tr1b, _ = apply(variables, x, train=True, rngs={'sample': jax.random.key(1)})
  tr2, _ = apply(variables, x, train=True, rngs={'sample': jax.random.key(2)})
  np.testing.assert_array_equal(tr1, tr1b)
  assert not np.allclose(tr1, tr2) and not np.allclose(tr1, ev1)
  assert float(aux1['kl_loss']) >= 0


def test_kl_matches_closed_form():
  mean = np.array([[0.5, -1.0], [0.0, 2.0]])
  logvar = np.array([[0.1, -0.3], [0.0, 0.7]])
  per = 0.5 * np.sum(np.exp(logvar) + mean**2 - 1 - logvar, axis=1)
  np.testing.assert_allclose(kl_divergence(jnp.array(mean), jnp.array(logvar)), per.mean(),
                             rtol=1e-6)


def test_reparameterize_scales_noise_by_the_standard_deviation():
  mean = jnp.array([[1.0, -2.0, 0.5]])
  logvar = jnp.array([[0.0, 2.0, -2.0]])
  key = jax.random.key(3)
  eps = jax.random.normal(key, mean.shape)
  np.testing.assert_allclose(reparameterize(mean, logvar, key),
                             mean + jnp.exp(0.5 * logvar) * eps, rtol=1e-6)
  np.testing.assert_array_equal(reparameterize(mean, logvar, None), mean)
