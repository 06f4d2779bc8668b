"""Regenerates a results table: trains every row for each seed, scores it.

  python experiments/reproduce.py --table=study [--seeds=3] [--steps=N]
      [--rows=casq_paper,dae_conv] [--workdir=runs/reproduce] [--collect]

Each run is one `python -m f2s.main` command (the rows are in
`f2s/tables.py`) in `<workdir>/<preset>/<row>/seed<k>`; a finished run is
not trained again and an interrupted one resumes. Each run's final checkpoint
is then evaluated with `--mode=eval`, which writes its prediction PNGs and
`predictions/<step>/metrics.json`. The table is collected from every run on
disk into `experiments/results/<table>.json` and `.md`, and the README's
section between `<!-- results:<table>:begin -->` and `... :end -->` is
replaced by the Markdown table. `--collect` only collects (no training).
`--steps` shortens every run (a quick check; such runs live in their own
folders `seed<k>_steps<N>` and are collected only with the same `--steps`).
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from typing import Any

import numpy as np

from f2s import tables

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(ROOT, 'experiments', 'results')
README = os.path.join(ROOT, 'README.md')
RUN_FILE = 'reproduce_run.json'
METRICS = ('ssim', 'fsim', 'mse', 'psnr')
NOT_RUN = 'not run: the study recipe takes ~14 h a run on a 2-core CPU'


def device_description() -> str:
  """The device the runs use, e.g. 'NVIDIA H100 80GB HBM3' or the CPU model."""
  import jax
  device = jax.devices()[0]
  if device.platform != 'cpu':
    return f'{device.device_kind} x{jax.device_count()}'
  model = platform.processor() or 'cpu'
  try:
    with open('/proc/cpuinfo') as f:
      names = re.findall(r'^model name\s*:\s*(.+)$', f.read(), re.M)
    model = names[0] if names else model
  except OSError:
    pass
  return f'CPU: {model}, {os.cpu_count()} cores'


def run_dir(workdir: str, row: tables.Row, seed: int,
            steps: int | None) -> str:
  name = f'seed{seed}' + (f'_steps{steps}' if steps is not None else '')
  return os.path.join(workdir, row.run_id, name)


def _read_json(path: str) -> Any:
  with open(path) as f:
    return json.load(f)


def _write_json(path: str, value: Any) -> None:
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(value, f, indent=1)
    f.write('\n')
  os.replace(tmp, path)


def _run(argv: list[str]) -> None:
  print('$ ' + ' '.join(argv), flush=True)
  result = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT)
  if result.returncode:
    sys.exit(f'error: the command above failed (exit {result.returncode})')


def _printable(argv: list[str]) -> str:
  return ' '.join(argv)


def train_run(row: tables.Row, seed: int, directory: str,
              steps: int | None, device: str) -> None:
  """Trains one run unless it is finished; refuses a folder of another run."""
  argv = row.command(seed, directory, steps)
  record_path = os.path.join(directory, RUN_FILE)
  record = _read_json(record_path) if os.path.exists(record_path) else None
  if record is not None and record['command'] != _printable(argv):
    sys.exit(f'error: {directory} holds a run of another config:\n  '
             f'{record["command"]}\nnot\n  {_printable(argv)}\nuse another '
             '--workdir or remove that folder')
  if record is not None and record.get('finished'):
    return
  if record is None and os.path.exists(directory) and os.listdir(directory):
    sys.exit(f'error: {directory} is not empty but holds no {RUN_FILE}: not '
             'a run of this tool; use another --workdir')
  os.makedirs(directory, exist_ok=True)
  import jax
  record = record or {'command': _printable(argv), 'wall_s': 0.0,
                      'device': device, 'jax': jax.__version__,
                      'finished': False}
  _write_json(record_path, record)
  start = time.time()
  _run(argv)
  record['wall_s'] += time.time() - start
  record['finished'] = True
  _write_json(record_path, record)


def eval_metrics_path(directory: str) -> str | None:
  """The newest `predictions/<step>/metrics.json` of a run, if any."""
  root = os.path.join(directory, 'predictions')
  if not os.path.isdir(root):
    return None
  steps = sorted((int(s) for s in os.listdir(root) if s.isdigit()),
                 reverse=True)
  for step in steps:
    path = os.path.join(root, str(step), 'metrics.json')
    if os.path.exists(path):
      return path
  return None


def evaluate_run(row: tables.Row, seed: int, directory: str,
                 steps: int | None) -> None:
  """Scores the final checkpoint unless its metrics.json is already there."""
  path = eval_metrics_path(directory)
  target = steps or row.overrides['train.num_steps']
  if path is not None:
    saved = _read_json(path)
    if saved.get('step') == target and all(k in saved for k in METRICS):
      return
  argv = row.command(seed, directory, steps)
  _run(argv + ['--mode=eval', '--config.eval.restore=latest'])


def collect_run(directory: str) -> dict[str, Any] | None:
  """One run's entry of the JSON, or None if it is not trained and scored."""
  record_path = os.path.join(directory, RUN_FILE)
  path = eval_metrics_path(directory)
  if path is None or not os.path.exists(record_path):
    return None
  record = _read_json(record_path)
  if not record.get('finished'):
    return None
  metrics = _read_json(path)
  config = _read_json(os.path.join(directory, 'config.json'))
  return {
      'seed': config['seed'],
      **{k: metrics[k] for k in METRICS},
      'steps': metrics['step'],
      'images_seen': metrics['step'] * config['train']['global_batch_size'],
      'wall_s': round(record['wall_s'], 1),
      'device': record['device'],
      'jax': record['jax'],
      'command': record['command'],
  }


