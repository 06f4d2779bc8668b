"""Results tables: runs on disk -> per-row mean ± std -> JSON, Markdown, README.

A run is one `python -m f2s.main` workdir `<root>/<preset>/<row>/seed<k>`
(see `f2s.tables`) holding `reproduce_run.json` (its command, wall time,
device, jax version) and the metrics.json that `--mode=eval` writes beside
its prediction PNGs. `experiments/reproduce.py` trains and scores the runs;
this module only reads them.
"""
import json
import os
import re
from typing import Any

import numpy as np

from f2s import tables

RUN_FILE = 'reproduce_run.json'
METRICS = ('ssim', 'fsim', 'mse', 'psnr', 'lpips_alex', 'lpips_vgg')
# Loss terms that train on (a network of) a reported metric: a row's score
# on it is no evidence of quality.
METRIC_TERMS = {'ssim': 'SSIM', 'fsim': 'FSIM',
                # VGG16 features and their Gram matrices: LPIPS-VGG's net.
                'perceptual': 'LPIPS-VGG', 'style': 'LPIPS-VGG'}
NOT_RUN = ('not run: the study recipe (256,000 images) takes ~10 h a run on '
           'a 2-core CPU for casq_paper (7 images/s at batch 128)')


def run_dir(workdir: str, row: tables.Row, seed: int,
            steps: int | None) -> str:
  name = f'seed{seed}' + (f'_steps{steps}' if steps is not None else '')
  return os.path.join(workdir, row.run_id, name)


def read_json(path: str) -> Any:
  with open(path) as f:
    return json.load(f)


def write_json(path: str, value: Any) -> None:
  write_text(path, json.dumps(value, indent=1) + '\n')


def write_text(path: str, text: str) -> None:
  """Writes `path` atomically: a kill mid-write leaves the old file whole."""
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    f.write(text)
  os.replace(tmp, path)


def eval_metrics_path(directory: str, dataset: str | None = None
                      ) -> str | None:
  """The newest `predictions/<step>/metrics.json` of a run (on `dataset`:
  `predictions/<dataset>/<step>/metrics.json`), if any."""
  root = os.path.join(directory, 'predictions', *([dataset] if dataset else []))
  if not os.path.isdir(root):
    return None
  steps = sorted((int(s) for s in os.listdir(root) if s.isdigit()),
                 reverse=True)
  for step in steps:
    path = os.path.join(root, str(step), 'metrics.json')
    if os.path.exists(path):
      return path
  return None


def is_finished(directory: str) -> bool:
  """Whether the run in `directory` has finished training."""
  path = os.path.join(directory, RUN_FILE)
  return os.path.exists(path) and bool(read_json(path).get('finished'))


def collect_run(directory: str, dataset: str | None = None
                ) -> dict[str, Any] | None:
  """One run's entry of the JSON (its scores on its test split, or on
  `dataset`'s), or None if it is not trained and scored."""
  path = eval_metrics_path(directory, dataset)
  if path is None or not is_finished(directory):
    return None
  record = read_json(os.path.join(directory, RUN_FILE))
  metrics = read_json(path)
  config = read_json(os.path.join(directory, 'config.json'))
  return {
      'seed': config['seed'],
      # Runs scored before LPIPS was reported lack it (scored again when
      # their checkpoints are at hand: reproduce.py --collect).
      **{k: metrics[k] for k in METRICS if k in metrics},
      'steps': metrics['step'],
      'images_seen': metrics['step'] * config['train']['global_batch_size'],
      'wall_s': round(record['wall_s'], 1),
      'device': record['device'],
      'jax': record['jax'],
      'command': record['command'],
  }


def collect_table(table: str, workdir: str, seeds: int,
                  steps: int | None, cpu_only: bool,
                  scored_rows: list[dict[str, Any]] = ()) -> dict[str, Any]:
  """The table's JSON from the runs on disk; for the generalisation table,
  the standard table's runs scored on its data set, after `scored_rows`
  (`scored_row`s: baselines, shipped models)."""
  general = table == tables.GENERALISATION
  source = tables.GENERALISATION_SOURCE if general else table
  dataset = tables.GENERALISATION_DATASET if general else None
  rows = list(scored_rows)
  for row in tables.TABLES[source]:
    runs = [r for s in range(seeds)
            if (r := collect_run(run_dir(workdir, row, s, steps), dataset))]
    entry = {
        'row': row.name, 'model': row.model, 'variant': row.variant,
        'recipe': tables.RECIPE_TEXT[row.recipe], 'preset': row.preset,
        'config': row.config_arg, 'overrides': row.overrides, 'runs': runs,
    }
    entry['trained_on'] = trained_on(row.overrides)
    if runs:
      entry.update(summarise(runs))
    elif row.needs_accelerator and cpu_only:
      entry['status'] = NOT_RUN
    else:
      entry['status'] = 'not run yet'
    rows.append(entry)
  description = (tables.GENERALISATION_DESCRIPTION if general
                 else tables.TABLE_DESCRIPTIONS[table])
  result = {'table': table, 'description': description, 'rows': rows}
  if table == 'study':
    result['reference'] = tables.STUDY_REFERENCE
  return result


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
  """{'mean': ..., 'std': ...} over runs of each metric all of them hold."""
  keys = [k for k in METRICS if all(k in r for r in runs)]
  return {'mean': {k: float(np.mean([r[k] for r in runs])) for k in keys},
          'std': {k: float(np.std([r[k] for r in runs])) for k in keys}}


