"""Training loop, checkpoints and resume with the real tiny models on fake data."""
import json
import os

import jax
import numpy as np
import pytest

from f2s.training import checkpoints, loop
from f2s.training.validate import validate_config
from training_stand_in import fake_source, load_config

TRAIN, TEST = fake_source(12), fake_source(5, seed=1)


def _config(name='casq', **train):
  config = load_config(name)
  config.train.update(lr_schedule='constant', **train)
  config.data.augment = False
  return config


def _params(workdir, config, step=None):
  loop.check_run(config, workdir)
  exp = loop.build_experiment(config, workdir)
  state = checkpoints.restore(exp.manager, exp.state, None, step)
  exp.manager.close()
  return jax.device_get(state)


@pytest.mark.parametrize('name', ['dae', 'vae', 'casq'])
def test_loss_goes_down(name, tmp_path):
  config = _config(name, num_steps=20, log_every_steps=5,
                   learning_rate=3e-3, global_batch_size=2)
  config.eval.every_steps = config.checkpoint.every_steps = 20
  loop.train_and_evaluate(config, str(tmp_path), sources=(TRAIN, TEST))
  with open(tmp_path / 'metrics.jsonl') as f:
    records = [json.loads(line) for line in f]
  train = [r['loss'] for r in records if r['split'] == 'train']
  assert train[-1] < train[0] - 0.01, train
  final = [r for r in records if r['split'] == 'eval'][-1]
  assert 0 < final['ssim'] <= 1 and final['mse'] > 0
  assert (tmp_path / 'samples' / 'step_000020.png').exists()
  assert os.listdir(tmp_path / 'tensorboard')


def test_resume_matches_uninterrupted_run(tmp_path):
  whole, split = str(tmp_path / 'whole'), str(tmp_path / 'split')
  config = _config(num_steps=8)
  config.checkpoint.every_steps = 4
  loop.train_and_evaluate(config, whole, sources=(TRAIN, TEST))
  first = _config(num_steps=5)  # interrupted after a save at step 4 ...
  first.checkpoint.every_steps = 4
  loop.train_and_evaluate(first, split, sources=(TRAIN, TEST))
  # ... drop the step-5 checkpoint, as if killed between saves.
  import shutil
  shutil.rmtree(os.path.join(split, 'checkpoints', '5'))
  loop.train_and_evaluate(config, split, sources=(TRAIN, TEST))
  a, b = _params(whole, config), _params(split, config)
  assert int(a.step) == int(b.step) == 8
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6,
                               atol=1e-7)


def test_checkpoints_keep_latest_and_best(tmp_path):
  config = _config(num_steps=6)
  config.checkpoint.update(every_steps=1, max_to_keep=2)
  config.eval.every_steps = 2
  loop.train_and_evaluate(config, str(tmp_path), sources=(TRAIN, TEST))
  steps = sorted(int(s) for s in os.listdir(tmp_path / 'checkpoints')
                 if s.isdigit())
  with open(tmp_path / 'metrics.jsonl') as f:
    evals = {r['step']: r['ssim'] for r in map(json.loads, f)
             if r['split'] == 'eval'}
  best = max(evals, key=evals.get)
  assert steps == sorted({5, 6, best})
  saved = json.load(open(tmp_path / 'config.json'))
  assert saved['model']['name'] == 'casq'


def test_incompatible_workdir_is_refused(tmp_path):
  config = _config(num_steps=2)
  loop.train_and_evaluate(config, str(tmp_path), sources=(TRAIN, TEST))
  other = _config('dae', num_steps=2)
  with pytest.raises(ValueError, match='incompatible.*model'):
    loop.train_and_evaluate(other, str(tmp_path), sources=(TRAIN, TEST))
  standard = _config(num_steps=2)
  standard.data.protocol = 'standard'
  with pytest.raises(ValueError, match='data.protocol'):
    loop.train_and_evaluate(standard, str(tmp_path), sources=(TRAIN, TEST))


def test_eval_mode_reads_best_checkpoint(tmp_path):
  config = _config(num_steps=2)
  _, trained = loop.train_and_evaluate(config, str(tmp_path),
                                       sources=(TRAIN, TEST))
  again = loop.evaluate_checkpoint(config, str(tmp_path), test_source=TEST)
  assert again['ssim'] == pytest.approx(trained['ssim'], rel=1e-6)


def test_bad_config_values_are_named(tmp_path):
  config = _config()
  config.loss.terms['perceptual'] = 1.0
  with pytest.raises(ValueError, match='perceptual'):
    loop.train_and_evaluate(config, str(tmp_path), sources=(TRAIN, TEST))
  config = _config()
  config.train.global_batch_size = 3
  with pytest.raises(ValueError, match='global_batch_size=3.*2 devices'):
    validate_config(config, device_count=2)
  config = _config()
  config.data.protocol = 'casqq'
  with pytest.raises(ValueError, match="protocol='casqq'"):
    validate_config(config, device_count=1)
  config = _config()
  config.model.name = 'gan'
  with pytest.raises(ValueError, match='gan'):
    loop.train_and_evaluate(config, str(tmp_path), sources=(TRAIN, TEST))


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
  # A step of size 1e30 makes the next forward pass overflow.
  config = _config(num_steps=5, learning_rate=1e30, grad_clip_norm=0.0)
  config.checkpoint.every_steps = 1
  with pytest.raises(FloatingPointError, match='step 2'):
    loop.train_and_evaluate(config, str(tmp_path), sources=(TRAIN, TEST))
  assert [s for s in os.listdir(tmp_path / 'checkpoints') if s.isdigit()] == [
      '1']
