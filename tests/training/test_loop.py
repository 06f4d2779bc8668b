"""Training loop, checkpoints and resume with the real tiny models on fake
data (on two devices), the non-finite loss check, evaluating a checkpoint."""
import json
import os
import shutil

import jax
import numpy as np
import pytest

from f2s import datasets, sharding, xla_cpu
from f2s.training import checkpoints, loop


@pytest.fixture
def make_config(load_config):
  """`make_config(name='casq', **train)`: tiny, constant rate, no augment."""

  def make(name='casq', **train):
    config = load_config(name)
    config.train.update(lr_schedule='constant', **train)
    config.data.augment = False
    return config

  return make


def _params(workdir, config, step=None):
  loop.check_run(config, workdir)
  exp = loop.build_experiment(config, workdir)
  state = checkpoints.restore(exp.manager, exp.state, None, step)
  exp.manager.close()
  return jax.device_get(state)


@pytest.mark.parametrize('name', ['dae', 'vae', 'casq'])
def test_loss_goes_down(name, tmp_path, make_config, sources):
  config = make_config(name, num_steps=20, log_every_steps=5,
                       learning_rate=3e-3, global_batch_size=2)
  config.eval.every_steps = config.checkpoint.every_steps = 20
  loop.train_and_evaluate(config, str(tmp_path), sources=sources)
  with open(tmp_path / 'metrics.jsonl') as f:
    records = [json.loads(line) for line in f]
  train = [r['loss'] for r in records if r['split'] == 'train']
  assert train[-1] < train[0] - 0.01, train
  final = [r for r in records if r['split'] == 'eval'][-1]
  assert 0 < final['ssim'] <= 1 and final['mse'] > 0
  assert (tmp_path / 'samples' / 'step_000020.png').exists()
  assert os.listdir(tmp_path / 'tensorboard')


def test_checkpoints_keep_latest_and_best(tmp_path, make_config, sources):
  config = make_config(num_steps=6)
  config.checkpoint.update(every_steps=1, max_to_keep=2)
  config.eval.every_steps = 2
  loop.train_and_evaluate(config, str(tmp_path), sources=sources)
  steps = sorted(int(s) for s in os.listdir(tmp_path / 'checkpoints')
                 if s.isdigit())
  with open(tmp_path / 'metrics.jsonl') as f:
    evals = {r['step']: r['ssim'] for r in map(json.loads, f)
             if r['split'] == 'eval'}
  best = max(evals, key=evals.get)
  assert steps == sorted({5, 6, best})
  with open(tmp_path / 'config.json') as f:
    assert json.load(f)['model']['name'] == 'casq'


def test_incompatible_workdir_is_refused(tmp_path, make_config, sources):
  config = make_config(num_steps=2)
  loop.train_and_evaluate(config, str(tmp_path), sources=sources)
  other = make_config('dae', num_steps=2)
  with pytest.raises(ValueError, match='incompatible.*model'):
    loop.train_and_evaluate(other, str(tmp_path), sources=sources)
  standard = make_config(num_steps=2)
  standard.data.protocol = 'standard'
  with pytest.raises(ValueError, match='data.protocol'):
    loop.train_and_evaluate(standard, str(tmp_path), sources=sources)


def test_eval_mode_reads_best_checkpoint(tmp_path, make_config, sources):
  config = make_config(num_steps=2)
  _, trained = loop.train_and_evaluate(config, str(tmp_path), sources=sources)
  again = loop.evaluate_checkpoint(config, str(tmp_path),
                                   test_source=sources[1])
  assert again['ssim'] == pytest.approx(trained['ssim'], rel=1e-6)


def test_eval_on_another_data_set_keeps_its_own_files(tmp_path, make_config,
                                                     sources):
  config = make_config(num_steps=2)
  _, trained = loop.train_and_evaluate(config, str(tmp_path), sources=sources)
  config.eval.dataset = 'cufsf_face_sketch'
  other = sources[0][:3]  # stands in for CUFSF's pairs
  scored = loop.evaluate_checkpoint(config, str(tmp_path), test_source=other)
  directory = tmp_path / 'predictions' / 'cufsf_face_sketch' / '2'
  with open(directory / 'metrics.json') as f:
    saved = json.load(f)
  assert saved['ssim'] == pytest.approx(scored['ssim'])
  # The data set's version, so that reproduce.py scores again after a change.
  assert saved['data_version'] == datasets.code_version('cufsf_face_sketch')
  assert len(list(directory.glob('*.png'))) == 3
  assert (tmp_path / 'samples' / 'cufsf_face_sketch_step_000002.png').exists()
  with open(tmp_path / 'metrics.jsonl') as f:
    splits = [r['split'] for r in map(json.loads, f)]
  assert splits.count('eval_cufsf_face_sketch') == 1
  # Nothing lands where the run's own test-split scores go.
  assert not (tmp_path / 'predictions' / '2').exists()
  assert scored['ssim'] != pytest.approx(trained['ssim'])


def test_bad_config_values_are_named(tmp_path, make_config, sources):
  config = make_config()
  config.loss.terms['lpips'] = 1.0
  with pytest.raises(ValueError, match='lpips'):
    loop.train_and_evaluate(config, str(tmp_path), sources=sources)
  config = make_config()
  config.model.name = 'gan'
  with pytest.raises(ValueError, match='gan'):
    loop.train_and_evaluate(config, str(tmp_path), sources=sources)
  assert not os.listdir(tmp_path)  # refused before writing anything


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(
    tmp_path, make_config, sources):
  # A step of size 1e30 makes the next forward pass overflow.
  config = make_config(num_steps=5, learning_rate=1e30, grad_clip_norm=0.0)
  config.checkpoint.every_steps = 1
  with pytest.raises(FloatingPointError, match='step 2'):
    loop.train_and_evaluate(config, str(tmp_path), sources=sources)
  assert [s for s in os.listdir(tmp_path / 'checkpoints') if s.isdigit()] == [
      '1']


