"""Damaged run files: a torn last line of metrics.jsonl is dropped with a
note; a corrupt config.json is named with its problem."""
import json
import os

import pytest

from f2s import pretrained
from f2s.training import checkpoints, writers


def _log(workdir, text):
  path = workdir / writers.METRICS_FILE
  path.write_text(text)
  return path


LINES = ''.join(json.dumps({'step': s, 'split': 'train', 'loss': 1.0 / s})
                + '\n' for s in (5, 10, 15))


@pytest.mark.parametrize('torn', ['{"step": 20, "spl', '{"step": 20}', 'xx\n'])
@pytest.mark.parametrize('resume_step', [None, 10])
def test_a_torn_last_line_is_dropped_with_a_note(tmp_path, capsys, torn,
                                                 resume_step):
  path = _log(tmp_path, LINES + torn)
  writers.MetricWriter(str(tmp_path), resume_step=resume_step).close()
  kept = [json.loads(line)['step'] for line in path.read_text().splitlines()]
  assert kept == ([5, 10, 15] if resume_step is None else [5, 10])
  err = capsys.readouterr().err
  assert f'note: {path}: dropping its torn last line 4' in err


def test_a_bad_line_before_the_last_is_named(tmp_path):
  path = _log(tmp_path, LINES.replace('{"step": 10', '{"step": 1x') + LINES)
  with pytest.raises(ValueError, match=f'{path}: line 2 is not a JSON record'):
    writers.MetricWriter(str(tmp_path), resume_step=10)


def test_best_step_reads_past_a_torn_last_line(tmp_path, load_config):
  config = load_config('casq')
  _log(tmp_path, json.dumps({'step': 10, 'split': 'eval', 'ssim': 0.5})
       + '\n' + json.dumps({'step': 20, 'split': 'eval', 'ssim': 0.4})
       + '\n{"step": 30, "split": "ev')
  assert pretrained.best_step(str(tmp_path), config, [10, 20]) == 10


@pytest.fixture
def with_checkpoint(tmp_path):
  """A workdir whose config.json is checked: it has a checkpoint folder."""
  os.makedirs(tmp_path / checkpoints.CHECKPOINT_DIR / '10')
  return tmp_path


@pytest.mark.parametrize('text,problem', [
    ('{"model": ', 'is not valid JSON (Expecting value'),
    ('[1, 2]', 'holds a JSON list, not the run\'s config'),
])
def test_a_corrupt_config_json_is_named(with_checkpoint, load_config, text,
                                        problem):
  path = with_checkpoint / checkpoints.CONFIG_FILE
  path.write_text(text)
  with pytest.raises(ValueError) as e:
    checkpoints.check_workdir(str(with_checkpoint), load_config('casq'))
  assert str(e.value).startswith(f'{path} {problem}')
  with pytest.raises(pretrained.ModelError) as e:
    pretrained.load_run(str(with_checkpoint))
  assert str(path) in str(e.value) and '\n' not in str(e.value)
