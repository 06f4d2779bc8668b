"""Exports a training run's model into the package, for `python -m f2s.sketch`.

  python experiments/export_pretrained.py \\
      --workdir=runs/reproduce/cuhk_casq/casq_default/seed0 --name=casq_cuhk

Restores the run's best checkpoint (by its `checkpoint.best_metric`; else the
latest, or `--step`) with f2s's own checkpoint code and writes
`f2s/pretrained/<name>/` (or `--out_dir/<name>/`): the run's `config.json`,
`variables.msgpack` (flax msgpack of {'params': ..., <model state>}, no
pickle) and `MODEL_CARD.md` (training data, the command that trained it, its
test scores from the run's metrics). The export is loaded back and checked
before the script reports success.
"""
import argparse
import json
import os
import sys

import jax
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from f2s import pretrained  # noqa: E402  (after the path set-up)
from f2s.models import exposure as exposure_lib  # noqa: E402
from f2s.training import writers  # noqa: E402

RUN_FILE = 'reproduce_run.json'  # experiments/reproduce.py's record of a run
METRIC_KEYS = ('ssim', 'fsim', 'mse', 'psnr')
_CUHK = ('Trained on the CUHK student photos and sketches (CUHK Face Sketch '
         'database, CUFS, student part; Multimedia Laboratory, The Chinese '
         'University of Hong Kong), {split}. The data, and so this model, '
         'are for research use only, as their authors publish them.\n\n'
         'Expect weaker sketches on faces unlike these: the photos are '
         'frontal, evenly lit, neutral-expression student portraits, and the '
         "sketches are in the style of the database's artists.")
# (data set, training split) -> what the model was trained on.
TRAINING_DATA = {
    ('cuhk_face_sketch', 'casq_train'): _CUHK.format(
        split="the CASQ study's split: 150 training pairs of the 188 pooled, "
        'its 38 test pairs held out'),
    ('cuhk_face_sketch', 'train'): _CUHK.format(
        split='the standard split: the 88 training pairs, the 100 test pairs '
        'held out'),
}
SYNTHETIC = ("Trained on f2s's procedural demo faces "
             '(`f2s.datasets.synthetic_face_sketch`, split {split!r}): not '
             'real photos; a demonstration model only.')


def test_scores(workdir: str, step: int) -> tuple[dict[str, float], str]:
  """(metrics, where they came from) of the exported step's evaluation:
  predictions/<step>/metrics.json, else its line in metrics.jsonl, else the
  last evaluation there."""
  path = os.path.join(workdir, 'predictions', str(step), 'metrics.json')
  if os.path.exists(path):
    with open(path) as f:
      return json.load(f), os.path.relpath(path, workdir)
  evaluations = []
  log = os.path.join(workdir, pretrained.METRICS_LOG)
  if os.path.exists(log):
    evaluations = [r for _, r in writers.read_records(log)
                   if r.get('split') == 'eval']
  if not evaluations:
    return {}, 'evaluations (none found)'
  chosen = next((r for r in reversed(evaluations) if r['step'] == step),
                evaluations[-1])
  return chosen, (f'{pretrained.METRICS_LOG} (the evaluation at step '
                  f'{chosen["step"]})')


# What the model sees and returns under each protocol (f2s.data.preprocess).
PROTOCOLS = {
    'casq': 'the 200x200 centre of the 200 wide x 250 high CUHK frame in, '
            'a 200x200 RGB sketch out',
    'standard': 'the whole 200x250 CUHK frame in (padded to {pad}), a '
                '200x250 greyscale sketch out',
}


def training_record(workdir: str, command: str | None = None) -> str:
  """The command that trained the run (`command`, else the one recorded by
  experiments/reproduce.py), and where and how long, if recorded."""
  path = os.path.join(workdir, RUN_FILE)
  record = {}
  if os.path.exists(path):
    with open(path) as f:
      record = json.load(f)
  command = command or record.get('command')
  if not command:
    return (f'    (not recorded: the run in {workdir}; its full config is '
            'config.json here)')
  where = ''
  if record.get('device') and record.get('wall_s'):
    where = (f'\n\n{record["wall_s"] / 60:.0f} minutes on '
             f'{record["device"]} (jax {record.get("jax", "?")}).')
  return f'    {command}{where}'


