"""Trained models shipped in the package, and the best checkpoint of a run.

A shipped model is a folder `f2s/pretrained/<name>/` holding the run's
`config.json`, `variables.msgpack` (flax msgpack of {'params': ...,
<model state collections>}: plain arrays, no pickle) and `MODEL_CARD.md`
(training data, command, test scores). `experiments/export_pretrained.py`
writes one from a training run.

  trained = pretrained.load()                  # the default shipped model
  trained, step = pretrained.load_run('runs/casq')  # a run's best checkpoint
  model = trained.build()
  logits, aux = model.apply(trained.variables, photo, train=False, rngs=...)
"""
import dataclasses
import json
import os
from typing import Any

import flax.serialization
import jax
import ml_collections
from flax import linen as nn

from f2s import models
from f2s.data import preprocess

DEFAULT = 'casq_balanced_cuhk'
DIRECTORY = os.path.dirname(os.path.abspath(__file__))
CONFIG_FILE = 'config.json'
VARIABLES_FILE = 'variables.msgpack'
MODEL_CARD_FILE = 'MODEL_CARD.md'
METRICS_LOG = 'metrics.jsonl'  # a run's log, one JSON line per log/eval


class ModelError(ValueError):
  """A model that cannot be loaded; the message says which and why."""


@dataclasses.dataclass(frozen=True)
class TrainedModel:
  """A model's config (`config.model`, `config.data`, ...) and variables
  ({'params': ..., **model_state}); `source` names where it came from."""
  config: ml_collections.ConfigDict
  variables: dict[str, Any]
  source: str

  @property
  def out_shape(self) -> tuple[int, int, int]:
    """(H, W, C) of the model's output under its protocol."""
    return preprocess.spec_from_config(self.config.data).sketch_shape

  def build(self) -> nn.Module:
    spec = preprocess.spec_from_config(self.config.data)
    return models.build_model(self.config.model, spec.sketch_shape,
                              value_range=spec.value_range)


def available() -> list[str]:
  """Names of the shipped models."""
  return sorted(
      name for name in os.listdir(DIRECTORY)
      if os.path.isfile(os.path.join(DIRECTORY, name, VARIABLES_FILE)))


def _read_config(path: str, source: str) -> ml_collections.ConfigDict:
  try:
    with open(path) as f:
      config = json.load(f)
  except FileNotFoundError:
    raise ModelError(f'{source}: no {os.path.basename(path)}') from None
  except (OSError, ValueError) as e:
    raise ModelError(f'{source}: unreadable {path} ({e})') from None
  if not isinstance(config, dict):
    raise ModelError(f'{source}: {path} holds a JSON {type(config).__name__}, '
                     'not a config (a JSON object)')
  return ml_collections.ConfigDict(config)


def check_variables(trained: TrainedModel) -> None:
  """Raises ModelError unless the variables fit the config's model."""
  from f2s.training import state as state_lib
  shape = trained.out_shape
  try:
    expected = jax.eval_shape(
        lambda key: state_lib.init_variables(trained.build(),
                                             (1, *shape[:2], 3), key),
        jax.random.PRNGKey(0))
  except (ValueError, KeyError, TypeError) as e:
    raise ModelError(f'{trained.source}: its config does not build a model '
                     f'({e})') from None
  want = {jax.tree_util.keystr(k): v.shape for k, v in
          jax.tree_util.tree_leaves_with_path(expected)}
  have = {jax.tree_util.keystr(k): getattr(v, 'shape', None) for k, v in
          jax.tree_util.tree_leaves_with_path(trained.variables)}
  for key in sorted(want.keys() | have.keys()):
    if want.get(key) != have.get(key):
      raise ModelError(
          f'{trained.source}: the variables do not fit the config\'s model '
          f'(first difference: {key} has shape {have.get(key)}, the model '
          f'needs {want.get(key)})')


def load(name: str = DEFAULT) -> TrainedModel:
  """The shipped model `name` (see `available()`), or the model exported
  into the folder `name`."""
  if os.path.isdir(name):
    return load_folder(name)
  if not os.path.isfile(os.path.join(DIRECTORY, name, VARIABLES_FILE)):
    shipped = ', '.join(available()) or 'none'
    raise ModelError(
        f'no shipped model {name!r} (shipped: {shipped}); export one with '
        'experiments/export_pretrained.py or use --workdir=RUN')
  return load_folder(os.path.join(DIRECTORY, name))


