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


def test_runs_scored_before_lpips_show_a_dash(tmp_path, fake_run):
  root = str(tmp_path)
  fake_run(root, 'standard', 'casq_gan_plain_fsim', 0, 0.6)
  fake_run(root, 'standard', 'casq_gan_plain_fsim', 1, 0.7)
  row = tables.find_row('standard', 'casq_gan_plain_fsim')
  path = os.path.join(results.run_dir(root, row, 1, None), 'predictions',
                      '300', 'metrics.json')
  saved = results.read_json(path)
  del saved['lpips_alex'], saved['lpips_vgg']
  results.write_json(path, saved)
  result = results.collect_table('standard', root, 2, None, cpu_only=True)
  entry = {r['row']: r for r in result['rows']}['casq_gan_plain_fsim']
  assert 'lpips_alex' not in entry['mean']  # only seed 0 holds it
  assert entry['mean']['ssim'] == pytest.approx(0.65)
  assert entry['trained_on'] == ['FSIM', 'SSIM']
  assert ('| casq_gan_plain_fsim | f2s | 2 | 0.6500 ± 0.0500 | 0.7500 ± '
          '0.0500 | 0.3500 ± 0.0500 | 10.00 ± 0.00 | - | - | FSIM, SSIM |'
          in results.markdown(result))


def test_trained_on_names_the_metrics_a_loss_optimises():
  assert results.trained_on({'loss.terms.bce': 1.0}) == []
  assert results.trained_on({'loss.terms.ssim': 1.0,
                             'loss.terms.fsim': 0.0}) == ['SSIM']
  config = {'loss': {'terms': {'bce': 1.0, 'perceptual': 0.1, 'style': 1.0}}}
  assert results.trained_on(config) == ['LPIPS-VGG']


def test_generalisation_table_scores_standard_runs_on_cufsf(tmp_path,
                                                             fake_run):
  root = str(tmp_path)
  fake_run(root, 'standard', 'casq_gan', 0, 0.5)
  row = tables.find_row('standard', 'casq_gan')
  run = results.run_dir(root, row, 0, None)
  cufsf = os.path.join(run, 'predictions', tables.GENERALISATION_DATASET,
                       '300')
  os.makedirs(cufsf)
  scores = {'ssim': 0.4, 'fsim': 0.6, 'mse': 0.06, 'psnr': 12.0,
            'lpips_alex': 0.41, 'lpips_vgg': 0.5}
  results.write_json(os.path.join(cufsf, 'metrics.json'),
                     {'step': 300, **scores})
  baseline = results.scored_row(
      'mean_sketch', 'baseline', {**scores, 'fsim': 0.64}, trained=[],
      device='CPU: test', command='python experiments/reproduce.py')
  result = results.collect_table(tables.GENERALISATION, root, 1, None,
                                 cpu_only=True, scored_rows=[baseline])
  rows = {r['row']: r for r in result['rows']}
  assert list(rows)[0] == 'mean_sketch'
  assert rows['casq_gan']['mean'] == pytest.approx(scores)  # not CUHK's 0.5
  assert rows['dae_conv']['status'] == 'not run yet'
  text = results.markdown(result)
  assert '| mean_sketch | baseline | - | 0.4000 | 0.6400 |' in text
  assert '| casq_gan | f2s | 1 | 0.4000 | 0.6000 |' in text
  assert results.seeds_by_row(result)['mean_sketch'] == {None}


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
