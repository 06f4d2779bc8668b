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
replaced by the Markdown table. `--collect` trains nothing: it scores the
finished runs not yet scored and collects. `--rows=a,b` trains, scores and
collects those rows alone: every other row keeps its entry of the committed
experiments/results/<table>.json as it is (its runs need not be on disk).
`--first_seed=K` trains and scores seeds K..N-1 alone (N = --seeds) and
takes seeds 0..K-1 of the named rows from the committed JSON, which must
hold them: a row's third seed added on another day or machine (each run
keeps its device). `--steps` shortens every run (a
quick check: such runs live in their own folders `seed<k>_steps<N>`, and
their table goes to `<workdir>/<table>_steps<N>.{json,md}`, never to
experiments/results or the README).

`--table=generalisation` scores the standard table's runs (trained on CUHK)
on CUFSF's aligned FERET pairs (`--mode=eval --config.eval.dataset=
cufsf_face_sketch`, into `predictions/cufsf_face_sketch/<step>/`), beside
two baselines and the shipped models (`f2s.generalisation`); it trains
nothing (train the standard table first). `--cufsf_dir` names the CUFSF
folder (default: $F2S_CUFSF_DIR, else ../shared/data/cufsf_dev).
`--render` rewrites a table's .md and README section from its committed
JSON, running nothing.

The committed tables are never lowered by accident: a collection that would
give a row fewer seeds than experiments/results/<table>.json, its .md or the
README's table hold (a missing run folder, a smaller --seeds) stops before
anything is written, naming what it would lose; `--replace` writes it anyway.
A killed reproduce.py (SIGTERM, kill -9) takes its running `f2s.main` child
with it (Linux: the child's parent-death signal); on Ctrl-C the child
finishes its writes first and both exit 130.
"""
import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

from f2s import results, tables

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(ROOT, 'experiments', 'results')
README = os.path.join(ROOT, 'README.md')


def device_description() -> str:
  """The device the runs use, e.g. 'NVIDIA H100 80GB HBM3' or the CPU model."""
  import jax
  device = jax.devices()[0]
  if device.platform != 'cpu':
    return f'{device.device_kind} x{jax.device_count()}'
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  from benchmark import cpu_name
  return f'CPU: {cpu_name()}, {os.cpu_count()} cores'


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _dies_with_parent() -> Callable[[], None] | None:
  """A preexec_fn that makes the child get SIGTERM when this process dies,
  however it dies (kill -9 included); None where prctl is not available."""
  libc = ctypes.CDLL(None, use_errno=True)  # loaded before the fork
  if not hasattr(libc, 'prctl'):
    return None
  parent = os.getpid()

  def preexec() -> None:
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl took effect
      os._exit(1)

  return preexec


EXIT_INTERRUPTED = 130  # 128 + SIGINT, as f2s.main exits on Ctrl-C


def _run(argv: list[str]) -> None:
  print('$ ' + ' '.join(argv), flush=True)
  child = subprocess.Popen([sys.executable, *argv[1:]], cwd=ROOT,
                           preexec_fn=_dies_with_parent())
  try:
    code = child.wait()
  except KeyboardInterrupt:
    # The child got the same Ctrl-C: it waits for its writes and says
    # where it stopped (subprocess.run would kill it after 0.25 s).
    code = child.wait()
  if code == EXIT_INTERRUPTED:
    print('reproduce.py: interrupted; run the same command to resume',
          file=sys.stderr)
    sys.exit(EXIT_INTERRUPTED)
  if code:
    sys.exit(f'error: the command above failed (exit {code})')


def _printable(argv: list[str]) -> str:
  return ' '.join(argv)


def train_run(row: tables.Row, seed: int, directory: str,
              steps: int | None, device: str) -> None:
  """Trains one run unless it is finished; refuses a folder of another run."""
  argv = row.command(seed, directory, steps)
  record_path = os.path.join(directory, results.RUN_FILE)
  record = results.read_json(record_path) if os.path.exists(record_path) else None
  if record is not None and record['command'] != _printable(argv):
    sys.exit(f'error: {directory} holds a run of another config:\n  '
             f'{record["command"]}\nnot\n  {_printable(argv)}\nuse another '
             '--workdir or remove that folder')
  if record is not None and record.get('finished'):
    return
  if record is None and os.path.exists(directory) and os.listdir(directory):
    sys.exit(f'error: {directory} is not empty but holds no {results.RUN_FILE}: not '
             'a run of this tool; use another --workdir')
  os.makedirs(directory, exist_ok=True)
  import jax
  record = record or {'command': _printable(argv), 'wall_s': 0.0,
                      'device': device, 'jax': jax.__version__,
                      'finished': False}
  results.write_json(record_path, record)
  start = time.time()
  _run(argv)
  record['wall_s'] += time.time() - start
  record['finished'] = True
  results.write_json(record_path, record)


def evaluate_run(row: tables.Row, seed: int, directory: str,
                 steps: int | None, dataset: str | None = None,
                 manual_dir: str | None = None) -> None:
  """Scores the final checkpoint unless its metrics.json, with every metric
  of results.METRICS, is already there (a run scored before LPIPS was
  reported is scored again): on its test split, or on `dataset`'s (from
  `manual_dir`, None for its default), scored again when its builder's
  version has changed since."""
  path = results.eval_metrics_path(directory, dataset)
  target = steps or row.overrides['train.num_steps']
  if path is not None:
    saved = results.read_json(path)
    current = (saved.get('step') == target
               and all(k in saved for k in results.METRICS))
    if dataset is not None:
      from f2s.datasets import code_version
      current = current and saved.get('data_version') == code_version(dataset)
    if current:
      return
  argv = row.command(seed, directory, steps)
  on = [f'--config.eval.dataset={dataset}'] if dataset else []
  on += [f'--config.eval.manual_dir={manual_dir}'] if manual_dir else []
  _run(argv + ['--mode=eval', '--config.eval.restore=latest', *on])


def scored_rows(cufsf_dir: str | None, device: str) -> list[dict]:
  """The generalisation table's baselines and shipped models on CUFSF."""
  from f2s import generalisation, pretrained
  from f2s.datasets import load_source
  source = load_source(tables.GENERALISATION_DATASET, 'test',
                       manual_dir=cufsf_dir)
  photos, sketches = generalisation.stack(source)
  nets = ('alex', 'vgg')
  rows = []
  command = ('python experiments/reproduce.py --table=generalisation'
             + (f' --cufsf_dir={cufsf_dir}' if cufsf_dir else ''))
  for name in generalisation.BASELINES:
    print(f'scoring baseline {name} on {len(photos)} CUFSF pairs', flush=True)
    rows.append(results.scored_row(
        name, 'baseline',
        generalisation.score_baseline(name, photos, sketches, nets),
        trained=[], device=device, command=command))
  for name in pretrained.available():
    print(f'scoring shipped model {name}', flush=True)
    trained = pretrained.load(name)
    rows.append(results.scored_row(
        name, 'shipped',
        generalisation.score_model(trained, photos, sketches, nets),
        trained=results.trained_on(trained.config.to_dict()), device=device,
        command=command))
  return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--table', required=True)
  parser.add_argument('--seeds', type=int, default=3)
  parser.add_argument('--first_seed', type=int, default=0,
                      help='train and score seeds from this one on; take '
                      "the earlier ones of the named rows from the committed "
                      'JSON')
  parser.add_argument('--steps', type=int, default=None)
  parser.add_argument('--rows', default=None,
                      help='comma-separated rows to train and collect; the '
                      'others keep their committed entries (default: all)')
  parser.add_argument('--workdir', default=os.path.join('runs', 'reproduce'),
                      help='folder of the runs (relative: to the repository)')
  parser.add_argument('--collect', action='store_true',
                      help='train nothing: score the finished runs not yet '
                      'scored and collect the table')
  parser.add_argument('--train_only', action='store_true',
                      help='train the runs, neither score nor collect them')
  parser.add_argument('--replace', action='store_true',
                      help='write the collected table even where it holds '
                      'fewer seeds or rows than the committed one')
  parser.add_argument('--cufsf_dir', default=None,
                      help='--table=generalisation: the CUFSF folder '
                      '(photos/, sketches/)')
  parser.add_argument('--render', action='store_true',
                      help="rewrite the table's .md and README section from "
                      'its committed JSON; run nothing')
  args = parser.parse_args(argv)
  known = sorted([*tables.TABLES, tables.GENERALISATION])
  if args.table not in known:
    parser.error(f'unknown --table={args.table!r}: expected one of {known}')
  if args.seeds < 1:
    parser.error(f'--seeds={args.seeds}: expected a positive integer')
  if args.steps is not None and args.steps < 1:
    parser.error(f'--steps={args.steps}: expected a positive integer')
  if not 0 <= args.first_seed < args.seeds:
    parser.error(f'--first_seed={args.first_seed}: expected 0 to '
                 f'--seeds - 1 = {args.seeds - 1}')
  if args.first_seed and (args.steps is not None or args.replace):
    parser.error('--first_seed keeps committed seeds: it goes with neither '
                 '--steps (whose tables are not committed) nor --replace')
  args.source = (tables.GENERALISATION_SOURCE
                 if args.table == tables.GENERALISATION else args.table)
  names = [r.name for r in tables.TABLES[args.source]]
  args.rows = names if args.rows is None else args.rows.split(',')
  for name in args.rows:
    try:
      tables.find_row(args.source, name)
    except ValueError as e:
      parser.error(str(e))
  return args


def _committed(table: str) -> tuple[dict[str, set[int]],
                                     dict[str, dict[str, int]]]:
  """(seeds per row of the committed JSON, seed counts per row of the
  committed .md and README table, by file)."""
  path = os.path.join(RESULTS_DIR, f'{table}.json')
  held = {}
  if os.path.exists(path):
    try:
      held = results.seeds_by_row(results.read_json(path))
    except (ValueError, KeyError, TypeError) as e:
      sys.exit(f'error: {os.path.relpath(path, ROOT)} is not a results table '
               f'({type(e).__name__}: {e}), so what collecting would replace '
               'cannot be checked; restore it (git checkout) or pass --replace')
  counts = {}
  md_path = os.path.join(RESULTS_DIR, f'{table}.md')
  if os.path.exists(md_path):
    with open(md_path) as f:
      counts[os.path.relpath(md_path, ROOT)] = results.seed_counts(f.read())
  section = results.readme_section(table, README)
  if section is not None:
    counts['README.md'] = results.seed_counts(section)
  return held, counts


def refuse_losses(table: str, new: dict[str, set[int]], why: str) -> None:
  """Stops, in one line, if the committed tables hold seeds `new` lacks."""
  held, counts = _committed(table)
  lost = results.losses(new, held, counts)
  if lost:
    sys.exit(f'error: {why} would lose what experiments/results/{table}.json, '
             f'.md and the README hold: {"; ".join(lost)}; nothing written '
             '(train the missing runs, or pass --train_only to train without '
             'collecting, or --replace to write it anyway)')


def _committed_rows(table: str) -> dict[str, dict]:
  """The trained rows of experiments/results/<table>.json, by name."""
  path = os.path.join(RESULTS_DIR, f'{table}.json')
  if not os.path.exists(path):
    return {}
  return {r['row']: r for r in results.read_json(path)['rows']
          if 'kind' not in r}


def check_first_seeds(table: str, named: list[str], first_seed: int) -> None:
  """Stops, in one line, unless the committed JSON holds seeds
  0..first_seed-1 of every named row (--first_seed takes them from it)."""
  committed = _committed_rows(table)
  missing = []
  for name in named:
    held = {run['seed'] for run in committed.get(name, {}).get('runs', [])}
    lacking = sorted(set(range(first_seed)) - held)
    if lacking:
      missing.append(f'{name} (seeds {", ".join(map(str, lacking))})')
  if missing:
    sys.exit(f'error: --first_seed={first_seed} takes the earlier seeds from '
             f'experiments/results/{table}.json, which lacks '
             f'{"; ".join(missing)}; train them (a smaller --first_seed)')


def keep_committed(result: dict, table: str, named: list[str],
                   first_seed: int = 0) -> dict:
  """`result` with each row not in `named` replaced by its entry in the
  committed experiments/results/<table>.json, where that has one (scored
  rows, the baselines and shipped models, are always the new ones); each
  named row's runs are its committed runs of seeds < `first_seed` followed
  by its collected runs of the others."""
  committed = _committed_rows(table)
  rows = []
  for row in result['rows']:
    if 'kind' in row:
      rows.append(row)
    elif row['row'] not in named:
      rows.append(committed.get(row['row'], row))
    elif first_seed:
      runs = ([r for r in committed[row['row']]['runs']
               if r['seed'] < first_seed]
              + [r for r in row['runs'] if r['seed'] >= first_seed])
      merged = {k: v for k, v in row.items() if k != 'status'}
      rows.append({**merged, 'runs': runs, **results.summarise(runs)})
    else:
      rows.append(row)
  result['rows'] = rows
  return result


def render(table: str) -> None:
  """Rewrites the table's .md and README section from its committed JSON
  (e.g. after the Markdown layout changed), adding each row's `trained_on`
  where the JSON predates it."""
  path = os.path.join(RESULTS_DIR, f'{table}.json')
  result = results.read_json(path)
  for row in result['rows']:
    if 'trained_on' not in row and 'kind' not in row:
      row['trained_on'] = results.trained_on(
          tables.find_row(table, row['row']).overrides)
  results.write_json(path, result)
  text = results.markdown(result)
  results.write_text(os.path.join(RESULTS_DIR, f'{table}.md'),
                     f'# {table}\n\n' + text)
  if results.update_readme(table, text, README):
    print(f'README.md: {table} table updated')
  print(text)


def main(argv: list[str] | None = None) -> None:
  args = parse_args(argv)
  os.chdir(ROOT)  # run folders and commands are relative to the repository
  if args.render:
    render(args.table)
    return
  general = args.table == tables.GENERALISATION
  checked = args.steps is None and not args.train_only and not args.replace
  if checked and not general:  # before training: fewer --seeds lose seeds
    held, _ = _committed(args.table)
    refuse_losses(args.table, {
        r.name: set(range(args.seeds)) if r.name in args.rows
        else held.get(r.name, set()) for r in tables.TABLES[args.source]},
                  f'collecting --seeds={args.seeds}')
  if args.first_seed:
    check_first_seeds(args.table, args.rows, args.first_seed)
  import jax
  cpu_only = jax.default_backend() == 'cpu'
  device = device_description()
  for seed in range(args.first_seed, args.seeds):
    for name in args.rows:
      row = tables.find_row(args.source, name)
      if row.needs_accelerator and cpu_only:
        print(f'skipping {row.name}: {results.NOT_RUN}', flush=True)
        continue
      directory = results.run_dir(args.workdir, row, seed, args.steps)
      if not args.collect and not general:
        train_run(row, seed, directory, args.steps, device)
      if not args.train_only and results.is_finished(directory):
        evaluate_run(row, seed, directory, args.steps,
                     tables.GENERALISATION_DATASET if general else None,
                     args.cufsf_dir)
  if args.train_only:
    return
  result = results.collect_table(
      args.table, args.workdir, args.seeds, args.steps, cpu_only,
      scored_rows(args.cufsf_dir, device) if general else [])
  if args.steps is None:
    result = keep_committed(result, args.table, args.rows, args.first_seed)
  if checked:
    refuse_losses(args.table, results.seeds_by_row(result),
                  f'collecting the runs in {args.workdir}')
  text = results.markdown(result)
  # A shortened check (--steps) never replaces the committed tables.
  out_dir = RESULTS_DIR if args.steps is None else args.workdir
  stem = args.table if args.steps is None else f'{args.table}_steps{args.steps}'
  os.makedirs(out_dir, exist_ok=True)
  results.write_json(os.path.join(out_dir, f'{stem}.json'), result)
  results.write_text(os.path.join(out_dir, f'{stem}.md'),
                     f'# {args.table}\n\n' + text)
  if args.steps is None and results.update_readme(args.table, text, README):
    print(f'README.md: {args.table} table updated')
  print(text)


if __name__ == '__main__':
  main()
