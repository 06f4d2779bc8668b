"""Train or evaluate a face-photo -> sketch model.

  python -m f2s.main --config=configs/casq.py:synthetic --workdir=runs/casq
  python -m f2s.main --config=configs/casq.py:cuhk_casq --workdir=runs/cuhk \
      --config.train.num_steps=5000
  python -m f2s.main --config=configs/casq.py:cuhk_casq --workdir=runs/cuhk \
      --mode=eval

Trains on all local devices. Across hosts: give --coordinator_address,
--num_processes and --process_id (or set JAX_COORDINATOR_ADDRESS and friends)
and run the same command on every host.
"""
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from f2s import host_memory

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file, e.g. configs/casq.py:synthetic.',
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Directory for checkpoints, metrics and samples.')
_MODE = flags.DEFINE_enum('mode', 'train', ['train', 'eval'],
                          'train (resumes automatically) or eval.')
_ALLOW_CONFIG_CHANGE = flags.DEFINE_bool(
    'allow_config_change', False,
    'Resume a run with settings other than its config.json (beyond the '
    "schedule's length, logging, evaluation and checkpoint frequency); the "
    'changes are recorded with the step in config_changes.jsonl.')
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', None, 'host:port of process 0 (multi-host).')
_NUM_PROCESSES = flags.DEFINE_integer(
    'num_processes', None, 'Number of processes (multi-host).')
_PROCESS_ID = flags.DEFINE_integer(
    'process_id', None, 'This process index (multi-host).')
flags.mark_flags_as_required(['config', 'workdir'])
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C


def maybe_initialize_distributed() -> None:
  """Joins a jax.distributed job when flags or JAX_COORDINATOR_ADDRESS say so."""
  import jax
  if _COORDINATOR.value is None and 'JAX_COORDINATOR_ADDRESS' not in os.environ:
    return
  jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                             num_processes=_NUM_PROCESSES.value,
                             process_id=_PROCESS_ID.value)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with a bad --config file or key as one line."""
  config_arg = next((a.split('=', 1)[1] for a in argv[1:]
                     if a.startswith('--config=')), None)
  try:
    if config_arg is not None:
      # Loaded here first so that a missing file or a config error is
      # reported as such, not as a flag-parsing traceback.
      from f2s import config_lib
      config = config_lib.load(config_arg)
    return flags.FLAGS(argv)
  except flags.Error as e:
    sys.exit(f'error: {e}\n{flags.FLAGS.main_module_help()}'
             if 'required' in str(e) else f'error: {e}')
  except (AttributeError, KeyError, ValueError, TypeError) as e:
    for arg in argv[1:]:
      key = arg.removeprefix('--config.').split('=', 1)[0]
      if arg.startswith('--config.') and not _has_key(config, key):
        from f2s import config_lib
        sys.exit(f'error: {config_lib.unknown_key_message(config, key)}')
    sys.exit(f'error: {e}' if isinstance(e, ValueError)
             else f'error: {type(e).__name__}: {e}')


def _has_key(config, dotted: str) -> bool:
  for part in dotted.split('.'):
    if not hasattr(config, 'keys') or part not in config:
      return False
    config = config[part]
  return True


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not flags.FLAGS['verbosity'].present:  # keep Orbax's INFO lines quiet
    logging.set_verbosity(logging.WARNING)
  config = _CONFIG.value
  # Before XLA's threads allocate: no page faults on every step's buffers.
  host_memory.keep_freed_memory()
  try:
    maybe_initialize_distributed()
    from f2s.training import loop
    if _MODE.value == 'train':
      loop.train_and_evaluate(config, _WORKDIR.value,
                              allow_config_change=_ALLOW_CONFIG_CHANGE.value)
    else:
      loop.evaluate_checkpoint(config, _WORKDIR.value)
  except (ValueError, FileNotFoundError, FloatingPointError, OSError) as e:
    sys.exit(f'error: {e}')
  except KeyboardInterrupt as e:  # Ctrl-C: one line, the shell's code 130
    # loop.Interrupted says where training stopped; elsewhere no step ran.
    again = 'resume' if _MODE.value == 'train' else 'evaluate again'
    print(str(e) or f'interrupted; run the same command to {again}',
          file=sys.stderr, flush=True)
    sys.stdout.flush()
    # Not sys.exit: the interrupt can leave XLA or tensorstore threads
    # mid-work, which crash the interpreter's shutdown; what the run owed
    # to disk is written (the loop waits for its pending writes).
    os._exit(EXIT_INTERRUPTED)


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