def load_folder(folder: str) -> TrainedModel:
  """The model exported into `folder` (config.json, variables.msgpack)."""
  source = f'model {folder}'
  config = _read_config(os.path.join(folder, CONFIG_FILE), source)
  try:
    with open(os.path.join(folder, VARIABLES_FILE), 'rb') as f:
      variables = flax.serialization.msgpack_restore(f.read())
  except (OSError, ValueError) as e:
    raise ModelError(f'{source}: unreadable {VARIABLES_FILE} ({e})') from None
  trained = TrainedModel(config, variables, source)
  check_variables(trained)
  return trained


def save(folder: str, config: dict[str, Any] | ml_collections.ConfigDict,
         variables: dict[str, Any]) -> None:
  """Writes config.json and variables.msgpack into `folder`."""
  os.makedirs(folder, exist_ok=True)
  if isinstance(config, ml_collections.ConfigDict):
    config = config.to_dict()
  with open(os.path.join(folder, CONFIG_FILE), 'w') as f:
    json.dump(config, f, indent=2, sort_keys=True)
    f.write('\n')
  with open(os.path.join(folder, VARIABLES_FILE), 'wb') as f:
    f.write(flax.serialization.msgpack_serialize(jax.device_get(variables)))


def best_step(workdir: str, config: ml_collections.ConfigDict,
              steps: list[int]) -> int | None:
  """The step among `steps` whose evaluation (the run's metrics.jsonl) is
  best by `config.checkpoint.best_metric`; None if none was evaluated."""
  metric = config.checkpoint.get('best_metric')
  path = os.path.join(workdir, METRICS_LOG)
  if not metric or not os.path.exists(path):
    return None
  from f2s.training import writers  # with Orbax: for runs only
  scores = {}
  for _, record in writers.read_records(path):
    if (record.get('split') == 'eval' and record.get('step') in steps
        and metric in record):
      scores[record['step']] = record[metric]
  if not scores:
    return None
  sign = -1 if config.checkpoint.get('best_mode') == 'min' else 1
  return max(scores, key=lambda step: (sign * scores[step], step))


def load_run(workdir: str, step: int | None = None) -> tuple[TrainedModel, int]:
  """(model, step) of a training run's checkpoint: `step`, else the best by
  the run's `checkpoint.best_metric` among its evaluated checkpoints, else
  the latest; a damaged one is reported on stderr and the newest that
  restores is used instead."""
  # Imported here: Orbax and grain are needed for runs only.
  from f2s.training import checkpoints, state as state_lib
  ckpt_dir = os.path.join(workdir, checkpoints.CHECKPOINT_DIR)
  if not os.path.isdir(workdir):
    raise ModelError(f'--workdir {workdir}: no such directory')
  # Checked before Orbax sees the folder: its manager would create it.
  if not os.path.isdir(ckpt_dir) or not any(
      name.isdigit() for name in os.listdir(ckpt_dir)):
    raise ModelError(f'--workdir {workdir}: no checkpoint in {ckpt_dir} '
                     '(train first: python -m f2s.main --workdir=...)')
  config = _read_config(os.path.join(workdir, checkpoints.CONFIG_FILE),
                        f'--workdir {workdir}')
  spec = preprocess.spec_from_config(config.data)
  shape = spec.sketch_shape
  model = models.build_model(config.model, shape, value_range=spec.value_range)
  abstract = jax.eval_shape(lambda: state_lib.initial_state(
      state_lib.make_train_parts(config), model, (1, *shape[:2], 3), shape[-1],
      config.seed))
  manager = checkpoints.make_manager(
      workdir, max_to_keep=config.checkpoint.max_to_keep,
      best_metric=config.checkpoint.best_metric,
      best_mode=config.checkpoint.best_mode)
  try:
    steps = sorted(manager.all_steps(), reverse=True)
    if step is None:
      # From the run's evaluations: the manager records no metrics of its
      # own (no best_fn), so its best_step() is the latest. Then the newest
      # should the best not restore.
      best = best_step(workdir, config, steps)
      order = steps if best is None else [best] + [s for s in steps
                                                   if s != best]
    elif step not in steps:
      raise ModelError(f'--workdir {workdir}: no checkpoint of step {step} '
                       f'(steps: {list(steps)})')
    else:
      order = [step]
    # Left in place: the run's own process (which may be running) moves
    # damaged checkpoints aside.
    state, step = checkpoints.restore_first(manager, abstract, None, order,
                                            move_damaged=False)
  except ModelError:
    raise
  except ValueError as e:  # none restores, or of another model's shapes
    raise ModelError(f'--workdir {workdir}: {e}') from None
  finally:
    manager.close()
  variables = {'params': state.params, **state.model_state}
  return TrainedModel(config, variables,
                      f'--workdir {workdir} (step {step})'), step