def collect_table(table: str, workdir: str, seeds: int,
                  steps: int | None, cpu_only: bool) -> dict[str, Any]:
  """The table's JSON from the runs on disk."""
  rows = []
  for row in tables.TABLES[table]:
    runs = [r for s in range(seeds)
            if (r := collect_run(run_dir(workdir, row, s, steps)))]
    entry = {
        'row': row.name, 'model': row.model, 'variant': row.variant,
        'recipe': tables.RECIPE_TEXT[row.recipe], 'preset': row.preset,
        'config': row.config_arg, 'overrides': row.overrides, 'runs': runs,
    }
    if runs:
      entry['mean'] = {k: float(np.mean([r[k] for r in runs]))
                       for k in METRICS}
      entry['std'] = {k: float(np.std([r[k] for r in runs]))
                      for k in METRICS}
    elif row.needs_accelerator and cpu_only:
      entry['status'] = NOT_RUN
    else:
      entry['status'] = 'not run yet'
    rows.append(entry)
  result = {'table': table, 'description': tables.TABLE_DESCRIPTIONS[table],
            'rows': rows}
  if table == 'study':
    result['reference'] = tables.STUDY_REFERENCE
  return result


def _cell(row: dict[str, Any], key: str, digits: int) -> str:
  if not row['runs']:
    return '-'
  mean, std = row['mean'][key], row['std'][key]
  if len(row['runs']) == 1:
    return f'{mean:.{digits}f}'
  return f'{mean:.{digits}f} ± {std:.{digits}f}'


