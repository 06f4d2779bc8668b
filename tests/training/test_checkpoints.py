"""Checkpoints: state and data-iterator round trip, latest/best retention,
config.json, and the workdir checks that refuse incompatible runs."""
import json
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from f2s.data import pipeline, preprocess
from f2s.training import checkpoints, state as state_lib

SPEC = preprocess.DataSpec('casq', 'unit')


@pytest.fixture
def state(stand_in, train_config):
  tx = state_lib.make_optimizer(train_config())
  return state_lib.create_train_state(stand_in, tx, (1, 16, 16, 3), seed=0)


@pytest.fixture
def manager(tmp_path):
  """`manager(max_to_keep=2, best_metric='ssim', best_mode='max')`: a
  checkpoint manager of tmp_path, closed after the test."""
  managers = []

  def make(max_to_keep=2, best_metric='ssim', best_mode='max'):
    managers.append(checkpoints.make_manager(
        str(tmp_path), max_to_keep=max_to_keep, best_metric=best_metric,
        best_mode=best_mode))
    return managers[-1]

  yield make
  for m in managers:
    m.close()


def _at_step(state, step):
  return state.replace(step=jnp.asarray(step, jnp.int32))


def _saved_steps(tmp_path):
  return sorted(int(s) for s in os.listdir(tmp_path / checkpoints.CHECKPOINT_DIR)
                if s.isdigit())


def test_state_and_data_iterator_round_trip(tmp_path, manager, state,
                                            fake_source):
  records = fake_source(8)
  iterator = iter(pipeline.make_train_loader(records, SPEC, seed=0,
                                             host_batch=2))
  next(iterator), next(iterator)
  state = _at_step(state, 3).replace(
      params=jax.tree.map(lambda p: p + 0.5, state.params))
  assert checkpoints.save(manager(), state, iterator, {'ssim': 0.5})
  expected = next(iterator)
  assert _saved_steps(tmp_path) == [3]
  assert 'process_0-of-1.json' in os.listdir(
      tmp_path / checkpoints.CHECKPOINT_DIR / '3' / 'data')

  template = jax.tree.map(jnp.zeros_like, state)
  fresh = iter(pipeline.make_train_loader(records, SPEC, seed=0,
                                          host_batch=2))
  restored = checkpoints.restore(manager(), template, fresh)
  assert int(restored.step) == 3
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored)):
    np.testing.assert_array_equal(a, b)
  batch = next(fresh)  # the batch after the saved position, not the first
  np.testing.assert_array_equal(batch['photo'], expected['photo'])
  np.testing.assert_array_equal(batch['sketch'], expected['sketch'])


def test_save_skips_a_saved_step_and_restore_without_iterator(manager, state):
  m = manager()
  assert checkpoints.save(m, _at_step(state, 1), None)
  changed = _at_step(state, 1).replace(rng=state.rng + 1)
  assert not checkpoints.save(m, changed, None)
  restored = checkpoints.restore(m, state, None)
  np.testing.assert_array_equal(restored.rng, state.rng)


def test_restore_without_checkpoints_names_the_directory(tmp_path, manager,
                                                         state):
  with pytest.raises(FileNotFoundError, match=str(tmp_path)):
    checkpoints.restore(manager(), state, None)


SSIMS = [0.5, 0.9, 0.3, 0.4]  # at steps 1..4: best 2 (max) or 3 (min)


def _save_four(manager, state, mode):
  m = manager(max_to_keep=1, best_mode=mode)
  for step, ssim in enumerate(SSIMS, start=1):
    checkpoints.save(m, _at_step(state, step), None, {'ssim': ssim})
  return m


@pytest.mark.parametrize('mode,best', [('max', 2), ('min', 3)])
def test_keeps_latest_and_best(tmp_path, manager, state, mode, best):
  m = _save_four(manager, state, mode)
  assert m.latest_step() == 4
  assert _saved_steps(tmp_path) == sorted({best, 4})
  restored = checkpoints.restore(m, state, None, best)
  assert int(restored.step) == best


@pytest.mark.parametrize('mode,best', [('max', 2), ('min', 3)])
def test_best_step_is_the_best_by_the_metric(manager, state, mode, best):
  assert _save_four(manager, state, mode).best_step() == best


def test_checkpoints_without_metrics_keep_only_the_latest(tmp_path, manager,
                                                          state):
  m = manager(max_to_keep=2)
  for step in range(1, 5):
    checkpoints.save(m, _at_step(state, step), None)
  assert _saved_steps(tmp_path) == [3, 4]


@pytest.fixture
def run_dir(tmp_path, load_config):
  """A workdir holding a checkpoint of configs/casq.py:tiny."""
  config = load_config('casq')
  checkpoints.write_config(str(tmp_path), config)
  os.makedirs(tmp_path / checkpoints.CHECKPOINT_DIR / '10')
  return tmp_path, config


