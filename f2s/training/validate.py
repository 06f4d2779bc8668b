"""One check of an experiment config before anything runs."""
import ml_collections

from f2s.features import NETS as LPIPS_NETS
from f2s import models
from f2s import value_range as value_ranges
from f2s.data import device_data, preprocess
from f2s.models import layers
from f2s.training import losses, step as step_lib

DATASETS = ('synthetic_face_sketch', 'cuhk_face_sketch')
# Data sets only scored on: never trained on.
EVAL_DATASETS = ('cufsf_face_sketch',)
EVAL_METRICS = ('ssim', 'fsim', 'mse', 'psnr', 'lpips_alex', 'lpips_vgg')


def _choice(where: str, value, allowed) -> None:
  if value not in allowed:
    raise ValueError(f'{where}={value!r}: expected one of {tuple(allowed)}')


def _positive_int(where: str, value) -> None:
  if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
    raise ValueError(f'{where}={value!r}: expected a positive integer')


def _number(where: str, value, *, minimum: float, strict: bool = False,
            below: float | None = None) -> None:
  """A real number >= minimum (> if strict) and < below (if given)."""
  ok = isinstance(value, (int, float)) and not isinstance(value, bool)
  ok = ok and (value > minimum if strict else value >= minimum)
  ok = ok and (below is None or value < below)
  if not ok:
    bound = f'{">" if strict else ">="} {minimum}' + (
        f' and < {below}' if below is not None else '')
    raise ValueError(f'{where}={value!r}: expected a number {bound}')


def _nonnegative_int(where: str, value) -> None:
  if not isinstance(value, int) or isinstance(value, bool) or value < 0:
    raise ValueError(f'{where}={value!r}: expected an integer >= 0')


def _check_gan(gan: ml_collections.ConfigDict) -> None:
  _number('config.gan.weight', gan.weight, minimum=0)
  _nonnegative_int('config.gan.start_step', gan.start_step)
  _number('config.gan.feature_matching', gan.feature_matching, minimum=0)
  _number('config.gan.r1', gan.r1, minimum=0)
  _number('config.gan.learning_rate', gan.learning_rate, minimum=0,
          strict=True)
  for key in ('b1', 'b2'):
    _number(f'config.gan.{key}', gan[key], minimum=0, below=1)
  _positive_int('config.gan.scales', gan.scales)
  if not isinstance(gan.spectral_norm, bool):
    raise ValueError(f'config.gan.spectral_norm={gan.spectral_norm!r}: '
                     'expected true or false')
  features = gan.features
  if (not isinstance(features, (tuple, list)) or not features
      or not all(isinstance(f, int) and not isinstance(f, bool) and f > 0
                 for f in features)):
    raise ValueError(f'config.gan.features={features!r}: expected a '
                     'non-empty tuple of positive integers, e.g. (32, 64, 128)')


def validate_config(config: ml_collections.ConfigDict,
                    device_count: int, process_count: int = 1) -> None:
  """Raises ValueError naming the first bad key/value.

  Checks names (dataset, protocol, value range, model, loss terms, schedule,
  best metric) and that batch sizes divide across `device_count` devices and
  `process_count` processes.
  """
  for section in ('data', 'model', 'loss', 'train', 'eval', 'gan',
                  'checkpoint'):
    if section not in config:
      raise ValueError(f'config lacks section {section!r}')
  _choice('config.data.dataset', config.data.dataset, DATASETS)
  _choice('config.data.protocol', config.data.protocol, preprocess.PROTOCOLS)
  _choice('config.data.value_range', config.data.value_range,
          value_ranges.VALUE_RANGES)
  _choice('config.data.device_resident', config.data.device_resident,
          device_data.MODES)
  models.check_config(config.model)
  if 'conv_impl' in config.model:
    _choice('config.model.conv_impl', config.model.conv_impl,
            layers.CONV_IMPLS)
  losses.check_terms(dict(config.loss.terms))
  losses.feature_spec_from_config(config.loss)
  preprocess.spec_from_config(config.data)  # pad_to, augmentation knobs
  _choice('config.train.lr_schedule', config.train.lr_schedule,
          ('constant', 'cosine'))
  _choice('config.train.compute_dtype', config.train.compute_dtype,
          step_lib.COMPUTE_DTYPES)
  for key in ('global_batch_size', 'num_steps', 'log_every_steps'):
    _positive_int(f'config.train.{key}', config.train[key])
  for key in ('every_steps', 'batch_size'):
    _positive_int(f'config.eval.{key}', config.eval[key])
  _positive_int('config.checkpoint.every_steps', config.checkpoint.every_steps)
  _positive_int('config.checkpoint.max_to_keep', config.checkpoint.max_to_keep)
  _choice('config.eval.restore', config.eval.restore, ('best', 'latest'))
  _choice('config.checkpoint.best_metric', config.checkpoint.best_metric,
          EVAL_METRICS)
  _choice('config.checkpoint.best_mode', config.checkpoint.best_mode,
          ('max', 'min'))
  _number('config.train.learning_rate', config.train.learning_rate,
          minimum=0, strict=True)
  _number('config.train.weight_decay', config.train.weight_decay, minimum=0)
  _number('config.train.grad_clip_norm', config.train.grad_clip_norm,
          minimum=0)
  _number('config.loss.kl_weight', config.loss.kl_weight, minimum=0)
  for name, weight in config.loss.terms.items():
    _number(f'config.loss.terms.{name}', weight, minimum=0)
  for key in ('b1', 'b2'):
    _number(f'config.train.{key}', config.train[key], minimum=0, below=1)
  _check_gan(config.gan)
  lpips = config.eval.lpips
  if (not isinstance(lpips, (tuple, list)) or len(set(lpips)) != len(lpips)
      or not set(lpips) <= set(LPIPS_NETS)):
    raise ValueError(f'config.eval.lpips={lpips!r}: expected a tuple of '
                     f'distinct nets from {tuple(LPIPS_NETS)}, e.g. '
                     "('alex', 'vgg'), or () for none")
  if config.eval.dataset is not None:
    _choice('config.eval.dataset', config.eval.dataset, EVAL_DATASETS)
  best = config.checkpoint.best_metric
  if best.startswith('lpips_') and best.removeprefix('lpips_') not in lpips:
    raise ValueError(f'config.checkpoint.best_metric={best!r} is not scored: '
                     f'add {best.removeprefix("lpips_")!r} to '
                     f'config.eval.lpips={tuple(lpips)!r}')
  if not isinstance(config.eval.write_predictions, bool):
    raise ValueError(f'config.eval.write_predictions='
                     f'{config.eval.write_predictions!r}: expected true/false')
  _nonnegative_int('config.train.warmup_steps', config.train.warmup_steps)
  for where, size in (('config.train.global_batch_size',
                       config.train.global_batch_size),
                      ('config.eval.batch_size', config.eval.batch_size)):
    if size % device_count:
      raise ValueError(
          f'{where}={size} does not divide across {device_count} devices: '
          f'use a multiple of {device_count}')
    if size % process_count:
      raise ValueError(
          f'{where}={size} does not divide across {process_count} processes')
