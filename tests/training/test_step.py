"""The per-device train step: learning, per-step keys, and data parallelism
on two devices equal to one device and to pmap."""
import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from f2s import models
from f2s import sharding
from f2s.models.discriminator import SPECTRAL_COLLECTION as SPECTRAL
from f2s.training import state as state_lib, step as step_lib

KEYS = ('photo', 'sketch')


def test_loss_goes_down_and_state_advances(one_device_run, fake_batch):
  _, mesh, fn, state = one_device_run
  batch = sharding.global_batch(fake_batch(0, 4), mesh, KEYS)
  first = None
  for _ in range(30):
    state, metrics = fn(state, batch)
    first = float(metrics['loss']) if first is None else first
  assert float(metrics['loss']) < first - 0.03  # BCE floor is the entropy
  assert int(state.step) == 30
  assert float(np.abs(state.model_state['vq_ema']['mean']).sum()) > 0


def test_step_keys_share_codebook_key_and_split_sample_key():
  mesh = sharding.make_mesh()
  assert mesh.size == 2

  def per_device(rng, _):
    next_rng, rngs = step_lib.step_keys(rng, sharding.AXIS)
    data = {k: jax.random.key_data(v)[None] for k, v in rngs.items()}
    return next_rng[None], data

  fn = jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P('batch')),
                             out_specs=P('batch'), check_vma=False))
  rng = jax.random.PRNGKey(0)
  next_rng, keys = jax.device_get(fn(rng, np.zeros(2)))
  np.testing.assert_array_equal(next_rng[0], next_rng[1])
  assert not np.array_equal(next_rng[0], rng)
  np.testing.assert_array_equal(keys[models.CODEBOOK_RNG][0],
                                keys[models.CODEBOOK_RNG][1])
  assert not np.array_equal(keys[models.SAMPLE_RNG][0],
                            keys[models.SAMPLE_RNG][1])


