"""The training loop and checkpoint evaluation behind `python -m f2s.main`.

Nothing in the loop waits on the host more than it must: a training split
small enough (`config.data.device_resident`) lives on the devices and each
step builds its own batch there (`f2s.data.device_data`); larger splits are
streamed by the grain pipeline. The test split is read once per run (when it
is as small), checkpoints are written asynchronously, and metrics, sample
grids and their PNGs are written on a background thread.
"""
import concurrent.futures
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
from f2s import sharding
from f2s import xla_cpu
from f2s.data import device_data, pipeline, preprocess
from f2s.training import checkpoints, evaluate as evaluate_lib
from f2s.training import losses as losses_lib
from f2s.training import state as state_lib, step as step_lib
from f2s.training import writers
from f2s.training.validate import validate_config

TRAIN_KEYS = ('photo', 'sketch')
PREDICTIONS_DIR = 'predictions'


class Interrupted(KeyboardInterrupt):
  """Training stopped by Ctrl-C at `step`; `checkpoint`: the last saved
  step (None if none), where the same command resumes. The message is the
  line to show."""

  def __init__(self, step: int, checkpoint: int | None):
    self.step, self.checkpoint = step, checkpoint
    last = ('no checkpoint is saved yet' if checkpoint is None
            else f'the last checkpoint is {checkpoint}')
    super().__init__(f'interrupted at step {step}; {last}; run the same '
                     'command to resume')


@dataclasses.dataclass
class Experiment:
  """The pieces a run needs, built once from the (validated) config.

  `per_device_step` is the per-device `(state, batch) -> (state, metrics)`
  (see f2s.training.step); `make_feed` puts it behind the run's data.
  """
  config: ml_collections.ConfigDict
  spec: preprocess.DataSpec
  mesh: Mesh
  model: nn.Module
  state: state_lib.TrainState
  per_device_step: Callable
  eval_step: Callable
  manager: ocp.CheckpointManager
  # XLA options for the jitted train step (train_compiler_options).
  compiler_options: Mapping[str, str]


@dataclasses.dataclass
class TrainFeed:
  """How the training data reaches the step: `step(state, inputs())`.

  Device-resident: `inputs()` is the split on the devices, the same every
  step, and `step` builds the batch of `state.step` from it. Streamed:
  `inputs()` is the grain iterator's next batch, sharded, and `iterator` is
  saved with each checkpoint.
  """
  step: Callable
  inputs: Callable[[], Any]
  iterator: Any = None

  @property
  def device_resident(self) -> bool:
    return self.iterator is None


