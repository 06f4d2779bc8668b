"""The training loop and checkpoint evaluation behind `python -m f2s.main`."""
import dataclasses
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
import tqdm
from flax import linen as nn
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from f2s import models
from f2s.data import pipeline, preprocess
from f2s.training import checkpoints, evaluate as evaluate_lib
from f2s.training import parallel, state as state_lib, step as step_lib
from f2s.training import writers
from f2s.training.validate import validate_config

TRAIN_KEYS = ('photo', 'sketch')
PREDICTIONS_DIR = 'predictions'


@dataclasses.dataclass
class Experiment:
  """The pieces a run needs, built once from the (validated) config."""
  config: ml_collections.ConfigDict
  spec: preprocess.DataSpec
  mesh: Mesh
  model: nn.Module
  state: state_lib.TrainState
  train_step: Callable
  eval_step: Callable
  manager: ocp.CheckpointManager


def check_run(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Validates the config and refuses an incompatible workdir."""
  validate_config(config, jax.device_count(), jax.process_count())
  checkpoints.check_workdir(workdir, config)


def build_experiment(config: ml_collections.ConfigDict,
                     workdir: str) -> Experiment:
  """Builds mesh, model, state, steps and checkpoint manager (see check_run)."""
  mesh = parallel.make_mesh()
  spec = preprocess.spec_from_config(config.data)
  out_shape = spec.sketch_shape
  model = models.build_model(config.model, out_shape, axis_name=parallel.AXIS)
  tx = state_lib.make_optimizer(config.train)
  state = state_lib.create_train_state(model, tx, (1, *out_shape[:2], 3),
                                       config.seed)
  train_step = parallel.data_parallel(
      step_lib.make_train_step(
          model, tx, terms=dict(config.loss.terms),
          kl_weight=float(config.loss.kl_weight),
          value_range=config.data.value_range),
      mesh)
  manager = checkpoints.make_manager(
      workdir, max_to_keep=config.checkpoint.max_to_keep,
      best_metric=config.checkpoint.best_metric,
      best_mode=config.checkpoint.best_mode)
  return Experiment(
      config=config, spec=spec, mesh=mesh, model=model,
      state=parallel.replicate(state, mesh), train_step=train_step,
      eval_step=evaluate_lib.data_parallel_eval(model, spec, mesh),
      manager=manager)


def load_split(config: ml_collections.ConfigDict, split: str) -> Any:
  """The split's random-access source, building the data set if needed.

  With several processes, process 0 loads (and so builds) first and the
  others wait for it: processes sharing a data_dir never build it at once.
  """
  # Imported here: the TFDS builders are only needed once data is read.
  from f2s.datasets import load_source

  def load():
    return load_source(config.data.dataset, split,
                       data_dir=config.data.data_dir,
                       builder_config=config.data.builder_config,
                       manual_dir=config.data.manual_dir)

  if jax.process_count() == 1:
    return load()
  source = load() if jax.process_index() == 0 else None
  multihost_utils.sync_global_devices(f'f2s: {split} split prepared')
  return load() if source is None else source


def prediction_dir(workdir: str, step: int) -> str:
  """Where evaluation at `step` writes its PNGs and metrics.json."""
  return os.path.join(workdir, PREDICTIONS_DIR, str(step))


def run_evaluation(exp: Experiment, state: state_lib.TrainState,
                   test_source: Any, num_samples: int,
                   predictions_to: str | None = None
                   ) -> tuple[dict[str, float], dict[str, np.ndarray] | None]:
  """Scores `state` on the test split; with `predictions_to`, writes every
  prediction there as PNG and the metrics as metrics.json."""
  metrics, samples = evaluate_lib.evaluate(
      exp.eval_step, state,
      pipeline.eval_batches(test_source, exp.spec,
                            batch_size=exp.config.eval.batch_size), exp.mesh,
      num_samples=num_samples, data_spec=exp.spec,
      prediction_dir=predictions_to)
  if predictions_to is not None and jax.process_index() == 0:
    evaluate_lib.write_metrics(predictions_to, int(jax.device_get(state.step)),
                               metrics)
  return metrics, samples


def _write_eval(writer: writers.MetricWriter, exp: Experiment, step: int,
                metrics: dict[str, float], samples: dict | None) -> None:
  writer.write_scalars(step, 'eval', metrics)
  if samples is not None:
    writer.write_grid(step, writers.sample_grid(
        samples['photo'], samples['sketch'], samples['prediction'],
        value_range=exp.config.data.value_range))


def _mean_metrics(fetched: list[tuple[int, dict]]) -> dict[str, float]:
  keys = fetched[0][1].keys()
  return {k: float(np.mean([m[k] for _, m in fetched])) for k in keys}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       sources: tuple[Any, Any] | None = None
                       ) -> tuple[state_lib.TrainState, dict[str, float]]:
  """Trains (resuming from workdir's latest checkpoint).

  Returns the final state and its evaluation metrics.

  `sources` = (train, test) random-access sources; default: the config's
  data set via `f2s.datasets.load_source`.

  Saves every checkpoint.every_steps and at the end, evaluates every
  eval.every_steps and at the end. A non-finite loss raises
  FloatingPointError before anything of that state is saved.
  """
  check_run(config, workdir)
  if sources is None:
    sources = (load_split(config, config.data.train_split),
               load_split(config, config.data.test_split))
  train_source, test_source = sources
  exp = build_experiment(config, workdir)
  iterator = iter(pipeline.train_loader(
      train_source, exp.spec, seed=config.seed,
      global_batch_size=config.train.global_batch_size,
      num_workers=config.data.num_workers))
  state = exp.state
  if exp.manager.latest_step() is not None:
    state = checkpoints.restore(exp.manager, state, iterator)
  checkpoints.write_config(workdir, config)
  start = int(jax.device_get(state.step))
  num_steps = config.train.num_steps
  is_main = jax.process_index() == 0
  writer = writers.MetricWriter(workdir, enabled=is_main, resume_step=start)
  schedule = state_lib.learning_rate_schedule(config.train)
  pending, window = [], []
  window_start, window_from = time.perf_counter(), start
  eval_metrics = None
  bar = tqdm.tqdm(total=num_steps, initial=start, disable=not is_main,
                  desc='train', unit='step', dynamic_ncols=True)
  if start and is_main:
    bar.write(f'resumed from {workdir} at step {start}')
  try:
    for step in range(start + 1, num_steps + 1):
      batch = parallel.global_batch(next(iterator), exp.mesh, TRAIN_KEYS)
      state, metrics = exp.train_step(state, batch)
      pending.append((step, metrics))
      bar.update(1)
      last = step == num_steps
      log_now = step % config.train.log_every_steps == 0 or last
      eval_now = step % config.eval.every_steps == 0 or last
      save_now = step % config.checkpoint.every_steps == 0 or last
      if log_now or eval_now or save_now:
        window += check_finite(pending)
        pending = []
      if log_now:
        elapsed = time.perf_counter() - window_start
        rate = (step - window_from) * config.train.global_batch_size / elapsed
        scalars = _mean_metrics(window)
        scalars.update(images_per_sec=rate,
                       learning_rate=float(schedule(step - 1)))
        writer.write_scalars(step, 'train', scalars)
        bar.set_postfix(loss=f'{scalars["loss"]:.4f}', img_s=f'{rate:.1f}')
        window, window_start, window_from = [], time.perf_counter(), step
      eval_metrics = None
      if eval_now:
        eval_metrics, samples = run_evaluation(
            exp, state, test_source, config.eval.num_samples,
            prediction_dir(workdir, step)
            if config.eval.write_predictions else None)
        _write_eval(writer, exp, step, eval_metrics, samples)
        if is_main:
          bar.write(f'step {step}: ' + _format(eval_metrics))
      if save_now:
        checkpoints.save(exp.manager, state, iterator, eval_metrics)
      if eval_now or save_now:  # keep images/s to training time
        window_start, window_from = time.perf_counter(), step
  finally:
    bar.close()
    writer.close()
    exp.manager.close()
  if eval_metrics is None:  # resumed at or past num_steps: nothing trained
    eval_metrics, _ = run_evaluation(exp, state, test_source, 0)
  if is_main:
    print(f'final ({config.model.name}/{config.model.variant}, step '
          f'{int(jax.device_get(state.step))}): ' + _format(eval_metrics))
  return state, eval_metrics


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str, *,
                        test_source: Any = None) -> dict[str, float]:
  """Evaluates workdir's best (or latest, per eval.restore) checkpoint.

  Writes the predictions and metrics to `<workdir>/predictions/<step>/`.
  """
  check_run(config, workdir)
  exp = build_experiment(config, workdir)
  manager = exp.manager
  step = (manager.best_step() if config.eval.restore == 'best' else None)
  step = manager.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f'no checkpoint in {workdir}: train first '
                            '(--mode=train)')
  state = checkpoints.restore(manager, exp.state, None, step)
  manager.close()
  if test_source is None:
    test_source = load_split(config, config.data.test_split)
  metrics, samples = run_evaluation(exp, state, test_source,
                                    config.eval.num_samples,
                                    prediction_dir(workdir, step))
  writer = writers.MetricWriter(workdir, enabled=jax.process_index() == 0)
  _write_eval(writer, exp, step, metrics, samples)
  writer.close()
  if jax.process_index() == 0:
    print(f'checkpoint step {step} ({config.eval.restore}): '
          + _format(metrics))
  return metrics


def all_finite(metrics: Mapping[str, Any]) -> bool:
  return all(bool(np.all(np.isfinite(np.asarray(v)))) for v in metrics.values())


def check_finite(history: list[tuple[int, dict[str, Any]]]
                 ) -> list[tuple[int, dict]]:
  """Fetches pending per-step metrics; raises at the first non-finite step.

  `history` holds (step number after the update, device metrics). Checking
  loss and gradient norm covers the state too: finite gradients give finite
  parameters.
  """
  fetched = [(step, jax.device_get(m)) for step, m in history]
  for step, metrics in fetched:
    if not all_finite({k: metrics[k] for k in ('loss', 'grad_norm')}):
      raise FloatingPointError(
          f'non-finite loss at training step {step} (loss={metrics["loss"]}, '
          f'grad_norm={metrics["grad_norm"]}); stopping without saving this '
          'state; the last good checkpoint is kept')
  return fetched


def _format(metrics: dict[str, float]) -> str:
  return ', '.join(f'{k}={v:.4g}' for k, v in sorted(metrics.items()))