def test_non_finite_loss_names_the_step():
  good = {'loss': np.float32(1.0), 'grad_norm': np.float32(1.0)}
  bad = {'loss': np.float32(np.nan), 'grad_norm': np.float32(1.0)}
  assert len(loop.check_finite([(1, good), (2, good)])) == 2
  with pytest.raises(FloatingPointError, match='step 7'):
    loop.check_finite([(6, good), (7, bad), (8, bad)])
  inf_grad = {'loss': np.float32(1.0), 'grad_norm': np.float32(np.inf)}
  with pytest.raises(FloatingPointError, match='step 3'):
    loop.check_finite([(3, inf_grad)])



def _assert_same_state(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6,
                               atol=1e-7)


def _has_data_item(workdir, step):
  return os.path.isdir(os.path.join(workdir, 'checkpoints', str(step),
                                    'data'))


def test_device_resident_run_is_reproducible_and_resumes_exactly(
    tmp_path, make_config, sources):
  def config(num_steps):
    c = make_config(num_steps=num_steps)
    c.data.augment = True  # drawn on the devices from the step
    c.data.device_resident = 'always'
    c.checkpoint.every_steps = 3
    c.eval.every_steps = 100  # only at the end
    return c

  whole, split = str(tmp_path / 'whole'), str(tmp_path / 'split')
  loop.train_and_evaluate(config(6), whole, sources=sources)
  loop.train_and_evaluate(config(4), split, sources=sources)
  assert not _has_data_item(split, 3)  # the position is the step
  # Killed after the save at step 3: step 4 never reached its checkpoint.
  shutil.rmtree(os.path.join(split, 'checkpoints', '4'))
  loop.train_and_evaluate(config(6), split, sources=sources)
  a, b = _params(whole, config(6)), _params(split, config(6))
  assert int(a.step) == int(b.step) == 6
  _assert_same_state(a, b)


def test_gan_run_logs_both_losses_and_resumes(tmp_path, make_config, sources):
  """Killed after its step-2 save, a GAN run resumes there with both
  networks' state, and its log reads as one run. (That a resume is exact
  for any state is test_device_resident_run_is_reproducible_...)"""
  def config(num_steps):
    c = make_config('casq_gan', num_steps=num_steps, log_every_steps=1)
    c.gan.start_step = 2
    c.checkpoint.every_steps = 2
    c.eval.every_steps = 100
    return c

  workdir = str(tmp_path)
  loop.train_and_evaluate(config(3), workdir, sources=sources)
  shutil.rmtree(os.path.join(workdir, 'checkpoints', '3'))
  at_two = _params(workdir, config(4), step=2)
  state, _ = loop.train_and_evaluate(config(4), workdir, sources=sources)
  assert int(state.step) == 4
  final = _params(workdir, config(4))
  moved = [np.abs(np.asarray(a) - np.asarray(b)).max() for a, b in zip(
      jax.tree.leaves(final.disc_params), jax.tree.leaves(at_two.disc_params))]
  assert max(moved) > 0  # the discriminator trained on after the resume
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    train = [r for r in map(json.loads, f) if r['split'] == 'train']
  assert [r['step'] for r in train] == [1, 2, 3, 4]
  for record in train:
    assert np.isfinite(record['disc_loss'])
    assert np.isfinite(record['adversarial_loss'])


def test_grain_runs_resume_exactly_and_their_checkpoints_serve_device_runs(
    tmp_path, make_config, sources, capsys):
  def config(num_steps, mode):
    c = make_config(num_steps=num_steps)
    c.data.augment = True
    c.data.device_resident = mode
    c.checkpoint.every_steps = 2
    c.eval.every_steps = 100
    return c

  whole, split = str(tmp_path / 'whole'), str(tmp_path / 'split')
  _, trained = loop.train_and_evaluate(config(4, 'never'), whole,
                                       sources=sources)
  loop.train_and_evaluate(config(3, 'never'), split, sources=sources)
  shutil.rmtree(os.path.join(split, 'checkpoints', '3'))
  loop.train_and_evaluate(config(4, 'never'), split, sources=sources)
  assert _has_data_item(whole, 4) and _has_data_item(split, 4)
  _assert_same_state(_params(whole, config(4, 'never')),
                     _params(split, config(4, 'never')))
  # A grain run's checkpoint, as the runs before device-resident data made:
  # evaluated and resumed with device-resident data.
  device = config(5, 'auto')
  device.eval.restore = 'latest'
  again = loop.evaluate_checkpoint(device, whole, test_source=sources[1])
  assert again['ssim'] == pytest.approx(trained['ssim'], rel=1e-6)
  capsys.readouterr()
  state, _ = loop.train_and_evaluate(device, whole, sources=sources)
  assert int(state.step) == 5 and not _has_data_item(whole, 5)
  assert 'trained on grain-streamed data' in capsys.readouterr().out


def test_train_compiler_options_follow_the_fsim_term(make_config):
  mesh = sharding.make_mesh()
  config = make_config('casq')
  config.loss.terms.fsim = 0.0
  assert loop.train_compiler_options(config, mesh) == {}
  config.loss.terms.fsim = 2.0
  assert loop.train_compiler_options(config, mesh) == (
      xla_cpu.compiler_options('cpu'))
  assert loop.train_compiler_options(config, mesh)  # this jax knows them