def trained_on(settings: dict[str, Any]) -> list[str]:
  """The reported metrics a row's loss terms (`loss.terms.<name>` of its
  overrides, or a config's `loss.terms` dict) train on."""
  terms = {k.removeprefix('loss.terms.'): v for k, v in settings.items()
           if k.startswith('loss.terms.')}
  terms.update(settings.get('loss', {}).get('terms', {}))
  return sorted({METRIC_TERMS[k] for k, v in terms.items()
                 if v and k in METRIC_TERMS})


def scored_row(name: str, kind: str, metrics: dict[str, float], *,
               trained: list[str], device: str, command: str
               ) -> dict[str, Any]:
  """A row scored once, not trained here (kind 'baseline' or 'shipped')."""
  run = {'seed': None, **{k: metrics[k] for k in METRICS}, 'device': device,
         'command': command}
  return {'row': name, 'kind': kind, 'recipe': f'{kind}: {command}',
          'trained_on': trained, 'runs': [run], **summarise([run])}


def _cell(row: dict[str, Any], key: str, digits: int) -> str:
  if not row['runs'] or key not in row['mean']:
    return '-'
  mean, std = row['mean'][key], row['std'][key]
  if len(row['runs']) == 1:
    return f'{mean:.{digits}f}'
  return f'{mean:.{digits}f} ± {std:.{digits}f}'


# (heading, metric key, digits) of the tables' metric columns.
COLUMNS = (('SSIM', 'ssim', 4), ('FSIM', 'fsim', 4), ('MSE', 'mse', 4),
           ('PSNR', 'psnr', 2), ('LPIPS-Alex', 'lpips_alex', 4),
           ('LPIPS-VGG', 'lpips_vgg', 4))
TRAINED_ON_NOTE = ('trained on: the reported metrics its loss optimises, '
                   'whose scores are no evidence of quality for it; '
                   '-: a run scored before LPIPS was reported.')


def markdown(result: dict[str, Any]) -> str:
  """The table as Markdown: mean ± std (population) over seeds per row."""
  study = result['table'] == 'study'
  head = ['row', 'recipe', 'seeds'] + [c[0] for c in COLUMNS]
  if study:
    head += ['study SSIM', 'study MSE']
  head += ['trained on', 'device']
  lines = ['| ' + ' | '.join(head) + ' |',
           '| ' + ' | '.join(['---'] * 2 + ['---:'] * (len(head) - 4)
                             + ['---'] * 2) + ' |']
  for row in result['rows']:
    recipe = row['recipe'].split(':')[0]
    once = row.get('kind') in ('baseline', 'shipped')  # no seeds
    cells = [row['row'], recipe, '-' if once else str(len(row['runs']))]
    cells += [_cell(row, key, digits) for _, key, digits in COLUMNS]
    devices = (sorted({r['device'] for r in row['runs']}) if row['runs']
               else [row['status']])
    if study:
      ref = result['reference'][row['model']]
      cells += [f'{ref["ssim"]:.4f}', f'{ref["mse"]:.4f}']
    cells += [', '.join(row.get('trained_on', [])) or '-', '; '.join(devices)]
    lines.append('| ' + ' | '.join(cells) + ' |')
  recipes = sorted({r['recipe'] for r in result['rows'] if 'kind' not in r})
  notes = [f'{result["description"]} Mean ± standard deviation over seeds; '
           + TRAINED_ON_NOTE]
  notes += [f'- {r}' for r in recipes]
  text = '\n'.join(lines) + '\n\n' + '\n'.join(notes) + '\n'
  if result['table'] == 'ablation':
    text += '\n' + contributions_markdown(result)
  return (text + '\nRegenerate: `python experiments/reproduce.py --table='
          f'{result["table"]} --seeds=3`\n')


