"""A resume with other settings than the workdir's config.json is refused,
naming the keys, unless allowed; an allowed change is recorded."""
import json
import os

import pytest

from f2s.training import checkpoints


@pytest.fixture
def run_dir(tmp_path, load_config):
  """A workdir holding a checkpoint of configs/casq.py:tiny."""
  config = load_config('casq')
  checkpoints.write_config(str(tmp_path), config)
  os.makedirs(tmp_path / checkpoints.CHECKPOINT_DIR / '10')
  return str(tmp_path), load_config


def test_the_schedule_length_logging_and_data_path_may_change(run_dir):
  workdir, load_config = run_dir
  config = load_config('casq')
  config.train.num_steps = 99
  config.train.log_every_steps = 1
  config.eval.update(every_steps=7, batch_size=2, write_predictions=True)
  config.checkpoint.update(every_steps=3, max_to_keep=5)
  config.data.update(device_resident='never', num_workers=2,
                     data_dir='/elsewhere')
  changes = checkpoints.check_resume(workdir, config, allow_changes=False)
  assert changes['train.num_steps'] == (20, 99)
  assert len(changes) == 10


def test_other_changes_are_refused_naming_the_keys(run_dir):
  workdir, load_config = run_dir
  config = load_config('casq')
  config.train.learning_rate = 0.05
  config.data.augment = False
  config.train.num_steps = 99  # allowed: not named
  with pytest.raises(ValueError) as e:
    checkpoints.check_resume(workdir, config, allow_changes=False)
  message = str(e.value)
  assert message.startswith(f'{workdir} was trained with another config '
                            '(data.augment: saved True, now False; '
                            'train.learning_rate: saved 0.001, now 0.05)')
  assert '--allow_config_change' in message and 'num_steps' not in message
  changes = checkpoints.check_resume(workdir, config, allow_changes=True)
  assert set(changes) == {'data.augment', 'train.learning_rate',
                          'train.num_steps'}


def test_a_fresh_workdir_and_knobs_unknown_to_the_saved_config_pass(
    tmp_path, run_dir):
  _, load_config = run_dir
  config = load_config('casq')
  config.train.learning_rate = 0.05
  assert checkpoints.check_resume(str(tmp_path / 'new'), config, False) == {}
  workdir = tmp_path / 'old'
  saved = checkpoints.config_to_dict(load_config('casq'))
  del saved['data']['flip']  # a knob added after the run began
  os.makedirs(workdir / checkpoints.CHECKPOINT_DIR / '10')
  (workdir / checkpoints.CONFIG_FILE).write_text(json.dumps(saved))
  assert checkpoints.check_resume(str(workdir), load_config('casq'),
                                  False) == {}


def test_changes_are_recorded_with_their_step(tmp_path):
  checkpoints.record_changes(str(tmp_path), 35, {})
  assert not os.path.exists(tmp_path / checkpoints.CHANGES_FILE)
  checkpoints.record_changes(str(tmp_path), 35,
                             {'train.learning_rate': (0.001, 0.05)})
  checkpoints.record_changes(str(tmp_path), 40, {'data.augment': (True, False)})
  with open(tmp_path / checkpoints.CHANGES_FILE) as f:
    records = [json.loads(line) for line in f]
  assert records == [
      {'step': 35, 'changes': {'train.learning_rate': {'from': 0.001,
                                                       'to': 0.05}}},
      {'step': 40, 'changes': {'data.augment': {'from': True, 'to': False}}}]