def markdown(result: dict[str, Any]) -> str:
  """The table as Markdown: mean ± std (population) over seeds per row."""
  study = result['table'] == 'study'
  head = ['row', 'recipe', 'seeds', 'SSIM', 'FSIM', 'MSE', 'PSNR']
  if study:
    head += ['study SSIM', 'study MSE']
  head.append('device')
  lines = ['| ' + ' | '.join(head) + ' |',
           '| ' + ' | '.join(['---'] * 2 + ['---:'] * (len(head) - 3)
                             + ['---']) + ' |']
  for row in result['rows']:
    recipe = row['recipe'].split(':')[0]
    if row['runs']:
      devices = sorted({r['device'] for r in row['runs']})
      cells = [row['row'], recipe, str(len(row['runs'])),
               _cell(row, 'ssim', 4), _cell(row, 'fsim', 4),
               _cell(row, 'mse', 4), _cell(row, 'psnr', 2)]
    else:
      devices = [row['status']]
      cells = [row['row'], recipe, '0', '-', '-', '-', '-']
    if study:
      ref = result['reference'][row['model']]
      cells += [f'{ref["ssim"]:.4f}', f'{ref["mse"]:.4f}']
    cells.append('; '.join(devices))
    lines.append('| ' + ' | '.join(cells) + ' |')
  recipes = sorted({r['recipe'] for r in result['rows']})
  notes = [f'{result["description"]} Mean ± standard deviation over seeds.']
  notes += [f'- {r}' for r in recipes]
  commands = ['python experiments/reproduce.py --table='
              f'{result["table"]} --seeds=3']
  return ('\n'.join(lines) + '\n\n' + '\n'.join(notes) + '\n\nRegenerate: `'
          + commands[0] + '`\n')


def update_readme(table: str, text: str, path: str = README) -> bool:
  """Replaces the README section between the table's markers; False if the
  README has no such markers."""
  with open(path) as f:
    readme = f.read()
  begin, end = f'<!-- results:{table}:begin -->', f'<!-- results:{table}:end -->'
  pattern = re.compile(re.escape(begin) + '.*?' + re.escape(end), re.S)
  if not pattern.search(readme):
    return False
  readme = pattern.sub(lambda _: f'{begin}\n{text}{end}', readme)
  with open(path, 'w') as f:
    f.write(readme)
  return True


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--table', required=True)
  parser.add_argument('--seeds', type=int, default=3)
  parser.add_argument('--steps', type=int, default=None)
  parser.add_argument('--rows', default=None,
                      help='comma-separated rows to train (default: all)')
  parser.add_argument('--workdir', default=os.path.join('runs', 'reproduce'),
                      help='folder of the runs (relative: to the repository)')
  parser.add_argument('--collect', action='store_true',
                      help='only collect the runs on disk into the table')
  parser.add_argument('--train_only', action='store_true',
                      help='train the runs, neither score nor collect them')
  args = parser.parse_args(argv)
  if args.table not in tables.TABLES:
    parser.error(f'unknown --table={args.table!r}: expected one of '
                 f'{sorted(tables.TABLES)}')
  if args.seeds < 1:
    parser.error(f'--seeds={args.seeds}: expected a positive integer')
  if args.steps is not None and args.steps < 1:
    parser.error(f'--steps={args.steps}: expected a positive integer')
  names = [r.name for r in tables.TABLES[args.table]]
  args.rows = names if args.rows is None else args.rows.split(',')
  for name in args.rows:
    try:
      tables.find_row(args.table, name)
    except ValueError as e:
      parser.error(str(e))
  return args


def main(argv: list[str] | None = None) -> None:
  args = parse_args(argv)
  os.chdir(ROOT)  # run folders and commands are relative to the repository
  import jax
  cpu_only = jax.default_backend() == 'cpu'
  device = device_description()
  if not args.collect:
    for seed in range(args.seeds):
      for name in args.rows:
        row = tables.find_row(args.table, name)
        if row.needs_accelerator and cpu_only:
          print(f'skipping {row.name}: {NOT_RUN}', flush=True)
          continue
        directory = run_dir(args.workdir, row, seed, args.steps)
        train_run(row, seed, directory, args.steps, device)
        if not args.train_only:
          evaluate_run(row, seed, directory, args.steps)
  if args.train_only:
    return
  result = collect_table(args.table, args.workdir, args.seeds, args.steps,
                         cpu_only)
  os.makedirs(RESULTS_DIR, exist_ok=True)
  _write_json(os.path.join(RESULTS_DIR, f'{args.table}.json'), result)
  text = markdown(result)
  with open(os.path.join(RESULTS_DIR, f'{args.table}.md'), 'w') as f:
    f.write(f'# {args.table}\n\n' + text)
  if update_readme(args.table, text):
    print(f'README.md: {args.table} table updated')
  print(text)


if __name__ == '__main__':
  main()