# (what the part is, the row with it, the row without it)
CONTRIBUTIONS = (
    ('self-attention', 'casq_paper', 'casq_paper_no_attention'),
    ('the quantizer (vs a plain bottleneck)', 'casq_paper',
     'casq_paper_no_quantizer'),
    ('EMA codebook (vs plain VQ)', 'casq_paper', 'casq_paper_plain_vq'),
    ('CASQ (vs the conv DAE)', 'casq_paper', 'dae_conv'),
)


def paired_differences(result: dict[str, Any], with_row: str,
                       without_row: str, key: str) -> list[float]:
  """Per-seed `key` differences with - without, over seeds both rows ran."""
  runs = {r['row']: {run['seed']: run[key] for run in r['runs']}
          for r in result['rows']}
  a, b = runs.get(with_row, {}), runs.get(without_row, {})
  return [a[s] - b[s] for s in sorted(set(a) & set(b))]


def contributions_markdown(result: dict[str, Any]) -> str:
  """What each part adds: mean ± std of the per-seed paired differences."""
  lines = ['| part | seeds | Δ SSIM | Δ FSIM | Δ MSE |',
           '| --- | ---: | ---: | ---: | ---: |']
  for part, with_row, without_row in CONTRIBUTIONS:
    diffs = {k: paired_differences(result, with_row, without_row, k)
             for k in ('ssim', 'fsim', 'mse')}
    n = len(diffs['ssim'])
    # One seed has no spread to show.
    cells = ['-' if not n else f'{np.mean(d):+.4f}' if n == 1
             else f'{np.mean(d):+.4f} ± {np.std(d):.4f}'
             for d in diffs.values()]
    lines.append(f'| {part} | {n} | ' + ' | '.join(cells) + ' |')
  return ("Each part's contribution: `casq_paper` minus the row "
          'without it, paired by seed (positive Δ SSIM/FSIM and negative '
          'Δ MSE: the part helps).\n\n' + '\n'.join(lines) + '\n')


def _readme_pattern(table: str) -> tuple[re.Pattern, str, str]:
  begin = f'<!-- results:{table}:begin -->'
  end = f'<!-- results:{table}:end -->'
  return re.compile(re.escape(begin) + '.*?' + re.escape(end), re.S), begin, end


def readme_section(table: str, path: str) -> str | None:
  """The README's text between the table's markers, None without them."""
  with open(path) as f:
    match = _readme_pattern(table)[0].search(f.read())
  return match.group(0) if match else None


def update_readme(table: str, text: str, path: str) -> bool:
  """Replaces the README section between the table's markers; False if the
  README has no such markers."""
  with open(path) as f:
    readme = f.read()
  pattern, begin, end = _readme_pattern(table)
  if not pattern.search(readme):
    return False
  write_text(path, pattern.sub(lambda _: f'{begin}\n{text}{end}', readme))
  return True


def seeds_by_row(result: dict[str, Any]) -> dict[str, set[int]]:
  """The seeds each row of a table's JSON holds."""
  return {row['row']: {run['seed'] for run in row['runs']}
          for row in result['rows']}


def seed_counts(markdown_text: str) -> dict[str, int]:
  """Each row's seed count in a Markdown results table (its third column;
  other tables, such as the contributions, have no count there)."""
  counts = {}
  for line in markdown_text.splitlines():
    cells = [c.strip() for c in line.strip().strip('|').split('|')]
    if line.startswith('|') and len(cells) > 2 and cells[2].isdigit():
      counts[cells[0]] = int(cells[2])
  return counts


def losses(new: dict[str, set[int]], held: dict[str, set[int]],
           counts: dict[str, dict[str, int]]) -> list[str]:
  """What replacing the committed tables by `new` (seeds per row) would lose.

  `held`: the seeds per row of the committed JSON; `counts`: per other file
  (the .md, the README), its seed count per row. One item per row that
  would have fewer seeds, or lose seeds it holds, e.g. 'casq_paper 3 -> 1
  seeds (seeds 1, 2)'.
  """
  rows = sorted(held.keys() | {r for c in counts.values() for r in c})
  lost = []
  for row in rows:
    now = new.get(row, set())
    gone = held.get(row, set()) - now
    had = max([len(held.get(row, ()))]
              + [c.get(row, 0) for c in counts.values()])
    if gone or had > len(now):
      detail = f' (seeds {", ".join(map(str, sorted(gone)))})' if gone else ''
      lost.append(f'{row} {had} -> {len(now)} seeds{detail}')
  return lost
