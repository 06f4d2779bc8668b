"""Orbax checkpoints of the train state (and a grain iterator), with resume.

Layout of a workdir: config.json (the run's config), checkpoints/<step>/
{state[, data]}, `lock` (held by the one process working in it). `data`, the
grain iterator's position, is saved only by runs that stream their training
data; with device-resident data the position in the stream is the step
itself. Orbax writes each step atomically (a temporary
directory renamed when complete), so a run killed at any moment, even during
an asynchronous save, resumes from the last complete step. A checkpoint
that cannot be read back (damaged files) is reported, moved aside as
`<step>.corrupt` (never deleted) and the next older one is used
(`restore_first`).
"""
import contextlib
import fcntl
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import grain.checkpoint
import jax
import ml_collections
import orbax.checkpoint as ocp
from etils import epath
from orbax.checkpoint import checkpoint_managers as ocm

from f2s import models
from f2s.models.discriminator import LEGACY_SCALES, LEGACY_SPECTRAL_NORM
from f2s.training.state import TrainState

CONFIG_FILE = 'config.json'
LOCK_FILE = 'lock'
CHECKPOINT_DIR = 'checkpoints'
DATA_ITEM = 'data'
STATE_ITEM = 'state'
CORRUPT_SUFFIX = '.corrupt'
# What Orbax and tensorstore raise for missing, truncated or garbled files;
# other errors (e.g. XLA's out of memory while restoring) are no damage.
DAMAGE_ERRORS = (ValueError, KeyError, OSError)
# Settings that fix the shapes and meaning of the saved state: a workdir
# holding a checkpoint made under different ones is refused.
COMPATIBILITY_KEYS = ('model', 'data.protocol', 'data.pad_to',
                      'data.value_range', 'data.dataset',
                      'data.builder_config', 'data.train_split', 'seed',
                      'train.global_batch_size')


def _lookup(tree: Mapping[str, Any], dotted: str) -> Any:
  for part in dotted.split('.'):
    if not isinstance(tree, Mapping) or part not in tree:
      return None
    tree = tree[part]
  return tree


def _normalise(value: Any) -> Any:
  """JSON round trip, so tuples compare equal to the lists read back."""
  return json.loads(json.dumps(value, default=str))


def config_to_dict(config: ml_collections.ConfigDict) -> dict[str, Any]:
  return _normalise(config.to_dict())


# Knobs under COMPATIBILITY_KEYS that leave the saved state's meaning alone:
# the conv implementation computes the same function with the same parameters.
COMPATIBLE_CHANGES = ('conv_impl',)


def _without_compatible(value: Any) -> Any:
  if isinstance(value, Mapping):
    return {k: v for k, v in value.items() if k not in COMPATIBLE_CHANGES}
  return value


def _with_model_defaults(model: Any) -> Any:
  """A saved `model` section with the knobs added since it was written at
  their defaults, which keep the old behaviour (e.g. grey_output=False)."""
  if not isinstance(model, Mapping):
    return model
  try:
    defaults = models.default_config(model.get('name'), model.get('variant'))
  except ValueError:  # an unknown model: compared as saved, and refused
    return model
  return {**config_to_dict(defaults), **model}


def incompatibilities(saved: Mapping[str, Any],
                      config: ml_collections.ConfigDict) -> list[str]:
  """Human-readable differences in COMPATIBILITY_KEYS (empty if none)."""
  current = config_to_dict(config)
  saved = {**saved, 'model': _with_model_defaults(saved.get('model'))}
  problems = []
  for key in COMPATIBILITY_KEYS:
    old = _without_compatible(_lookup(saved, key))
    new = _without_compatible(_lookup(current, key))
    if old != new:
      problems.append(f'{key}: saved {old!r}, now {new!r}')
  old, new = _discriminator(saved), _discriminator(current)
  if old != new:
    problems.append(f'discriminator (gan.weight > 0, gan.features, '
                    f'gan.spectral_norm, gan.scales): saved {old!r}, '
                    f'now {new!r}')
  return problems


def _discriminator(config: Mapping[str, Any]
                   ) -> tuple[list[int], bool, int] | None:
  """The saved state's discriminator (widths, spectral norm, scales), None
  without one (also for configs saved before the `gan` section existed;
  those before `gan.spectral_norm` had it, those before `gan.scales` one
  scale)."""
  if (_lookup(config, 'gan.weight') or 0) > 0:
    spectral = _lookup(config, 'gan.spectral_norm')
    scales = _lookup(config, 'gan.scales')
    return (list(_lookup(config, 'gan.features')),
            LEGACY_SPECTRAL_NORM if spectral is None else spectral,
            LEGACY_SCALES if scales is None else scales)
  return None