def _max_diff(a, b):
  return max(float(np.max(np.abs(np.asarray(x, np.float64) -
                                 np.asarray(y, np.float64))))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.parametrize('name', ['stand-in', 'casq'])
def test_data_parallel_matches_single_device_and_pmap(
    name, stand_in, fake_batch, train_config, load_config, as_float64):
  """For the stand-in and the tiny CASQ (EMA quantizer with dead-code resets
  every step, so the shared 'codebook' key matters)."""
  if name == 'casq':
    casq_config = load_config('casq').model
    casq_config.dead_code_steps = 1
    model = models.build_model(casq_config, (16, 16, 3),
                               axis_name=sharding.AXIS)
  else:
    model = stand_in
  tx = state_lib.make_optimizer(train_config())
  per_device = step_lib.make_train_step(
      model, tx, terms={'bce': 1.0, 'ssim': 0.5}, kl_weight=0.0,
      value_range='unit')

  # Host copies (the step donates the state's buffers), made in float32 and
  # cast: initialised under float64 the layers would draw float64 weights.
  initial = jax.device_get(
      state_lib.create_train_state(model, tx, (1, 16, 16, 3), seed=3))

  def fresh():
    return as_float64(initial)

  def batch64(seed, size):
    return as_float64(fake_batch(seed, size))

  def run_mesh(devices, steps=3):
    mesh = sharding.make_mesh(devices)
    fn = sharding.data_parallel(per_device, mesh)
    state = sharding.replicate(fresh(), mesh)
    for i in range(steps):
      state, metrics = fn(state, sharding.global_batch(
          batch64(i, 8), mesh, KEYS))
    return jax.device_get(state), jax.device_get(metrics)

  def run_pmap(steps=3):
    fn = jax.pmap(per_device, axis_name=sharding.AXIS)
    state = jax.tree.map(lambda x: np.stack([x, x]), jax.device_get(fresh()))
    for i in range(steps):
      batch = {k: v.reshape(2, 4, *v.shape[1:])
               for k, v in batch64(i, 8).items()}
      state, metrics = fn(state, batch)
    state = jax.device_get(state)
    for leaf in jax.tree.leaves(state):  # replicas must agree
      np.testing.assert_array_equal(leaf[0], leaf[1])
    return (jax.tree.map(lambda x: x[0], state),
            jax.tree.map(lambda x: x[0], jax.device_get(metrics)))

  assert jax.device_count() == 2
  # In float64 (states and batches cast; the step and the quantizer follow
  # their dtype): one and two devices sum the gradients and EMA statistics in
  # other orders, and Adam scales a near-zero gradient's rounding noise up
  # towards the learning rate (in float32 up to ~1e-5 here). float64's unit
  # roundoff is 2^29 ~ 5e8 times smaller, so the same growth stays far below
  # 1e-9, while a wrong gradient average or an unsynchronised statistic moves
  # the state by more than 1e-3.
  with jax.enable_x64(True):
    single, m1 = run_mesh(jax.devices()[:1])
    dual, m2 = run_mesh(jax.devices())
    pmapped, m3 = run_pmap()
    start = jax.device_get(fresh())
  assert all(leaf.dtype != np.float32 for leaf in jax.tree.leaves(single))
  assert _max_diff(single.params, start.params) > 1e-3, 'params did not move'
  assert _max_diff(single.model_state, start.model_state) > 1e-3, (
      'EMA state did not move')
  assert _max_diff(single, dual) < 1e-9
  assert _max_diff(single, pmapped) < 1e-9
  # perplexity / code_usage describe each replica's own batch (by contract),
  # so only the losses and gradient norm must agree.
  m1, m2, m3 = ({k: v for k, v in m.items()
                 if k.endswith('loss') or k == 'grad_norm'} for m in (m1, m2, m3))
  assert max(_max_diff(m1, m2), _max_diff(m1, m3)) < 1e-9


FEATURE_MATCHING = 0.5


def _gan_parts(load_config, train_config, start_step, scales=1, r1=0.0):
  config = load_config('casq_gan')
  config.gan.scales = scales
  # The attention's key bias has a zero gradient in exact arithmetic (softmax
  # ignores a shift shared by all keys): Adam would scale rounding noise up
  # to the learning rate and hide what the equality test looks at.
  config.model.attention = False
  model = models.build_model(config.model, (16, 16, 3),
                             axis_name=sharding.AXIS)
  # At 1e-3 (not 1e-2): Adam turns rounding differences between one and two
  # devices in near-zero gradients into steps of up to the learning rate;
  # the plain step with this network differs by 1.3e-5 at 1e-2.
  tx = state_lib.make_optimizer(train_config(learning_rate=1e-3))
  disc = state_lib.make_discriminator(config.gan)
  disc_tx = state_lib.make_disc_optimizer(config.gan)
  per_device = step_lib.make_gan_train_step(
      model, tx, disc, disc_tx, terms={'bce': 1.0}, kl_weight=0.0,
      value_range='unit', adversarial_weight=float(config.gan.weight),
      start_step=start_step, feature_matching_weight=FEATURE_MATCHING,
      r1_weight=r1)

  def fresh():
    return state_lib.create_gan_train_state(model, tx, disc, disc_tx,
                                            (1, 16, 16, 3), 3, seed=3)

  return per_device, fresh


GAN_START = 2


@pytest.fixture(scope='module')
def gan_runs(load_config, train_config, fake_batch):
  """(fresh state, {1: (state, metrics per step), 2: ...}): three GAN steps
  on one and on two devices, the adversarial term on from step GAN_START."""
  per_device, fresh = _gan_parts(load_config, train_config, GAN_START)
  runs = {}
  for count in (1, 2):
    mesh = sharding.make_mesh(jax.devices()[:count])
    fn = sharding.data_parallel(per_device, mesh)
    state = sharding.replicate(fresh(), mesh)
    history = []
    for i in range(3):
      state, metrics = fn(state, sharding.global_batch(fake_batch(i, 8), mesh,
                                                       KEYS))
      history.append(jax.device_get(metrics))
    runs[count] = jax.device_get(state), history
  return jax.device_get(fresh()), runs


def test_gan_step_updates_both_networks_with_finite_losses(gan_runs):
  start, runs = gan_runs
  state, history = runs[1]
  for metrics in history:
    for key in ('loss', 'adversarial_loss', 'feature_matching_loss',
                'disc_loss', 'grad_norm', 'disc_grad_norm'):
      assert np.isfinite(metrics[key]), key
  assert _max_diff(state.params, start.params) > 1e-4
  # three Adam steps at the discriminator's rate 2e-4: up to 6e-4 each
  assert _max_diff(state.disc_params, start.disc_params) > 3e-4
  # the spectral norm's power iteration advanced
  assert _max_diff(state.disc_state, start.disc_state) > 1e-6
  assert int(state.step) == 3


def test_gan_term_counts_only_from_start_step(gan_runs):
  """Before start_step the model's loss is the reconstruction loss alone;
  from it on, the adversarial and feature-matching terms add."""
  _, history = gan_runs[1][1]
  for step, metrics in enumerate(history):
    rest = metrics['bce_loss'] + metrics['vq_loss']
    started = step >= GAN_START
    assert metrics['feature_matching_loss'] > 0
    np.testing.assert_allclose(
        metrics['loss'],
        rest + started * (0.1 * metrics['adversarial_loss']
                          + FEATURE_MATCHING * metrics['feature_matching_loss']),
        rtol=1e-5)


def test_gan_step_on_two_devices_equals_one(gan_runs):
  _, runs = gan_runs
  (single, m1), (dual, m2) = runs[1], runs[2]
  assert _max_diff(single, dual) < 1e-5
  losses = [{k: v for k, v in m[-1].items() if k.endswith('loss')}
            for m in (m1, m2)]
  assert _max_diff(*losses) < 1e-5


def test_gan_step_trains_every_scale_of_a_multi_scale_discriminator(
    load_config, train_config, fake_batch):
  per_device, fresh = _gan_parts(load_config, train_config, 0, scales=2)
  mesh = sharding.make_mesh(jax.devices()[:1])
  start = jax.device_get(fresh())  # the step donates its state's buffers
  state, metrics = sharding.data_parallel(per_device, mesh)(
      sharding.replicate(start, mesh),
      sharding.global_batch(fake_batch(0, 8), mesh, KEYS))
  state, metrics = jax.device_get((state, metrics))
  for key in ('loss', 'adversarial_loss', 'feature_matching_loss',
              'disc_loss', 'disc_real', 'disc_fake'):
    assert np.isfinite(metrics[key]), key
  for scale in ('scale0', 'scale1'):
    # one Adam step at the discriminator's rate 2e-4
    assert _max_diff(state.disc_params[scale],
                     start.disc_params[scale]) > 1e-4, scale
    assert _max_diff(state.disc_state[SPECTRAL][scale],
                     start.disc_state[SPECTRAL][scale]) > 1e-6, scale


def test_r1_penalty_changes_the_discriminators_update_alone(
    load_config, train_config, fake_batch):
  """With R1 the discriminator's loss adds r1 / 2 times the penalty, so its
  update changes; the model's step (which R1 does not enter) is the same."""
  mesh = sharding.make_mesh(jax.devices()[:1])
  batch = sharding.global_batch(fake_batch(0, 8), mesh, KEYS)
  results = {}
  for r1 in (0.0, 10.0):
    per_device, fresh = _gan_parts(load_config, train_config, 0, r1=r1)
    results[r1] = jax.device_get(sharding.data_parallel(per_device, mesh)(
        sharding.replicate(fresh(), mesh), batch))
  (plain, plain_metrics), (with_r1, metrics) = results[0.0], results[10.0]
  assert 'r1_penalty' not in plain_metrics
  assert np.isfinite(metrics['r1_penalty']) and metrics['r1_penalty'] > 0
  # The two hinge losses are means of 32 nonnegative terms (a 2x2 grid of
  # 8 images, real and fake) compiled in two graphs: each within 31 * 6e-8
  # ~ 1.9e-6 of its value, so the two runs' within ~4e-6; rtol 1e-5.
  np.testing.assert_allclose(
      metrics['disc_loss'],
      plain_metrics['disc_loss'] + 5.0 * metrics['r1_penalty'], rtol=1e-5)
  assert _max_diff(with_r1.params, plain.params) == 0
  assert _max_diff(with_r1.disc_params, plain.disc_params) > 0


def test_bfloat16_compute_keeps_float32_state_and_close_losses(
    load_config, train_config, fake_batch):
  """Mixed precision: the state stays float32 (parameters, optimizer, EMA
  codebook), the losses are float32 and near the float32 step's."""
  config = load_config('casq')
  model = models.build_model(config.model, (16, 16, 3),
                             axis_name=sharding.AXIS)
  tx = state_lib.make_optimizer(train_config(learning_rate=1e-3))
  mesh = sharding.make_mesh(jax.devices()[:1])
  batch = sharding.global_batch(fake_batch(0, 4), mesh, KEYS)
  results = {}
  for dtype in step_lib.COMPUTE_DTYPES:
    fn = sharding.data_parallel(step_lib.make_train_step(
        model, tx, terms={'bce': 1.0}, kl_weight=1e-3, value_range='unit',
        compute_dtype=dtype), mesh)
    state = sharding.replicate(state_lib.create_train_state(
        model, tx, (1, 16, 16, 3), seed=0), mesh)
    for _ in range(2):
      state, metrics = fn(state, batch)
    results[dtype] = jax.device_get((state, metrics))
  state, metrics = results['bfloat16']
  for leaf in jax.tree.leaves((state.params, state.opt_state,
                               state.model_state)):
    assert leaf.dtype in (np.float32, np.int32), leaf.dtype
  assert metrics['loss'].dtype == np.float32
  assert np.isfinite(metrics['loss']) and np.isfinite(metrics['grad_norm'])
  np.testing.assert_allclose(metrics['loss'], results['float32'][1]['loss'],
                             rtol=2e-2)
  assert _max_diff(state.params, results['float32'][0].params) < 5e-3
