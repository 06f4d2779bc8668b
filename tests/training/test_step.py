import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from f2s.data import preprocess

from f2s.training import evaluate as evaluate_lib
from f2s.training import loop, parallel, state as state_lib, step as step_lib
from training_stand_in import StandIn, fake_batch, train_config

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _setup():
  model = StandIn(axis_name=parallel.AXIS)
  tx = state_lib.make_optimizer(train_config())
  mesh = parallel.make_mesh(jax.devices()[:1])
  fn = parallel.data_parallel(step_lib.make_train_step(
      model, tx, terms={'bce': 1.0}, kl_weight=0.0, value_range='unit'), mesh)
  state = parallel.replicate(
      state_lib.create_train_state(model, tx, (1, 16, 16, 3), seed=0), mesh)
  return model, mesh, fn, state


def test_loss_goes_down_and_state_advances():
  _, mesh, fn, state = _setup()
  batch = parallel.global_batch(fake_batch(0, 4), mesh, ('photo', 'sketch'))
  first = None
  for _ in range(30):
    state, metrics = fn(state, batch)
    first = float(metrics['loss']) if first is None else first
  assert float(metrics['loss']) < first - 0.03  # BCE floor is the entropy
  assert int(state.step) == 30
  assert float(np.abs(state.model_state['vq_ema']['mean']).sum()) > 0


def test_data_parallel_matches_single_device_and_pmap():
  env = dict(os.environ, PYTHONPATH=ROOT)
  env.pop('XLA_FLAGS', None)
  result = subprocess.run([sys.executable, os.path.join(HERE, 'dp_check.py')],
                          env=env, capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stdout + result.stderr
  assert 'OK' in result.stdout


def test_eval_uses_mask_and_leaves_state_alone(monkeypatch):
  model, mesh, _, state = _setup()
  spec = preprocess.DataSpec(protocol='casq', value_range='unit')
  # The stand-in's 16x16 images are not the protocol's 200x200: score as is.
  monkeypatch.setattr(preprocess, 'crop_to_valid', lambda x, _: x)
  eval_fn = evaluate_lib.data_parallel_eval(model, spec, mesh)
  real = fake_batch(1, 3)
  # A padding row of garbage that would change every metric if counted.
  padded = {k: np.concatenate([v, np.full((1, *v.shape[1:]), 9.0, np.float32)])
            for k, v in real.items()}
  padded['mask'] = np.array([1, 1, 1, 0], np.float32)
  before = jax.device_get(state)
  metrics, samples = evaluate_lib.evaluate(eval_fn, state, [padded], mesh,
                                           num_samples=2)
  variables = {'params': before.params, **before.model_state}
  logits, _ = model.apply(variables, real['photo'])
  pred = 1 / (1 + np.exp(-np.asarray(logits, np.float64)))
  pred = np.round(pred * 255) / 255  # evaluation scores 8-bit predictions
  ref_mse = np.mean((pred - real['sketch']) ** 2)
  assert metrics['mse'] == pytest.approx(ref_mse, rel=1e-4)
  np.testing.assert_allclose(samples['prediction'], pred[:2], atol=1e-5)
  for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(state)):
    np.testing.assert_array_equal(a, np.asarray(b))


def test_non_finite_loss_names_the_step():
  good = {'loss': np.float32(1.0), 'grad_norm': np.float32(1.0)}
  bad = {'loss': np.float32(np.nan), 'grad_norm': np.float32(1.0)}
  assert len(loop.check_finite([(1, good), (2, good)])) == 2
  with pytest.raises(FloatingPointError, match='step 7'):
    loop.check_finite([(6, good), (7, bad), (8, bad)])


def test_global_batch_checks_keys():
  mesh = parallel.make_mesh(jax.devices()[:1])
  with pytest.raises(KeyError, match='sketch'):
    parallel.global_batch({'photo': np.zeros((2, 4, 4, 3))}, mesh,
                          ('photo', 'sketch'))
