"""Run in a subprocess with 2 host devices: data-parallel == single device == pmap.

For the stand-in model and the real tiny CASQ (EMA quantizer with dead-code
resets every step, so the shared 'codebook' key matters). Prints 'OK' and the
max differences; exits non-zero on mismatch.
"""
import os
import sys

assert 'jax' not in sys.modules
os.environ['XLA_FLAGS'] = '--xla_force_host_platform_device_count=2'
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from f2s.training import parallel, state as state_lib, step as step_lib  # noqa: E402
from f2s import models  # noqa: E402
from training_stand_in import (StandIn, fake_batch, load_config,  # noqa: E402
                               train_config)

assert jax.device_count() == 2, jax.devices()
tx = state_lib.make_optimizer(train_config())
kwargs = dict(terms={'bce': 1.0, 'ssim': 0.5}, kl_weight=0.0,
              value_range='unit')
keys = ('photo', 'sketch')


def fresh():
  return state_lib.create_train_state(model, tx, (1, 16, 16, 3), seed=3)


def run_mesh(devices, steps=3):
  mesh = parallel.make_mesh(devices)
  fn = parallel.data_parallel(per_device, mesh)
  state = parallel.replicate(fresh(), mesh)
  for i in range(steps):
    state, metrics = fn(state, parallel.global_batch(
        fake_batch(i, 8), mesh, keys))
  return jax.device_get(state), jax.device_get(metrics)


def run_pmap(steps=3):
  fn = jax.pmap(per_device, axis_name='batch')
  state = jax.tree.map(lambda x: np.stack([x, x]), jax.device_get(fresh()))
  for i in range(steps):
    b = {k: v.reshape(2, 4, *v.shape[1:]) for k, v in fake_batch(i, 8).items()}
    state, metrics = fn(state, b)
  state = jax.device_get(state)
  for leaf in jax.tree.leaves(state):  # replicas must agree
    np.testing.assert_array_equal(leaf[0], leaf[1])
  return (jax.tree.map(lambda x: x[0], state),
          jax.tree.map(lambda x: x[0], jax.device_get(metrics)))


def max_diff(a, b):
  return max(float(np.max(np.abs(np.asarray(x, np.float64) -
                                 np.asarray(y, np.float64))))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


casq_config = load_config('casq').model
casq_config.dead_code_steps = 1
for name, model in [
    ('stand-in', StandIn(axis_name='batch')),
    ('casq', models.build_model(casq_config, (16, 16, 3), axis_name='batch'))]:
  per_device = step_lib.make_train_step(model, tx, **kwargs)
  single, m1 = run_mesh(jax.devices()[:1])
  dual, m2 = run_mesh(jax.devices())
  pmapped, m3 = run_pmap()
  fresh_state = jax.device_get(fresh())
  moved = max_diff(single.params, fresh_state.params)
  ema_moved = max_diff(single.model_state, fresh_state.model_state)
  d_dual = max_diff(single, dual)
  d_pmap = max_diff(single, pmapped)
  # perplexity / code_usage describe each replica's own batch (by contract),
  # so only the losses and gradient norm must agree.
  m1, m2, m3 = ({k: v for k, v in m.items()
                 if k.endswith('loss') or k == 'grad_norm'} for m in (m1, m2, m3))
  d_metrics = max(max_diff(m1, m2), max_diff(m1, m3))
  print(f'{name}: moved={moved:.3g} ema_moved={ema_moved:.3g} '
        f'dual={d_dual:.3g} pmap={d_pmap:.3g} metrics={d_metrics:.3g}')
  assert moved > 1e-3 and ema_moved > 1e-3, 'state did not move'
  assert d_dual < 1e-5 and d_pmap < 1e-5 and d_metrics < 1e-5, name
print('OK')