def _has_checkpoints(workdir: str) -> bool:
  ckpt_dir = os.path.join(workdir, CHECKPOINT_DIR)
  return os.path.isdir(ckpt_dir) and any(
      name.isdigit() for name in os.listdir(ckpt_dir))


def check_workdir(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Refuses a workdir that is not a writable directory, or whose checkpoints
  came from an incompatible config (naming the settings that differ)."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise ValueError(f'--workdir={workdir} is a file, not a directory')
  existing = os.path.abspath(workdir)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise ValueError(f'--workdir={workdir}: {existing} is a file, not a '
                     'directory')
  try:  # a real write: access() says yes to root on a read-only mount
    with tempfile.TemporaryFile(dir=existing):
      pass
  except OSError as e:
    raise ValueError(f'--workdir={workdir} is not writable: {e.strerror}'
                     ) from None
  if not _has_checkpoints(workdir):
    return
  config_path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(config_path):
    raise ValueError(
        f'{workdir} holds checkpoints but no {CONFIG_FILE}, so they cannot be '
        'checked against this config; use a new --workdir')
  saved = read_config(config_path)
  problems = incompatibilities(saved, config)
  if problems:
    raise ValueError(
        f'{workdir} holds checkpoints of an incompatible run ('
        + '; '.join(problems) + '); refusing to overwrite them: use a new '
        '--workdir or the saved config')


@contextlib.contextmanager
def workdir_lock(workdir: str) -> Iterator[None]:
  """Holds an exclusive lock on `workdir` (process 0 only) while in use.

  An OS lock (flock) on workdir/lock, which records the holder's pid: the
  kernel releases it when the process ends, however it ends, so a killed
  run leaves no stale lock. A second process is refused with a ValueError
  naming the workdir and the holder's pid.
  """
  if jax.process_index() != 0:
    yield
    return
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, LOCK_FILE)
  # Opened without truncating: the file holds the holder's pid.
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(fd, 32, 0).decode(errors='replace').strip()
      raise ValueError(
          f'--workdir={workdir} is in use by another run (pid '
          f'{holder or "unknown"}, holding {path}); wait for it to end or '
          'stop it, or use another --workdir') from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f'{os.getpid()}\n'.encode(), 0)
    yield
  finally:
    os.close(fd)  # releases the lock


CHANGES_FILE = 'config_changes.jsonl'
# What a resumed run may change without --allow_config_change: the
# schedule's length, logging, evaluation, checkpoint frequency and
# retention, where the data are read from, and how (same data, same state).
RESUMABLE_CHANGES = ('train.num_steps', 'train.log_every_steps', 'eval',
                     'checkpoint.every_steps', 'checkpoint.max_to_keep',
                     'data.data_dir', 'data.manual_dir', 'data.num_workers',
                     'data.device_resident', 'model.conv_impl')


def _leaves(tree: Mapping[str, Any], prefix: str = '') -> dict[str, Any]:
  """{'section.knob': value} of a nested config dict."""
  leaves = {}
  for key, value in tree.items():
    if isinstance(value, Mapping):
      leaves.update(_leaves(value, f'{prefix}{key}.'))
    else:
      leaves[prefix + key] = value
  return leaves


def config_changes(saved: Mapping[str, Any],
                   config: ml_collections.ConfigDict
                   ) -> dict[str, tuple[Any, Any]]:
  """{key: (saved, now)} for every knob whose value differs from the
  workdir's config.json. Knobs missing on either side (added or removed
  since the run began; model knobs are filled in at their defaults) are
  not compared."""
  saved = {**saved, 'model': _with_model_defaults(saved.get('model'))}
  old, new = _leaves(saved), _leaves(config_to_dict(config))
  return {k: (old[k], new[k]) for k in sorted(old.keys() & new.keys())
          if old[k] != new[k]}


def _resumable(key: str) -> bool:
  return any(key == k or key.startswith(k + '.') for k in RESUMABLE_CHANGES)


def check_resume(workdir: str, config: ml_collections.ConfigDict,
                 allow_changes: bool) -> dict[str, tuple[Any, Any]]:
  """The config changes of a resumed run (see `config_changes`; empty for a
  workdir without checkpoints). Raises ValueError naming the keys when
  any is not in RESUMABLE_CHANGES, unless `allow_changes`."""
  config_path = os.path.join(workdir, CONFIG_FILE)
  if not _has_checkpoints(workdir) or not os.path.exists(config_path):
    return {}
  changes = config_changes(read_config(config_path), config)
  refused = [k for k in changes if not _resumable(k)]
  if refused and not allow_changes:
    listed = '; '.join(f'{k}: saved {changes[k][0]!r}, now {changes[k][1]!r}'
                       for k in refused)
    raise ValueError(
        f'{workdir} was trained with another config ({listed}); resuming '
        'would record settings its steps so far were not trained with: use '
        'the saved values, a new --workdir, or --allow_config_change to '
        f'resume anyway (the change is then recorded with its step in '
        f'{CHANGES_FILE})')
  return changes


