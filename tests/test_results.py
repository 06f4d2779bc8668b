"""Results tables from runs on disk: means/stds per row, paired ablation
differences, Markdown, the README section; reproduce.py's bad input."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from f2s import results, tables

ROOT = os.path.join(os.path.dirname(__file__), '..')


def test_collect_averages_seeds_and_names_missing_rows(tmp_path, fake_run):
  root = str(tmp_path)
  for seed, ssim in enumerate((0.5, 0.6, 0.7)):
    fake_run(root, 'ablation', 'casq_paper', seed, ssim)
  fake_run(root, 'ablation', 'casq_paper_no_attention', 0, 0.45)
  fake_run(root, 'ablation', 'casq_paper_no_attention', 1, 0.5,
           finished=False)
  result = results.collect_table('ablation', str(tmp_path), 3, None,
                                 cpu_only=True)
  rows = {r['row']: r for r in result['rows']}
  full = rows['casq_paper']
  assert [r['seed'] for r in full['runs']] == [0, 1, 2]
  assert full['mean']['ssim'] == pytest.approx(0.6)
  assert full['std']['ssim'] == pytest.approx(np.std([0.5, 0.6, 0.7]))
  run = full['runs'][0]
  assert run['images_seen'] == 2400 and run['steps'] == 300
  assert set(run) >= {'seed', 'ssim', 'fsim', 'mse', 'psnr', 'steps',
                      'images_seen', 'wall_s', 'device', 'jax', 'command'}
  # An unfinished run is not counted; a row without runs says so.
  assert len(rows['casq_paper_no_attention']['runs']) == 1
  assert rows['dae_conv']['status'] == 'not run yet'
  diffs = results.paired_differences(result, 'casq_paper',
                                     'casq_paper_no_attention', 'ssim')
  assert diffs == pytest.approx([0.05])
  text = results.markdown(result)
  assert '| casq_paper | f2s | 3 | 0.6000 ± 0.0816 |' in text
  assert '| self-attention | 1 | +0.0500 |' in text


def test_study_table_carries_the_reference_and_not_run_rows(tmp_path):
  result = results.collect_table('study', str(tmp_path), 3, None,
                                 cpu_only=True)
  assert result['reference']['casq'] == {'ssim': 0.5289, 'mse': 0.0320}
  rows = {r['row']: r for r in result['rows']}
  assert rows['casq_paper_study']['status'] == results.NOT_RUN
  assert '| casq_paper_study | study | 0 |' in results.markdown(result)


def test_readme_section_is_replaced_between_markers(tmp_path):
  readme = tmp_path / 'README.md'
  readme.write_text('a\n<!-- results:study:begin -->\nold\n'
                    '<!-- results:study:end -->\nb\n')
  assert results.update_readme('study', 'new\n', str(readme))
  assert readme.read_text() == ('a\n<!-- results:study:begin -->\nnew\n'
                                '<!-- results:study:end -->\nb\n')
  assert not results.update_readme('ablation', 'x\n', str(readme))


def _reproduce(*args, cwd=ROOT):
  return subprocess.run(
      [sys.executable, os.path.join(ROOT, 'experiments', 'reproduce.py'),
       *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize('args,message', [
    (['--table=nope'], "unknown --table='nope'"),
    (['--table=study', '--seeds=0'], '--seeds=0'),
    (['--table=study', '--rows=casq_paper,nope'], "unknown row 'nope'"),
])
def test_reproduce_names_bad_arguments(args, message):
  result = _reproduce(*args)
  assert result.returncode != 0
  assert message in result.stderr


def test_reproduce_refuses_a_folder_of_another_config(tmp_path):
  row = tables.find_row('study', 'dae_paper')
  directory = results.run_dir(str(tmp_path), row, 0, 5)
  os.makedirs(directory)
  with open(os.path.join(directory, results.RUN_FILE), 'w') as f:
    json.dump({'command': 'python -m f2s.main --config=other', 'wall_s': 0,
               'finished': True}, f)
  result = _reproduce('--table=study', '--rows=dae_paper', '--seeds=1',
                      '--steps=5', f'--workdir={tmp_path}')
  assert result.returncode != 0
  assert 'holds a run of another config' in result.stderr
  assert directory in result.stderr
