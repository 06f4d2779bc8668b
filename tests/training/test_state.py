"""Train state and optimizer: learning-rate schedules, clipping, weight
decay, and the fresh state's contents."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from f2s.models.discriminator import (MultiScaleDiscriminator,
                                     PatchDiscriminator)
from f2s.training import state as state_lib


def _rates(train, steps):
  schedule = state_lib.learning_rate_schedule(train)
  return [float(schedule(s)) for s in steps]


def test_constant_schedule_with_linear_warmup(train_config):
  train = train_config(learning_rate=0.1, warmup_steps=10)
  np.testing.assert_allclose(_rates(train, [0, 5, 10, 11, 1000]),
                             [0.0, 0.05, 0.1, 0.1, 0.1], rtol=1e-6)
  assert _rates(train_config(learning_rate=0.1), [0]) == pytest.approx([0.1])


def test_cosine_schedule_decays_to_zero_after_warmup(train_config):
  train = train_config(learning_rate=0.1, lr_schedule='cosine',
                       warmup_steps=10, num_steps=110)
  np.testing.assert_allclose(_rates(train, [5, 10, 60, 110]),
                             [0.05, 0.1, 0.05, 0.0], rtol=1e-5, atol=1e-9)
  no_warmup = train_config(learning_rate=0.1, lr_schedule='cosine',
                           num_steps=100)
  np.testing.assert_allclose(_rates(no_warmup, [0, 50, 100]),
                             [0.1, 0.05, 0.0], rtol=1e-5, atol=1e-9)


def test_unknown_schedule_is_named(train_config):
  with pytest.raises(ValueError, match="lr_schedule='linear'"):
    state_lib.learning_rate_schedule(train_config(lr_schedule='linear'))


def _updates(train, grads_seq, params):
  tx = state_lib.make_optimizer(train)
  opt_state = tx.init(params)
  out = []
  for grads in grads_seq:
    updates, opt_state = tx.update(grads, opt_state, params)
    out.append(updates)
  return out


def test_gradients_are_clipped_to_the_global_norm(train_config):
  params = {'w': jnp.ones(3)}
  g1 = {'w': jnp.array([6.0, 0.0, 8.0])}  # norm 10: clipped to 1
  g2 = {'w': jnp.array([0.3, -0.4, 0.0])}  # norm 0.5: unchanged
  clipped = _updates(train_config(grad_clip_norm=1.0), [g1, g2], params)
  by_hand = _updates(train_config(grad_clip_norm=0.0),
                     [jax.tree.map(lambda g: g / 10, g1), g2], params)
  unclipped = _updates(train_config(grad_clip_norm=0.0), [g1, g2], params)
  for a, b in zip(clipped, by_hand):
    np.testing.assert_allclose(a['w'], b['w'], rtol=1e-5)
  assert not np.allclose(clipped[1]['w'], unclipped[1]['w'])


def test_weight_decay_shrinks_parameters_without_gradient(train_config):
  params = {'w': jnp.array([2.0, -4.0])}
  zero = {'w': jnp.zeros(2)}
  decayed, = _updates(train_config(learning_rate=0.1, weight_decay=0.5),
                      [zero], params)
  np.testing.assert_allclose(decayed['w'], [-0.1, 0.2], rtol=1e-6)
  plain, = _updates(train_config(learning_rate=0.1), [zero], params)
  np.testing.assert_array_equal(plain['w'], [0.0, 0.0])


def test_create_train_state(stand_in, train_config):
  tx = state_lib.make_optimizer(train_config())
  state = state_lib.create_train_state(stand_in, tx, (1, 16, 16, 3), seed=5)
  assert state.step.dtype == jnp.int32 and int(state.step) == 0
  assert jax.tree.map(jnp.shape, state.params) == {
      'conv': {'kernel': (3, 3, 3, 3), 'bias': (3,)}}
  assert set(state.model_state) == {'vq_ema'}
  np.testing.assert_array_equal(state.model_state['vq_ema']['mean'], 0)
  # A raw uint32 key, so the state checkpoints as plain arrays.
  assert state.rng.dtype == jnp.uint32 and state.rng.shape == (2,)
  assert jax.tree.structure(state.opt_state) == jax.tree.structure(
      tx.init(state.params))
  same = state_lib.create_train_state(stand_in, tx, (1, 16, 16, 3), seed=5)
  other = state_lib.create_train_state(stand_in, tx, (1, 16, 16, 3), seed=6)
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(same)):
    np.testing.assert_array_equal(a, b)
  assert not np.array_equal(state.params['conv']['kernel'],
                            other.params['conv']['kernel'])
  assert not np.array_equal(state.rng, other.rng)


def test_train_parts_and_initial_state_follow_gan_weight(stand_in, load_config):
  """A discriminator (and a GANTrainState) exactly when gan.weight > 0."""
  config = load_config('casq')
  config.gan.weight = 0.0
  parts = state_lib.make_train_parts(config)
  assert parts.disc is None and parts.disc_tx is None
  state = state_lib.initial_state(parts, stand_in, (1, 16, 16, 3), 3, seed=0)
  assert type(state) is state_lib.TrainState
  config.gan.weight = 0.1
  parts = state_lib.make_train_parts(config)
  assert parts.disc.features == tuple(config.gan.features)
  assert parts.disc.spectral_norm
  config.gan.spectral_norm = False
  assert not state_lib.make_train_parts(config).disc.spectral_norm
  # A config saved before the knob existed: spectral norm, as then.
  del config.gan['spectral_norm']
  assert state_lib.make_train_parts(config).disc.spectral_norm
  config.gan.scales = 3
  disc = state_lib.make_train_parts(config).disc
  assert isinstance(disc, MultiScaleDiscriminator) and disc.scales == 3
  # A config saved before the knob existed: one PatchGAN, as then.
  del config.gan['scales']
  assert isinstance(state_lib.make_train_parts(config).disc,
                    PatchDiscriminator)
  gan_state = state_lib.initial_state(parts, stand_in, (1, 16, 16, 3), 3,
                                      seed=0)
  assert isinstance(gan_state, state_lib.GANTrainState)
  assert jax.tree.leaves(gan_state.disc_params)
  # The model's part is the same with or without a discriminator.
  for a, b in zip(jax.tree.leaves(state.params),
                  jax.tree.leaves(gan_state.params)):
    np.testing.assert_array_equal(a, b)