def record_changes(workdir: str, step: int,
                   changes: Mapping[str, tuple[Any, Any]]) -> None:
  """Appends `{step, changes: {key: {from, to}}}` to config_changes.jsonl
  (process 0 only): config.json is the config from `step` on."""
  if not changes or jax.process_index() != 0:
    return
  record = {'step': step, 'changes': {k: {'from': old, 'to': new}
                                      for k, (old, new) in changes.items()}}
  with open(os.path.join(workdir, CHANGES_FILE), 'a') as f:
    f.write(json.dumps(record) + '\n')


def read_config(path: str) -> dict[str, Any]:
  """A run's config.json; ValueError naming the file and its problem."""
  try:
    with open(path) as f:
      saved = json.load(f)
  except ValueError as e:
    raise ValueError(f'{path} is not valid JSON ({e}); restore it, or use a '
                     'new --workdir') from None
  if not isinstance(saved, dict):
    raise ValueError(f'{path} holds a JSON {type(saved).__name__}, not the '
                     "run's config (a JSON object); restore it, or use a new "
                     '--workdir')
  return saved


def write_config(workdir: str, config: ml_collections.ConfigDict) -> None:
  """Writes config.json (process 0 only; atomically)."""
  if jax.process_index() != 0:
    return
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, CONFIG_FILE)
  with open(path + '.tmp', 'w') as f:
    json.dump(config_to_dict(config), f, indent=2, sort_keys=True)
  os.replace(path + '.tmp', path)


def make_manager(workdir: str, *, max_to_keep: int, best_metric: str | None,
                 best_mode: str = 'max',
                 async_saves: bool = False) -> ocp.CheckpointManager:
  """Keeps the `max_to_keep` latest steps plus the best by `best_metric`.

  Checkpoints saved without metrics only count for the latest-k rule. With
  `async_saves`, `save` returns once the state is copied off the devices and
  the files are written in the background (call `wait_until_finished()` or
  `close()` before exiting).
  """
  policies = [ocm.LatestN(n=max_to_keep)]
  if best_metric:
    policies.append(ocm.BestN(
        get_metric_fn=lambda metrics: metrics[best_metric],
        reverse=(best_mode == 'min'), n=1,
        keep_checkpoints_without_metrics=False))
  # best_fn/best_mode also make `best_step()` the best, not the latest.
  best = dict(best_fn=lambda metrics: metrics[best_metric],
              best_mode=best_mode) if best_metric else {}
  options = ocp.CheckpointManagerOptions(
      preservation_policy=ocm.AnyPreservationPolicy(policies),
      enable_async_checkpointing=async_saves, **best)
  return ocp.CheckpointManager(
      os.path.abspath(os.path.join(workdir, CHECKPOINT_DIR)), options=options)


def save(manager: ocp.CheckpointManager, state: TrainState, iterator: Any,
         metrics: Mapping[str, float] | None = None) -> bool:
  """Saves state (and the grain data iterator, if any) at state.step.

  Returns False when that step is already saved. With an asynchronous
  manager the write goes on in the background, except with an iterator: its
  position must be written before the loop moves it on.
  """
  step = int(jax.device_get(state.step))
  if step in manager.all_steps():
    return False
  items = {STATE_ITEM: ocp.args.StandardSave(state)}
  if iterator is not None:
    items[DATA_ITEM] = grain.checkpoint.CheckpointSave(iterator)
  manager.save(step, args=ocp.args.Composite(**items),
               metrics=dict(metrics) if metrics else None, force=True)
  if iterator is not None:
    manager.wait_until_finished()
  return True


def has_data_item(manager: ocp.CheckpointManager, step: int) -> bool:
  """Whether checkpoint `step` holds a grain iterator position."""
  return (manager.directory / str(step) / DATA_ITEM).exists()


def restore(manager: ocp.CheckpointManager, state: TrainState, iterator: Any,
            step: int | None = None) -> TrainState:
  """Restores `step` (default latest) into `state`'s structure and shardings.

  The data iterator, if given, is moved to its saved position in place.
  """
  step = manager.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f'no checkpoint in {manager.directory}')
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
  items = {STATE_ITEM: ocp.args.StandardRestore(abstract)}
  if iterator is not None:
    items[DATA_ITEM] = grain.checkpoint.CheckpointRestore(iterator)
  restored = manager.restore(step, args=ocp.args.Composite(**items))
  return restored[STATE_ITEM]


