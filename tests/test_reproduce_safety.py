"""experiments/reproduce.py never lowers the committed tables by accident,
and a killed reproduce.py takes its child run with it."""
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from f2s import datasets, results, tables

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE = 'ablation'


def _load_reproduce():
  spec = importlib.util.spec_from_file_location(
      'reproduce', os.path.join(ROOT, 'experiments', 'reproduce.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.fixture
def checkout(tmp_path, monkeypatch):
  """(reproduce module, its root): a copy of the committed ablation table and
  README in tmp_path, which reproduce.py treats as the repository."""
  os.makedirs(tmp_path / 'experiments' / 'results')
  for name in (f'{TABLE}.json', f'{TABLE}.md'):
    shutil.copy(os.path.join(ROOT, 'experiments', 'results', name),
                tmp_path / 'experiments' / 'results' / name)
  shutil.copy(os.path.join(ROOT, 'README.md'), tmp_path / 'README.md')
  reproduce = _load_reproduce()
  monkeypatch.setattr(reproduce, 'ROOT', str(tmp_path))
  monkeypatch.setattr(reproduce, 'RESULTS_DIR',
                      str(tmp_path / 'experiments' / 'results'))
  monkeypatch.setattr(reproduce, 'README', str(tmp_path / 'README.md'))
  monkeypatch.chdir(tmp_path)  # main() changes directory: restored after
  return reproduce, tmp_path


def _committed(root):
  names = [f'experiments/results/{TABLE}.json',
           f'experiments/results/{TABLE}.md', 'README.md']
  return {n: (root / n).read_text() for n in names}


@pytest.fixture
def fake_runs(fake_run):
  """`fake_runs(root, seeds, skip=())`: trained and scored runs of every
  ablation row as reproduce.py leaves them under root/runs/reproduce, except
  the (row, seed) pairs in `skip`."""

  def write(root, seeds, skip=()):
    for row in tables.TABLES[TABLE]:
      for seed in seeds:
        if (row.name, seed) not in skip:
          fake_run(str(root / 'runs' / 'reproduce'), TABLE, row.name, seed)

  return write


def _refused(reproduce, *args):
  with pytest.raises(SystemExit) as e:
    reproduce.main([f'--table={TABLE}', *args])
  return str(e.value)


def test_collect_without_runs_changes_nothing(checkout):
  reproduce, root = checkout
  before = _committed(root)
  message = _refused(reproduce, '--collect')
  assert 'would lose' in message and '\n' not in message
  assert 'casq_paper 3 -> 0 seeds (seeds 0, 1, 2)' in message
  assert '--replace' in message
  assert _committed(root) == before


def test_fewer_seeds_are_refused_before_anything_runs(checkout, fake_runs):
  reproduce, root = checkout
  before = _committed(root)
  fake_runs(root, range(3))
  message = _refused(reproduce, '--collect', '--seeds=1')
  assert 'collecting --seeds=1' in message
  assert 'dae_conv 3 -> 1 seeds (seeds 1, 2)' in message
  assert _committed(root) == before


def test_one_missing_run_is_named(checkout, fake_runs):
  reproduce, root = checkout
  before = _committed(root)
  fake_runs(root, range(3), skip={('dae_conv', 2)})
  message = _refused(reproduce, '--collect')
  assert 'dae_conv 3 -> 2 seeds (seeds 2)' in message
  assert 'casq_paper ' not in message
  assert _committed(root) == before


def test_a_readme_table_with_more_seeds_than_the_json_is_kept(checkout,
                                                              fake_runs):
  reproduce, root = checkout
  fake_runs(root, range(3))
  # The JSON lost a row's runs, the README still shows them.
  path = root / 'experiments' / 'results' / f'{TABLE}.json'
  table = results.read_json(str(path))
  table['rows'][0]['runs'] = []
  results.write_json(str(path), table)
  shutil.rmtree(root / 'runs' / 'reproduce' / tables.TABLES[TABLE][0].run_id)
  message = _refused(reproduce, '--collect')
  assert f'{tables.TABLES[TABLE][0].name} 3 -> 0 seeds' in message


def test_complete_runs_and_replace_write_the_tables(checkout, fake_runs):
  reproduce, root = checkout
  fake_runs(root, range(3))
  reproduce.main([f'--table={TABLE}', '--collect'])
  written = results.read_json(
      str(root / 'experiments' / 'results' / f'{TABLE}.json'))
  assert all(len(r['runs']) == 3 for r in written['rows'])
  assert '| dae_conv | f2s | 3 | 0.5000 ± 0.0000 |' in (
      root / 'README.md').read_text()
  reproduce.main([f'--table={TABLE}', '--collect', '--seeds=1', '--replace'])
  assert '| dae_conv | f2s | 1 | 0.5000 |' in (root / 'README.md').read_text()


def test_named_rows_are_collected_and_the_others_kept(checkout, fake_runs):
  """--rows=dae_conv with only dae_conv's runs on disk: that row is the new
  one, every other row stays as committed (no 'would lose')."""
  reproduce, root = checkout
  path = root / 'experiments' / 'results' / f'{TABLE}.json'
  before = results.read_json(str(path))
  fake_runs(root, range(3), skip={(r.name, s) for r in tables.TABLES[TABLE]
                                  for s in range(3) if r.name != 'dae_conv'})
  reproduce.main([f'--table={TABLE}', '--collect', '--rows=dae_conv'])
  after = results.read_json(str(path))
  assert [r['row'] for r in after['rows']] == [r['row'] for r in before['rows']]
  for old, new in zip(before['rows'], after['rows']):
    if old['row'] == 'dae_conv':
      assert new['mean']['ssim'] == 0.5 and new != old
    else:
      assert new == old
  assert '| dae_conv | f2s | 3 | 0.5000 ± 0.0000 |' in (
      root / 'README.md').read_text()
  # Fewer seeds of the named row are still refused.
  message = _refused(reproduce, '--collect', '--rows=dae_conv', '--seeds=1')
  assert 'dae_conv 3 -> 1 seeds (seeds 1, 2)' in message
  assert 'casq_paper' not in message



def test_first_seed_adds_a_seed_to_the_committed_ones(checkout, fake_runs,
                                                     fake_run):
  """--first_seed=2 with dae_conv's seed 2 on disk: dae_conv keeps its
  committed seeds 0 and 1, adds the new seed 2 and is summarised over the
  three; its seeds 0 and 1 on disk (SSIM 0.9) are not read."""
  reproduce, root = checkout
  path = root / 'experiments' / 'results' / f'{TABLE}.json'
  before = results.read_json(str(path))
  fake_runs(root, [2], skip={(r.name, 2) for r in tables.TABLES[TABLE]
                             if r.name != 'dae_conv'})
  for seed in (0, 1):
    fake_run(str(root / 'runs' / 'reproduce'), TABLE, 'dae_conv', seed, 0.9)
  reproduce.main([f'--table={TABLE}', '--collect', '--rows=dae_conv',
                  '--first_seed=2'])
  after = results.read_json(str(path))
  old = next(r for r in before['rows'] if r['row'] == 'dae_conv')
  new = next(r for r in after['rows'] if r['row'] == 'dae_conv')
  assert new['runs'][:2] == old['runs'][:2]
  assert new['runs'][2]['seed'] == 2 and new['runs'][2]['ssim'] == 0.5
  ssims = [r['ssim'] for r in new['runs']]
  assert new['mean']['ssim'] == pytest.approx(sum(ssims) / 3, rel=1e-12)
  assert 'status' not in new
  assert [r for r in after['rows'] if r['row'] != 'dae_conv'] == [
      r for r in before['rows'] if r['row'] != 'dae_conv']


def test_first_seed_needs_the_earlier_seeds_committed(checkout, fake_runs):
  reproduce, root = checkout
  path = root / 'experiments' / 'results' / f'{TABLE}.json'
  table = results.read_json(str(path))
  row = next(r for r in table['rows'] if r['row'] == 'dae_conv')
  row['runs'] = [r for r in row['runs'] if r['seed'] != 1]
  results.write_json(str(path), table)
  fake_runs(root, [2])
  before = _committed(root)
  message = _refused(reproduce, '--collect', '--rows=dae_conv',
                     '--first_seed=2')
  assert 'lacks dae_conv (seeds 1)' in message and '\n' not in message
  assert _committed(root) == before


@pytest.mark.parametrize('args,match', [
    (['--first_seed=3'], r'--first_seed=3: expected 0 to --seeds - 1 = 2'),
    (['--first_seed=-1'], r'--first_seed=-1'),
    (['--first_seed=1', '--steps=5'], r'neither --steps'),
    (['--first_seed=1', '--replace'], r'nor --replace'),
])
def test_bad_first_seed_is_refused(checkout, capsys, args, match):
  reproduce, _ = checkout
  with pytest.raises(SystemExit):
    reproduce.main([f'--table={TABLE}', '--rows=dae_conv', *args])
  assert re.search(match, capsys.readouterr().err)

def _start_run(child: str, **popen) -> subprocess.Popen:
  """A process in which reproduce.py's _run runs `python -c child`, Ctrl-C
  handled as in a terminal (whatever this process ignores)."""
  return subprocess.Popen([sys.executable, '-c', (
      'import importlib.util, signal, sys\n'
      'signal.signal(signal.SIGINT, signal.default_int_handler)\n'
      f'spec = importlib.util.spec_from_file_location("r", '
      f'{os.path.join(ROOT, "experiments", "reproduce.py")!r})\n'
      'r = importlib.util.module_from_spec(spec); spec.loader.exec_module(r)\n'
      f'r._run(["python", "-c", {child!r}])\n')], **popen)


def _wait_for_pid(pid_file, parent) -> int:
  deadline = time.time() + 30
  while not (pid_file.exists() and pid_file.read_text()):
    assert time.time() < deadline and parent.poll() is None
    time.sleep(0.05)
  return int(pid_file.read_text())


def test_ctrl_c_lets_the_child_stop_and_says_so(tmp_path):
  pid_file = tmp_path / 'child.pid'
  # As f2s.main: on Ctrl-C, finish writing, then exit 130.
  child = ('import os, signal, sys, time\n'
           'def stop(*_):\n'
           f'  time.sleep(0.5); open({str(pid_file)!r} + ".done", "w")\n'
           '  sys.exit(130)\n'
           'signal.signal(signal.SIGINT, stop)\n'
           f'open({str(pid_file)!r}, "w").write(str(os.getpid()))\n'
           'time.sleep(60)\n')
  parent = _start_run(child, start_new_session=True, stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE, text=True)
  _wait_for_pid(pid_file, parent)
  os.killpg(parent.pid, signal.SIGINT)  # a terminal's Ctrl-C: the group
  _, err = parent.communicate(timeout=30)
  assert parent.returncode == 130
  assert err.strip() == ('reproduce.py: interrupted; run the same command to '
                         'resume')
  assert os.path.exists(str(pid_file) + '.done')  # not killed mid-write


def test_kill_9_of_reproduce_stops_its_child(tmp_path):
  pid_file = tmp_path / 'child.pid'
  child = (f'import os, time; open({str(pid_file)!r}, "w").write('
           'str(os.getpid())); time.sleep(60)')
  parent = _start_run(child, stdout=subprocess.DEVNULL)
  child_pid = _wait_for_pid(pid_file, parent)
  parent.send_signal(signal.SIGKILL)
  parent.wait()
  deadline = time.time() + 10
  while _alive(child_pid):
    assert time.time() < deadline, 'the child outlived reproduce.py'
    time.sleep(0.05)


def _alive(pid: int) -> bool:
  """Whether `pid` runs (a zombie, dead but not yet reaped, does not)."""
  try:
    with open(f'/proc/{pid}/stat') as f:
      return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
  except FileNotFoundError:
    return False


@pytest.fixture
def scored_run(checkout, fake_run, monkeypatch):
  """(reproduce, the commands it would run, row, run folder) of a finished,
  scored dae_conv run; commands are recorded, not run."""
  reproduce, root = checkout
  calls = []
  monkeypatch.setattr(reproduce, '_run', calls.append)
  runs = str(root / 'runs')
  fake_run(runs, TABLE, 'dae_conv', 0)
  row = tables.find_row(TABLE, 'dae_conv')
  return reproduce, calls, row, results.run_dir(runs, row, 0, None)


def test_runs_lacking_a_metric_or_the_data_set_are_scored_again(scored_run):
  reproduce, calls, row, directory = scored_run
  reproduce.evaluate_run(row, 0, directory, None)
  assert calls == []  # scored with every metric: left alone
  reproduce.evaluate_run(row, 0, directory, None,
                         tables.GENERALISATION_DATASET, '/data/cufsf')
  assert calls[-1][-4:] == [
      '--mode=eval', '--config.eval.restore=latest',
      f'--config.eval.dataset={tables.GENERALISATION_DATASET}',
      '--config.eval.manual_dir=/data/cufsf']
  path = results.eval_metrics_path(directory)
  saved = results.read_json(path)
  del saved['lpips_vgg']  # scored before LPIPS was reported
  results.write_json(path, saved)
  reproduce.evaluate_run(row, 0, directory, None)
  assert len(calls) == 2 and calls[-1][-1] == '--config.eval.restore=latest'


def test_scores_of_another_data_set_version_are_scored_again(scored_run):
  reproduce, calls, row, directory = scored_run
  dataset = tables.GENERALISATION_DATASET
  scored = results.read_json(results.eval_metrics_path(directory))
  version = datasets.code_version(dataset)
  for saved_version, rescored in ((version, False), ('1.0.0', True),
                                  (None, True)):
    calls.clear()
    record = {**scored, 'data_version': saved_version}
    if saved_version is None:
      del record['data_version']
    folder = os.path.join(directory, 'predictions', dataset,
                          str(scored['step']))
    os.makedirs(folder, exist_ok=True)
    results.write_json(os.path.join(folder, 'metrics.json'), record)
    reproduce.evaluate_run(row, 0, directory, None, dataset)
    assert bool(calls) == rescored, saved_version


def test_render_rewrites_the_markdown_from_the_committed_json(checkout):
  reproduce, root = checkout
  md = root / 'experiments' / 'results' / f'{TABLE}.md'
  md.write_text('stale\n')
  reproduce.main([f'--table={TABLE}', '--render'])
  result = results.read_json(str(root / 'experiments' / 'results'
                                 / f'{TABLE}.json'))
  assert md.read_text() == f'# {TABLE}\n\n' + results.markdown(result)
  assert results.readme_section(TABLE, str(root / 'README.md')) == (
      f'<!-- results:{TABLE}:begin -->\n{results.markdown(result)}'
      f'<!-- results:{TABLE}:end -->')
