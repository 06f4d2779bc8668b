"""`python -m f2s.main` end to end on the tiny synthetic data set."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _main(*args, timeout=240):
  env = dict(os.environ, PYTHONPATH=ROOT)
  env.pop('XLA_FLAGS', None)
  return subprocess.run([sys.executable, '-m', 'f2s.main', *args], cwd=ROOT,
                        env=env, capture_output=True, text=True,
                        timeout=timeout)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  tmp = tmp_path_factory.mktemp('main')
  workdir = tmp / 'run'
  result = _main('--config=configs/casq.py:tiny', f'--workdir={workdir}',
                 f'--config.data.data_dir={tmp / "tfds"}',
                 '--config.train.num_steps=6', '--config.eval.every_steps=3',
                 '--config.checkpoint.every_steps=3')
  return tmp, workdir, result


def test_train_end_to_end(trained):
  _, workdir, result = trained
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'final (casq/paper, step 6)' in result.stdout
  records = [json.loads(l) for l in open(workdir / 'metrics.jsonl')]
  assert {r['step'] for r in records if r['split'] == 'eval'} == {3, 6}
  assert sorted(os.listdir(workdir / 'samples')) == [
      'step_000003.png', 'step_000006.png']
  assert json.load(open(workdir / 'config.json'))['train']['num_steps'] == 6


def test_eval_mode_and_resume(trained):
  tmp, workdir, _ = trained
  result = _main('--config=configs/casq.py:tiny', f'--workdir={workdir}',
                 f'--config.data.data_dir={tmp / "tfds"}', '--mode=eval')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'checkpoint step 6' in result.stdout
  result = _main('--config=configs/dae.py:tiny', f'--workdir={workdir}',
                 f'--config.data.data_dir={tmp / "tfds"}')
  assert result.returncode != 0
  assert 'incompatible' in result.stderr and 'model' in result.stderr


def test_bad_config_key_and_value(tmp_path):
  result = _main('--config=configs/casq.py:tiny', f'--workdir={tmp_path}',
                 '--config.train.num_stepz=3')
  assert result.returncode != 0 and 'num_stepz' in result.stderr
  result = _main('--config=configs/casq.py:tiny', f'--workdir={tmp_path}',
                 "--config.data.protocol=sideways")
  assert result.returncode != 0
  assert "config.data.protocol='sideways'" in result.stderr
  result = _main('--config=configs/casq.py:huge', f'--workdir={tmp_path}')
  assert result.returncode != 0 and "'huge'" in result.stderr