class NothingRestores(ValueError):
  """No checkpoint of a run could be restored; the message says which."""


def _reason(error: BaseException) -> str:
  """An error's message on one line, without tensorstore's JSON specs."""
  text = f'{type(error).__name__}: {error}'.split(' [tensorstore_spec')[0]
  text = ' '.join(text.split())
  return text if len(text) <= 300 else '...' + text[-300:]


@contextlib.contextmanager
def _held_back_stderr(settle_s: float = 0.5) -> Iterator[None]:
  """Holds back what the block writes to stderr (fd 2: C++ threads too);
  re-emits it if the block succeeds, drops it if the block raises.

  When one tensorstore read of a checkpoint fails, Orbax's event loop
  closes and the sibling reads still in flight print 'Event loop is
  closed' tracebacks from their threads: noise beside the one line that
  reports the failure. `settle_s`: how long those late writers get.
  """
  sys.stderr.flush()
  saved = os.dup(2)
  failed = False
  with tempfile.TemporaryFile() as held:
    os.dup2(held.fileno(), 2)
    try:
      yield
    except BaseException:
      failed = True
      time.sleep(settle_s)
      raise
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      if not failed:
        held.seek(0)
        os.write(2, held.read())


def _shapes(tree: Any) -> list[tuple[int, ...]]:
  return sorted(tuple(leaf.shape) for leaf in jax.tree.leaves(tree))


def _damage(step_dir: str, state: TrainState, error: Exception) -> str:
  """Why checkpoint `step_dir` failed to restore, if its files are damaged.

  Raises ValueError instead when the files read fine but hold a state of
  other shapes than `state` (another model or code version): such a
  checkpoint is not damaged and must not be moved aside.
  """
  try:
    with _held_back_stderr():
      saved = ocp.StandardCheckpointHandler().metadata(
          epath.Path(step_dir) / STATE_ITEM)
    saved_shapes = _shapes(getattr(saved, 'tree', saved))
  except DAMAGE_ERRORS as e:  # unreadable metadata
    return _reason(e)
  if saved_shapes != _shapes(state):
    raise ValueError(
        f'checkpoint {step_dir} holds a state of other shapes than this '
        f'config builds ({len(saved_shapes)} arrays saved, '
        f'{len(_shapes(state))} expected; restoring said: {_reason(error)}); '
        'use the config and code it was trained with, or a new --workdir')
  return _reason(error)


def move_aside(manager: ocp.CheckpointManager, step: int) -> str:
  """Renames checkpoint `step` to `<step>.corrupt` (`.corrupt2`, ... if
  taken) so that no run uses it again; returns the new path."""
  path = str(manager.directory / str(step))
  target, k = path + CORRUPT_SUFFIX, 1
  while os.path.exists(target):
    k += 1
    target = f'{path}{CORRUPT_SUFFIX}{k}'
  os.rename(path, target)
  manager.reload()
  return target


def restore_first(manager: ocp.CheckpointManager, state: TrainState,
                  iterator: Any, steps: Sequence[int], *,
                  move_damaged: bool = True) -> tuple[TrainState, int]:
  """(state, step) of the first of `steps` that restores (see `restore`;
  the iterator is restored only from a checkpoint holding its position).

  Each checkpoint that cannot be restored is reported in one line on
  stderr (step, path, reason) and, with `move_damaged` (only process 0
  moves), renamed aside by `move_aside`. Raises NothingRestores when none
  restores, and ValueError for a checkpoint of other shapes (see
  `_damage`).
  """
  is_main = jax.process_index() == 0
  failed = []
  for step in steps:
    step_dir = str(manager.directory / str(step))
    position = iterator if has_data_item(manager, step) else None
    try:
      with _held_back_stderr():
        return restore(manager, state, position, step), step
    except DAMAGE_ERRORS as e:
      reason = _damage(step_dir, state, e)
      # The failed reads' futures are collected later, each logged by
      # asyncio as 'never retrieved': the line below reports them.
      logging.getLogger('asyncio').setLevel(logging.CRITICAL)
    failed.append(str(step))
    if move_damaged and is_main:
      where = f'moved aside to {move_aside(manager, step)}'
    else:
      where = 'left in place'
    if is_main:
      print(f'warning: checkpoint {step} ({step_dir}) cannot be restored '
            f'({reason}); {where}', file=sys.stderr, flush=True)
  aside = ' (moved aside as <step>.corrupt)' if move_damaged else ''
  raise NothingRestores(
      f'no checkpoint in {manager.directory} restores (steps '
      f'{", ".join(failed) or "none"}{aside}: see the warnings above)')