def check_run(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Validates the config and refuses an incompatible workdir."""
  validate_config(config, jax.device_count(), jax.process_count())
  checkpoints.check_workdir(workdir, config)


def build_experiment(config: ml_collections.ConfigDict,
                     workdir: str) -> Experiment:
  """Builds mesh, model, state, steps and checkpoint manager (see check_run).

  The manager saves asynchronously: the loop waits for it before exiting.
  """
  mesh = sharding.make_mesh()
  spec = preprocess.spec_from_config(config.data)
  out_shape = spec.sketch_shape
  model = models.build_model(config.model, out_shape, axis_name=sharding.AXIS,
                             value_range=spec.value_range)
  # Jitted: the same values as eager initialisation, in about half the time
  # on CPU (eager init runs the whole forward pass op by op).
  parts = state_lib.make_train_parts(config)
  state = jax.jit(lambda: state_lib.initial_state(
      parts, model, (1, *out_shape[:2], 3), out_shape[-1], config.seed))()
  per_device_step = make_step(config, model, parts)
  manager = checkpoints.make_manager(
      workdir, max_to_keep=config.checkpoint.max_to_keep,
      best_metric=config.checkpoint.best_metric,
      best_mode=config.checkpoint.best_mode, async_saves=True)
  return Experiment(
      config=config, spec=spec, mesh=mesh, model=model,
      state=sharding.replicate(state, mesh), per_device_step=per_device_step,
      eval_step=evaluate_lib.data_parallel_eval(
          model, spec, mesh, tuple(config.eval.lpips)),
      manager=manager,
      compiler_options=train_compiler_options(config, mesh))


def make_step(config: ml_collections.ConfigDict, model: nn.Module,
              parts: state_lib.TrainParts) -> Callable:
  """The per-device train step of `config` (adversarial when `parts` has a
  discriminator)."""
  losses = dict(terms=dict(config.loss.terms),
                kl_weight=float(config.loss.kl_weight),
                value_range=config.data.value_range,
                compute_dtype=config.train.compute_dtype,
                feature_spec=losses_lib.feature_spec_from_config(config.loss))
  if parts.disc is not None:
    return step_lib.make_gan_train_step(
        model, parts.tx, parts.disc, parts.disc_tx, **losses,
        adversarial_weight=float(config.gan.weight),
        start_step=int(config.gan.start_step),
        feature_matching_weight=float(config.gan.feature_matching),
        r1_weight=float(config.gan.r1))
  return step_lib.make_train_step(model, parts.tx, **losses)


def train_compiler_options(config: ml_collections.ConfigDict, mesh: Mesh
                           ) -> dict[str, str]:
  """f2s.xla_cpu's options for a step with an FSIM loss term, whose sums
  they speed up (the shipped recipes' steps 1.03-1.06x on a 2-core AMD
  EPYC); XLA's defaults for the others (casq/paper's step ran 0.96x with
  them). README, "CPU speed"."""
  if not config.loss.terms.get('fsim', 0.0):
    return {}
  return xla_cpu.compiler_options(mesh.devices.flat[0].platform)


def make_feed(exp: Experiment, source: Any) -> TrainFeed:
  """The run's training data: on the devices when config.data.device_resident
  says so ('auto': when it fits), else streamed by grain."""
  config = exp.config
  batch_size = config.train.global_batch_size
  if device_data.use_device_data(config.data.device_resident, len(source),
                                 jax.process_count()):
    split = device_data.place(source, exp.mesh, seed=config.seed,
                              global_batch_size=batch_size)
    step = sharding.data_parallel(device_data.with_device_batch(
        exp.per_device_step,
        device_data.make_device_batch(exp.spec, exp.mesh, batch_size)),
        exp.mesh, compiler_options=exp.compiler_options)
    return TrainFeed(step=step, inputs=lambda: split)
  iterator = iter(pipeline.train_loader(
      source, exp.spec, seed=config.seed, global_batch_size=batch_size,
      num_workers=config.data.num_workers))
  return TrainFeed(
      step=sharding.data_parallel(exp.per_device_step, exp.mesh,
                                  compiler_options=exp.compiler_options),
      inputs=lambda: sharding.global_batch(next(iterator), exp.mesh,
                                           TRAIN_KEYS),
      iterator=iterator)


def load_split(config: ml_collections.ConfigDict, split: str, *,
               dataset: str | None = None) -> Any:
  """The split's random-access source, building the data set if needed:
  config.data's data set, or `dataset` (its default builder config and
  config.eval.manual_dir).

  With several processes, process 0 loads (and so builds) first and the
  others wait for it: processes sharing a data_dir never build it at once.
  """
  # Imported here: the TFDS builders are only needed once data is read.
  from f2s.datasets import load_source

  def load():
    if dataset is not None:
      return load_source(dataset, split, data_dir=config.data.data_dir,
                         manual_dir=config.eval.manual_dir)
    return load_source(config.data.dataset, split,
                       data_dir=config.data.data_dir,
                       builder_config=config.data.builder_config,
                       manual_dir=config.data.manual_dir)

  if jax.process_count() == 1:
    return load()
  source = load() if jax.process_index() == 0 else None
  multihost_utils.sync_global_devices(f'f2s: {split} split prepared')
  return load() if source is None else source


def prediction_dir(workdir: str, step: int, dataset: str | None = None
                   ) -> str:
  """Where evaluation at `step` writes its PNGs and metrics.json: on the
  run's test split, or (`dataset`) on another data set's."""
  return os.path.join(workdir, PREDICTIONS_DIR, *([dataset] if dataset else []),
                      str(step))


def run_evaluation(exp: Experiment, state: state_lib.TrainState,
                   test_source: Any, num_samples: int,
                   predictions_to: str | None = None,
                   data_version: str | None = None
                   ) -> tuple[dict[str, float], dict[str, np.ndarray] | None]:
  """Scores `state` on the test split; with `predictions_to`, writes every
  prediction there as PNG and the metrics as metrics.json (with
  `data_version`, that of another data set's builder)."""
  metrics, samples = evaluate_lib.evaluate(
      exp.eval_step, state,
      pipeline.eval_batches(test_source, exp.spec,
                            batch_size=exp.config.eval.batch_size), exp.mesh,
      num_samples=num_samples, data_spec=exp.spec,
      prediction_dir=predictions_to)
  if predictions_to is not None and jax.process_index() == 0:
    evaluate_lib.write_metrics(predictions_to, int(jax.device_get(state.step)),
                               metrics, data_version)
  return metrics, samples


def _write_eval(writer: writers.MetricWriter, value_range: str, step: int,
                metrics: dict[str, float], samples: dict | None,
                dataset: str | None = None) -> None:
  """Logs an evaluation: split 'eval', or 'eval_<dataset>' for another data
  set's test split (its grid named after it too)."""
  writer.write_scalars(step, f'eval_{dataset}' if dataset else 'eval', metrics)
  if samples is not None:
    writer.write_grid(step, writers.sample_grid(
        samples['photo'], samples['sketch'], samples['prediction'],
        value_range=value_range), prefix=f'{dataset}_' if dataset else '')


class _BackgroundWriter:
  """A MetricWriter's writes, in order, on one background thread.

  Keeps JSON/TensorBoard writes and the sample grid's PNG encoding off the
  training loop. A failed write raises at the next call or at close().
  """

  def __init__(self, writer: writers.MetricWriter, value_range: str):
    self._writer = writer
    self._value_range = value_range
    self._pool = concurrent.futures.ThreadPoolExecutor(
        max_workers=1, thread_name_prefix='f2s-writer')
    self._pending: list[concurrent.futures.Future] = []

  def _submit(self, fn: Callable, *args) -> None:
    for future in [f for f in self._pending if f.done()]:
      self._pending.remove(future)
      future.result()
    self._pending.append(self._pool.submit(fn, *args))

  def write_scalars(self, step: int, split: str,
                    scalars: Mapping[str, float]) -> None:
    self._submit(self._writer.write_scalars, step, split, dict(scalars))

  def write_eval(self, step: int, metrics: dict[str, float],
                 samples: dict | None) -> None:
    self._submit(_write_eval, self._writer, self._value_range, step,
                 dict(metrics), samples)

  def close(self) -> None:
    """Waits for every write, closes the writer, raises a failed write's
    error."""
    self._pool.shutdown(wait=True)
    try:
      for future in self._pending:
        future.result()
    finally:
      self._writer.close()


def _mean_metrics(fetched: list[tuple[int, dict]]) -> dict[str, float]:
  keys = fetched[0][1].keys()
  return {k: float(np.mean([m[k] for _, m in fetched])) for k in keys}


def _restore(exp: Experiment, feed: TrainFeed) -> state_lib.TrainState:
  """The newest restorable checkpoint's state (and grain position), else
  the fresh one; damaged checkpoints are moved aside on the way
  (`checkpoints.restore_first`).

  A checkpoint of the other data path resumes too: the state is all that
  training needs, but the data order from there differs from the original
  run's, which is said.
  """
  steps = sorted(exp.manager.all_steps(), reverse=True)
  if not steps:
    return exp.state
  try:
    state, step = checkpoints.restore_first(exp.manager, exp.state,
                                            feed.iterator, steps)
  except checkpoints.NothingRestores as e:
    raise ValueError(f'{e}; run the same command again to train from step 0'
                     ) from None
  has_position = checkpoints.has_data_item(exp.manager, step)
  if has_position == feed.device_resident and jax.process_index() == 0:
    now, then = (('device-resident', 'grain-streamed') if has_position
                 else ('grain-streamed', 'device-resident'))
    print(f'note: resuming a run trained on {then} data with {now} data '
          f'(config.data.device_resident={exp.config.data.device_resident!r}'
          f'): from step {step} on, its batches differ from the original '
          'run\'s')
  return state


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       sources: tuple[Any, Any] | None = None,
                       on_step: Callable[[int], None] | None = None,
                       allow_config_change: bool = False,
                       ) -> tuple[state_lib.TrainState, dict[str, float]]:
  """Trains (resuming from workdir's latest checkpoint).

  Returns the final state and its evaluation metrics.

  `sources` = (train, test) random-access sources; default: the config's
  data set via `f2s.datasets.load_source`. `on_step(step)` is called after
  each train step is dispatched (for benchmarks and progress hooks).

  Saves every checkpoint.every_steps and at the end, evaluates every
  eval.every_steps and at the end. A non-finite loss raises
  FloatingPointError before anything of that state is saved; Ctrl-C raises
  Interrupted once the pending writes are done. The workdir is locked for
  the run (`checkpoints.workdir_lock`): a second run on it is refused
  before anything is written. A resume whose config differs from
  config.json in more than `checkpoints.RESUMABLE_CHANGES` is refused
  unless `allow_config_change`; the changes are then recorded with the step
  in config_changes.jsonl.
  """
  check_run(config, workdir)
  with checkpoints.workdir_lock(workdir):
    changes = checkpoints.check_resume(workdir, config, allow_config_change)
    return _train(config, workdir, sources, on_step, changes)


