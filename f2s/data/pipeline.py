"""grain input pipeline: shuffled, augmented training batches and eval batches.

The training loop streams a split through it when the split is too large to
hold on the devices (`f2s.data.device_data` serves the small ones).

Training: an IndexSampler (shuffled per epoch, infinite epochs, sharded by JAX
process) feeds a grain DataLoader that per example reads the record and draws
its augmentation from grain's per-record rng (seeded from the seed and the
record's global position in the stream, so it is reproducible and survives
`get_state()`/`set_state()`), batches the uint8 arrays and then preprocesses the
whole batch with vectorised numpy (`f2s.data.preprocess`).
"""

from collections.abc import Iterator, Sequence
import math
from typing import Any

import grain
import jax
import numpy as np

from f2s.data import photometric, preprocess
from f2s.data.preprocess import DataSpec


def host_batch_size(global_batch_size: int, *,
                    process_count: int | None = None,
                    local_device_count: int | None = None) -> int:
  """The per-process batch; raises ValueError if the split is uneven.

  `process_count` / `local_device_count` default to JAX's (overridable for
  tests).
  """
  process_count = process_count or jax.process_count()
  local_device_count = local_device_count or jax.local_device_count()
  device_count = process_count * local_device_count
  if global_batch_size <= 0 or global_batch_size % device_count:
    raise ValueError(
        f'global batch size {global_batch_size} must be a positive multiple '
        f'of the device count {device_count} ({process_count} process(es) x '
        f'{local_device_count} local device(s)), so that each process gets '
        f'global_batch_size // process_count = '
        f'{global_batch_size / process_count:g} examples dividing evenly over '
        f'its {local_device_count} local device(s).')
  return global_batch_size // process_count


def _sampler_seed(seed: int) -> int:
  """Hashes the user seed to grain's 32-bit sampler seed.

  grain seeds epoch e's shuffle with seed + e and record i's rng with
  seed + i, so consecutive user seeds would share shuffles and augmentations
  at an offset; hashing makes different seeds unrelated.
  """
  return int(np.random.SeedSequence(seed).generate_state(1)[0] >> 1)


class _ReadAndDrawAugmentation(grain.transforms.RandomMap):
  """Joins photo and sketch as uint8 and draws the example's augmentation."""

  def __init__(self, spec: DataSpec):
    self._spec = spec

  def random_map(self, record: dict[str, Any], rng: np.random.Generator,
                 ) -> dict[str, np.ndarray]:
    preprocess.check_record(record)
    # One uint8 (250, 200, 4) array: a single copy to batch, and the warp
    # then moves photo and sketch together.
    out = {'pixels': np.concatenate(
        [np.asarray(record['photo']), np.asarray(record['sketch'])], axis=-1)}
    if self._spec.augment:
      out['aug'] = preprocess.sample_augmentation(rng, self._spec)
      if self._spec.photometric.enabled:  # after: the warp's draws unchanged
        out['photometric'] = photometric.sample(rng, self._spec.photometric)
    return out


class _PreprocessBatch(grain.transforms.Map):
  """Vectorised preprocessing of a whole uint8 batch."""

  def __init__(self, spec: DataSpec):
    self._spec = spec

  def map(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return preprocess.preprocess_pixels(batch['pixels'], self._spec,
                                        batch.get('aug'),
                                        batch.get('photometric'))


def make_train_loader(source: Sequence[dict[str, Any]], spec: DataSpec, *,
                      seed: int, host_batch: int, shard_index: int = 0,
                      shard_count: int = 1,
                      num_workers: int = 0) -> grain.DataLoader:
  """The training DataLoader for an explicit shard (see `train_loader`)."""
  if len(source) < host_batch * shard_count:
    raise ValueError(
        f'the source has {len(source)} records, fewer than one global batch '
        f'({host_batch} x {shard_count} process(es)).')
  shard_options = grain.sharding.ShardOptions(
      shard_index=shard_index, shard_count=shard_count, drop_remainder=True)
  sampler = grain.samplers.IndexSampler(
      num_records=len(source), shard_options=shard_options, shuffle=True,
      num_epochs=None, seed=_sampler_seed(seed))
  return grain.DataLoader(
      data_source=source, sampler=sampler,
      operations=[_ReadAndDrawAugmentation(spec),
                  grain.transforms.Batch(host_batch, drop_remainder=True),
                  _PreprocessBatch(spec)],
      worker_count=num_workers, shard_options=shard_options)


def train_loader(source: Sequence[dict[str, Any]], spec: DataSpec, *,
                 seed: int, global_batch_size: int,
                 num_workers: int = 0) -> grain.DataLoader:
  """Infinite shuffled (augmented if spec.augment) training batches.

  Iterate the returned DataLoader; its iterator's `get_state()` bytes restore
  the position with `set_state()`. Each process reads its own shard of the
  records (`jax.process_index()` of `jax.process_count()`) and yields batches
  of global_batch_size // process_count examples: float32 `photo`
  (B, H, W, 3) and `sketch` (B, H, W, C) as set by spec.protocol.
  """
  host_batch = host_batch_size(global_batch_size)
  return make_train_loader(
      source, spec, seed=seed, host_batch=host_batch,
      shard_index=jax.process_index(), shard_count=jax.process_count(),
      num_workers=num_workers)


def eval_batches(source: Sequence[dict[str, Any]], spec: DataSpec, *,
                 batch_size: int,
                 process_index: int | None = None,
                 process_count: int | None = None,
                 ) -> Iterator[dict[str, np.ndarray]]:
  """Every record of `source` exactly once, in order, without augmentation.

  `batch_size` is global: global batch k holds records [k * batch_size,
  (k + 1) * batch_size) and this process yields its contiguous
  batch_size // process_count of them, so all processes yield the same number
  of batches. Rows past the end of the split are zeros with `mask` 0; real
  rows have `mask` 1. Batches are as in `train_loader` plus `mask` float32 (B,)
  and `name`, a list of the real rows' record names (the record's `name`
  field, else its index as `%05d`).
  Raises ValueError, as `train_loader`, when batch_size does not split evenly
  over the devices. `process_index` / `process_count` default to JAX's.
  """
  process_index = jax.process_index() if process_index is None else process_index
  process_count = process_count or jax.process_count()
  local_batch = host_batch_size(batch_size, process_count=process_count)
  n = len(source)
  shape = (local_batch, *preprocess.RECORD_SHAPE)
  for k in range(math.ceil(n / batch_size)):
    start = k * batch_size + process_index * local_batch
    photo = np.zeros((*shape, 3), np.uint8)
    sketch = np.zeros((*shape, 1), np.uint8)
    mask = np.zeros((local_batch,), np.float32)
    names = []
    for row, index in enumerate(range(start, min(start + local_batch, n))):
      record = source[index]
      preprocess.check_record(record)
      photo[row], sketch[row], mask[row] = record['photo'], record['sketch'], 1
      names.append(_record_name(record, index))
    yield {**preprocess.preprocess_batch(photo, sketch, spec), 'mask': mask,
           'name': names}


def in_memory(source: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
  """The source's records, read (and decoded) once into a list: passes over
  a small split then cost no reading."""
  return [source[i] for i in range(len(source))]


def _record_name(record: dict[str, Any], index: int) -> str:
  name = record.get('name', f'{index:05d}')
  return name.decode() if isinstance(name, bytes) else str(name)