def model_card(name: str, trained: pretrained.TrainedModel, step: int,
               workdir: str, size_bytes: int, num_params: int,
               command: str | None = None) -> str:
  config = trained.config
  data = config.data
  description = TRAINING_DATA.get(
      (data.dataset, data.train_split),
      SYNTHETIC.format(split=data.train_split)
      if data.dataset == 'synthetic_face_sketch'
      else f'Trained on data set {data.dataset!r}, split '
      f'{data.train_split!r}.')
  scores, scores_from = test_scores(workdir, step)
  rows = '\n'.join(f'| {k} | {scores[k]:.4f} |' for k in METRIC_KEYS
                   if k in scores)
  score_table = (f'| metric | value |\n| --- | ---: |\n{rows}' if rows
                 else 'none recorded')
  out_h, out_w, out_c = trained.out_shape
  protocol = PROTOCOLS[data.protocol].format(
      pad='x'.join(str(n) for n in data.pad_to[::-1]))
  exposure = config.model.get('face_exposure', 0.0)
  balance = (' divides the left-right slope of its log luma across the face '
             '(a least-squares line over the columns of the face box below; '
             '`model.face_light_balance`) out of every row, then'
             if config.model.get('face_light_balance', False) else '')
  (top, bottom), (left, right) = exposure_lib.face_box(out_h, out_w)
  scales = (f'; the model first{balance} multiplies the photo by the gain '
            "that brings its face's mean luma (rows "
            f'{top}-{bottom}, columns {left}-{right} of its {out_h}x{out_w} '
            'input) to '
            f'{exposure:g} (`model.face_exposure`, `f2s.models.exposure`; '
            'part of the model, so of its ONNX export too), and returns'
            if exposure else '; the model returns')
  return f"""# f2s pretrained model `{name}`

Face photo -> pencil sketch: {config.model.name}/{config.model.variant}
({num_params:,} parameters, `variables.msgpack` {size_bytes / 2**20:.2f} MiB),
step {step} of its training run.

    python -m f2s.sketch photo.jpg --model {name}

## Input and output

The photo is aligned to the CUHK frame (`f2s.align`: eyes on the CUHK
template). Protocol `{data.protocol}` (`f2s.data.preprocess`): {protocol};
photo values in the `{data.value_range}` range{scales}
(N, {out_h}, {out_w}, {out_c}) logits, whose sigmoid (in [0, 1]) cropped to the
frame is the sketch.

## Training data

{description}

## Training

{training_record(workdir, command)}

The full config is `config.json` beside this card.

## Test scores

On the `{data.test_split}` split, from the run's {scores_from}:

{score_table}

How it draws faces unlike its training data's: score it on CUFSF with
`python experiments/reproduce.py --table=generalisation` (README, "Beyond
CUHK").
"""


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--workdir', required=True, help='the training run')
  parser.add_argument('--name', required=True,
                      help='the model name (a folder name)')
  parser.add_argument('--step', type=int, default=None,
                      help='checkpoint step (default: best, else latest)')
  parser.add_argument('--out_dir', default=pretrained.DIRECTORY,
                      help='where the model folder goes (default: the '
                      "package's f2s/pretrained)")
  parser.add_argument('--command', default=None,
                      help='the command that trained the run, for the model '
                      "card (default: reproduce.py's record of the run)")
  args = parser.parse_args(argv)
  from absl import logging  # keep Orbax's INFO lines quiet
  logging.set_verbosity(logging.WARNING)
  try:
    trained, step = pretrained.load_run(args.workdir, args.step)
  except pretrained.ModelError as e:
    sys.exit(f'error: {e}')
  folder = os.path.join(args.out_dir, args.name)
  pretrained.save(folder, trained.config, trained.variables)
  size = os.path.getsize(os.path.join(folder, pretrained.VARIABLES_FILE))
  num_params = sum(np.size(x) for x in jax.tree.leaves(
      trained.variables['params']))
  with open(os.path.join(folder, pretrained.MODEL_CARD_FILE), 'w') as f:
    f.write(model_card(args.name, trained, step, args.workdir, size,
                       num_params, args.command))
  loaded = pretrained.load_folder(folder)  # checks shapes against the config
  same = jax.tree.map(lambda a, b: bool(np.array_equal(a, b)),
                      jax.tree.map(np.asarray, trained.variables),
                      loaded.variables)
  if not all(jax.tree.leaves(same)):
    sys.exit(f'error: {folder}: the exported variables differ from the run')
  print(f'exported {trained.source} to {folder}: {num_params:,} parameters, '
        f'{pretrained.VARIABLES_FILE} {size / 2**20:.2f} MiB')


if __name__ == '__main__':
  main()