def _train(config: ml_collections.ConfigDict, workdir: str,
           sources: tuple[Any, Any] | None,
           on_step: Callable[[int], None] | None,
           changes: Mapping[str, tuple[Any, Any]],
           ) -> tuple[state_lib.TrainState, dict[str, float]]:
  if sources is None:
    sources = (load_split(config, config.data.train_split),
               load_split(config, config.data.test_split))
  train_source, test_source = sources
  if device_data.use_device_data(config.data.device_resident,
                                 len(test_source), 1):
    test_source = pipeline.in_memory(test_source)  # read once, not per eval
  exp = build_experiment(config, workdir)
  feed = make_feed(exp, train_source)
  state = _restore(exp, feed)
  start = int(jax.device_get(state.step))
  checkpoints.record_changes(workdir, start, changes)
  checkpoints.write_config(workdir, config)
  num_steps = config.train.num_steps
  is_main = jax.process_index() == 0
  writer = _BackgroundWriter(
      writers.MetricWriter(workdir, enabled=is_main, resume_step=start),
      config.data.value_range)
  schedule = state_lib.learning_rate_schedule(config.train)
  pending, window = [], []
  window_start, window_from = time.perf_counter(), start
  eval_metrics = None
  bar = tqdm.tqdm(total=num_steps, initial=start, disable=not is_main,
                  desc='train', unit='step', dynamic_ncols=True)
  if start and is_main:
    bar.write(f'resumed from {workdir} at step {start}')
  interrupted = False
  try:
    for step in range(start + 1, num_steps + 1):
      state, metrics = feed.step(state, feed.inputs())
      if on_step is not None:
        on_step(step)
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
        writer.write_eval(step, eval_metrics, samples)
        if is_main:
          bar.write(f'step {step}: ' + _format(eval_metrics))
      if save_now:
        checkpoints.save(exp.manager, state, feed.iterator, eval_metrics)
      if eval_now or save_now:  # keep images/s to training time
        window_start, window_from = time.perf_counter(), step
  except KeyboardInterrupt:  # Ctrl-C: the saves so far are kept
    interrupted = True
  finally:
    bar.close()
    writer.close()
    exp.manager.wait_until_finished()  # the last asynchronous save
    last_saved = exp.manager.latest_step()
    exp.manager.close()
  if interrupted:
    raise Interrupted(int(jax.device_get(state.step)), last_saved)
  if eval_metrics is None:  # resumed at or past num_steps: nothing trained
    eval_metrics, _ = run_evaluation(exp, state, test_source, 0)
  if is_main:
    print(f'final ({config.model.name}/{config.model.variant}, step '
          f'{int(jax.device_get(state.step))}): ' + _format(eval_metrics))
  return state, eval_metrics


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str, *,
                        test_source: Any = None) -> dict[str, float]:
  """Evaluates workdir's best (or latest, per eval.restore) checkpoint, or
  the newest one that restores if that one is damaged.

  Writes the predictions and metrics to `<workdir>/predictions/<step>/`,
  holding the workdir's lock as training does.
  """
  check_run(config, workdir)
  with checkpoints.workdir_lock(workdir):
    return _evaluate(config, workdir, test_source)