def test_write_config_writes_the_config_as_json(run_dir):
  workdir, config = run_dir
  with open(workdir / checkpoints.CONFIG_FILE) as f:
    saved = json.load(f)
  assert saved == checkpoints.config_to_dict(config)
  assert saved['data']['pad_to'] == [256, 208]
  assert not os.path.exists(workdir / (checkpoints.CONFIG_FILE + '.tmp'))


def test_same_config_and_harmless_changes_are_accepted(run_dir):
  workdir, config = run_dir
  checkpoints.check_workdir(str(workdir), config)  # pad_to tuple == list
  config.train.num_steps = 99
  config.train.learning_rate = 0.5
  config.eval.batch_size = 2
  checkpoints.check_workdir(str(workdir), config)


@pytest.mark.parametrize('key,value', [
    ('model.variant', 'default'), ('model.embedding_dim', 4),
    ('data.protocol', 'standard'), ('data.value_range', 'symmetric'),
    ('data.pad_to', (260, 208)), ('data.builder_config', 'default'),
    ('data.train_split', 'test'), ('seed', 1),
    ('train.global_batch_size', 8)])
def test_incompatible_config_is_refused_naming_the_key(run_dir, key, value):
  workdir, config = run_dir
  *path, leaf = key.split('.')
  node = config
  for part in path:
    node = node[part]
  old = node[leaf]
  node[leaf] = value
  shown = key.split('.')[0] if key.startswith('model.') else key
  with pytest.raises(ValueError, match=f'incompatible run.*{shown}: saved'):
    checkpoints.check_workdir(str(workdir), config)
  assert checkpoints.incompatibilities(
      checkpoints.config_to_dict(config), config) == []
  node[leaf] = old
  checkpoints.check_workdir(str(workdir), config)


def test_adding_or_resizing_a_discriminator_is_refused(run_dir):
  workdir, config = run_dir
  config.gan.weight = 0.1
  with pytest.raises(ValueError, match=r'discriminator .*saved None, now '
                                       r'\(\[32, 64, 128\], True, 1\)'):
    checkpoints.check_workdir(str(workdir), config)
  saved = checkpoints.config_to_dict(config)
  config.gan.features = (8, 8)
  assert checkpoints.incompatibilities(saved, config)
  config.gan.features = (32, 64, 128)
  # Saved before gan.spectral_norm existed: it was on.
  del saved['gan']['spectral_norm']
  assert checkpoints.incompatibilities(saved, config) == []
  config.gan.spectral_norm = False  # its state collection would be missing
  [problem] = checkpoints.incompatibilities(saved, config)
  assert 'gan.spectral_norm' in problem and 'now ([32, 64, 128], False, 1)' in problem
  config.gan.spectral_norm = True
  # Saved before gan.scales existed: one scale.
  del saved['gan']['scales']
  assert checkpoints.incompatibilities(saved, config) == []
  config.gan.scales = 2  # other parameter names
  [problem] = checkpoints.incompatibilities(saved, config)
  assert 'gan.scales' in problem and 'now ([32, 64, 128], True, 2)' in problem
  config.gan.update(weight=0.0)  # off again: the widths no longer matter
  checkpoints.check_workdir(str(workdir), config)


def test_configs_saved_before_the_gan_section_stay_compatible(run_dir):
  workdir, config = run_dir
  saved = checkpoints.config_to_dict(config)
  del saved['gan']
  assert checkpoints.incompatibilities(saved, config) == []


def test_configs_saved_before_a_model_knob_existed_stay_compatible(run_dir):
  """A knob missing from a saved config had its default: grey_output=False."""
  workdir, config = run_dir
  saved = checkpoints.config_to_dict(config)
  del saved['model']['grey_output']
  assert checkpoints.incompatibilities(saved, config) == []
  config.model.grey_output = True
  [problem] = checkpoints.incompatibilities(saved, config)
  assert re.fullmatch(r"model: saved \{.*'grey_output': False.*\}, "
                      r"now \{.*'grey_output': True.*\}", problem)


def test_checkpoints_without_config_json_are_refused(run_dir):
  workdir, config = run_dir
  os.remove(workdir / checkpoints.CONFIG_FILE)
  with pytest.raises(ValueError, match='no config.json'):
    checkpoints.check_workdir(str(workdir), config)


def test_workdir_without_checkpoints_takes_any_config(tmp_path, load_config):
  checkpoints.write_config(str(tmp_path), load_config('casq'))
  os.makedirs(tmp_path / checkpoints.CHECKPOINT_DIR / 'tmp-not-a-step')
  checkpoints.check_workdir(str(tmp_path), load_config('dae'))
  checkpoints.check_workdir(str(tmp_path / 'new' / 'deeper'),
                            load_config('dae'))
  assert not os.path.exists(tmp_path / 'new')


def test_workdir_that_is_a_file_is_refused(tmp_path, load_config):
  path = tmp_path / 'file'
  path.write_text('x')
  with pytest.raises(ValueError, match='is a file, not a directory'):
    checkpoints.check_workdir(str(path), load_config('casq'))
  with pytest.raises(ValueError, match=f'{path} is a file'):
    checkpoints.check_workdir(str(path / 'run'), load_config('casq'))