def _evaluate(config: ml_collections.ConfigDict, workdir: str,
              test_source: Any) -> dict[str, float]:
  exp = build_experiment(config, workdir)
  manager = exp.manager
  steps = sorted(manager.all_steps(), reverse=True)
  if not steps:
    raise FileNotFoundError(f'no checkpoint in {workdir}: train first '
                            '(--mode=train)')
  best = manager.best_step() if config.eval.restore == 'best' else None
  if best is not None:  # then the newest, should the best not restore
    steps = [best] + [s for s in steps if s != best]
  try:
    state, step = checkpoints.restore_first(manager, exp.state, None, steps)
  finally:
    manager.close()
  dataset = config.eval.dataset
  if test_source is None:
    test_source = (load_split(config, 'test', dataset=dataset) if dataset
                   else load_split(config, config.data.test_split))
  # Imported here, as in load_split.
  from f2s.datasets import code_version
  metrics, samples = run_evaluation(
      exp, state, test_source, config.eval.num_samples,
      prediction_dir(workdir, step, dataset),
      code_version(dataset) if dataset else None)
  writer = writers.MetricWriter(workdir, enabled=jax.process_index() == 0)
  _write_eval(writer, config.data.value_range, step, metrics, samples, dataset)
  writer.close()
  if jax.process_index() == 0:
    print(f'checkpoint step {step} ({config.eval.restore})'
          + (f' on {dataset}' if dataset else '') + ': ' + _format(metrics))
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

