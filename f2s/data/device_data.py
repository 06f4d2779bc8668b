"""Device-resident training data: a small split held on the devices as uint8,
each step's batch gathered, augmented and preprocessed inside the jitted step.

The split's photos and sketches are read once into one uint8 (n, 250, 200, 4)
array per process (its contiguous shard of n = len // process_count records,
as grain shards) and placed on each of its devices. The train step then gets
its batch from `(state.step, split)` alone: the host passes nothing per step.

The stream: each process walks its shard in epochs, each a permutation drawn
from the process's data key and the epoch number; host-batch position j of
step s is stream element s * host_batch + j (batches run across epoch
boundaries, as grain's do). Each example's augmentation is drawn from the data
key, s and j. So the same seed gives the same batches, a resumed run continues
the exact stream from its checkpointed step, and the global batch (and each
example's augmentation) is the same on any number of devices: device d of a
process takes host-batch positions [slot_d * b, (slot_d + 1) * b).

Augmentation and preprocessing are `f2s.data.augment` and the JAX mirror of
`preprocess.preprocess_pixels` here: given the same records and transforms,
the numpy pipeline's values to float rounding (~1e-6). The shuffles and
random draws are JAX's, so the stream itself is not grain's.
"""
from collections.abc import Callable, Sequence
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from f2s import sharding
from f2s.data import augment, photometric, preprocess
from f2s.data.preprocess import DataSpec

MODES = ('auto', 'always', 'never')
# 'auto' holds a split on the devices when its uint8 shard fits in this much
# memory per device; larger splits are streamed by the grain pipeline.
MAX_BYTES_PER_DEVICE = 1 << 30
RECORD_BYTES = int(np.prod(preprocess.RECORD_SHAPE)) * 4
# Folded into the seed so the data stream is independent of the state's keys.
_DATA_STREAM = 0x64617461
# Folded into an example's augmentation key for its photometric draws.
_PHOTOMETRIC = 0x70686f74

Batch = dict[str, jax.Array]


@flax.struct.dataclass
class DeviceSplit:
  """A training split on the devices; every leaf has a leading device axis.

  pixels: uint8 (devices, n, 250, 200, 4), photo + sketch channels; each
    device holds its process's shard of n records.
  key: uint32 (devices, 2), its process's data key.
  slot: int32 (devices,), the device's position among its process's devices.
  """
  pixels: jax.Array
  key: jax.Array
  slot: jax.Array


def shard_size(num_records: int, process_count: int) -> int:
  """Records per process (the remainder is dropped, as grain does)."""
  return num_records // process_count


def use_device_data(mode: str, num_records: int, process_count: int) -> bool:
  """Whether a split of `num_records` is held on the devices under `mode`
  (config.data.device_resident): 'auto' when a process's uint8 shard fits in
  MAX_BYTES_PER_DEVICE."""
  if mode not in MODES:
    raise ValueError(f'config.data.device_resident={mode!r}: expected one of '
                     f'{MODES}')
  if mode == 'auto':
    return (shard_size(num_records, process_count) * RECORD_BYTES
            <= MAX_BYTES_PER_DEVICE)
  return mode == 'always'


def read_pixels(source: Sequence[dict[str, Any]],
                indices: Sequence[int]) -> np.ndarray:
  """The records' photo and sketch as one uint8 (len(indices), 250, 200, 4)."""
  out = np.empty((len(indices), *preprocess.RECORD_SHAPE, 4), np.uint8)
  for row, index in enumerate(indices):
    record = source[index]
    preprocess.check_record(record)
    out[row, ..., :3] = record['photo']
    out[row, ..., 3:] = record['sketch']
  return out


def _local_devices(mesh: Mesh) -> list[jax.Device]:
  """This process's devices in mesh order."""
  process = jax.process_index()
  return [d for d in mesh.devices.flat if d.process_index == process]


def _per_device(mesh: Mesh, values: Sequence[np.ndarray]) -> jax.Array:
  """A global array whose row for local device i is values[i]."""
  devices = _local_devices(mesh)
  arrays = [jax.device_put(v[None], d) for v, d in zip(values, devices,
                                                       strict=True)]
  return jax.make_array_from_single_device_arrays(
      (mesh.size, *values[0].shape), NamedSharding(mesh, P(sharding.AXIS)),
      arrays)


def place(source: Sequence[dict[str, Any]], mesh: Mesh, *, seed: int,
          global_batch_size: int) -> DeviceSplit:
  """Reads this process's shard of `source` and puts it on its devices.

  Raises ValueError when a shard holds fewer records than a host batch.
  """
  process, processes = jax.process_index(), jax.process_count()
  n = shard_size(len(source), processes)
  host_batch = global_batch_size // processes
  if n < host_batch:
    raise ValueError(
        f'the source has {len(source)} records, fewer than one global batch '
        f'({host_batch} x {processes} process(es)).')
  pixels = read_pixels(source, range(process * n, (process + 1) * n))
  key = np.asarray(jax.random.fold_in(
      jax.random.fold_in(jax.random.PRNGKey(seed), _DATA_STREAM), process))
  local = len(_local_devices(mesh))
  return DeviceSplit(
      pixels=_per_device(mesh, [pixels] * local),
      key=_per_device(mesh, [key] * local),
      slot=_per_device(mesh, [np.int32(i) for i in range(local)]))


def record_indices(perm_key: jax.Array, step: jax.Array, positions: jax.Array,
                   num_records: int, host_batch: int) -> jax.Array:
  """Shard indices of host-batch `positions` at `step` (see the module doc).

  Stream element t = step * host_batch + j is record perm_e[t % n] of epoch
  e = t // n; computed without forming t, which would overflow int32 in long
  runs. A batch spans at most two epochs (host_batch <= n).
  """
  n = num_records
  step = jnp.asarray(step, jnp.int32)
  q, r = step // n, step % n
  offset = r * host_batch + positions
  first = q * host_batch + (r * host_batch) // n
  epoch = q * host_batch + offset // n
  perms = jnp.stack([
      jax.random.permutation(jax.random.fold_in(perm_key, first + i), n)
      for i in (0, 1)])
  return perms[epoch - first, offset % n]


def _from_uint8(x: jax.Array, value_range: str) -> jax.Array:
  """`f2s.value_range.from_uint8`'s arithmetic, in JAX."""
  x = x * np.float32(1 / 255 if value_range == 'unit' else 2 / 255)
  return x - 1 if value_range == 'symmetric' else x


def preprocess_pixels(pixels: jax.Array, spec: DataSpec,
                      params: jax.Array | None = None,
                      photometric_params: jax.Array | None = None) -> Batch:
  """`preprocess.preprocess_pixels` in JAX: uint8 (B, 250, 200, 4) -> batch.

  `params` (B, 4) as drawn by `augment.sample_params`; None: no augmentation.
  `photometric_params` (B, spec.photometric.num_params), with `params`: the
  photo's `f2s.data.photometric` changes after the warp.
  """
  top, left, h, w = window = preprocess.output_window(spec)
  if params is None:
    photo = pixels[:, top:top + h, left:left + w, :3].astype(jnp.float32)
    sketch = pixels[:, top:top + h, left:left + w, 3:].astype(jnp.float32)
  else:
    # Photo and sketch warped apart, with the same params (so the same
    # taps): on CPU, XLA gathers them so faster than it splits one warped
    # 4-channel array.
    photo = augment.warp(pixels[..., :3], params, window)
    sketch = augment.warp(pixels[..., 3:], params, window)
    if photometric_params is not None:
      photo = photometric.apply(photo, photometric_params, spec.photometric,
                                jnp)
  photo = _from_uint8(photo, spec.value_range)
  sketch = _from_uint8(sketch, spec.value_range)
  if spec.protocol == 'casq':
    sketch = jnp.repeat(sketch, 3, axis=-1)
  else:
    top, left = preprocess.pad_offsets(spec.pad_to)
    widths = ((0, 0), (top, spec.pad_to[0] - preprocess.RECORD_SHAPE[0] - top),
              (left, spec.pad_to[1] - preprocess.RECORD_SHAPE[1] - left),
              (0, 0))
    photo = jnp.pad(photo, widths, mode=preprocess.PAD_MODE)
    sketch = jnp.pad(sketch, widths, mode=preprocess.PAD_MODE)
  return {'photo': photo, 'sketch': sketch}


def make_device_batch(spec: DataSpec, mesh: Mesh, global_batch_size: int
                      ) -> Callable[[jax.Array, DeviceSplit], Batch]:
  """Per-device `(step, split) -> batch`: this device's slice of the global
  batch of `step`, to be run inside `shard_map` over `mesh` with the split
  sharded along the data axis (the split seen with a leading axis of 1)."""
  processes = jax.process_count()
  if global_batch_size % mesh.size or global_batch_size % processes:
    raise ValueError(
        f'global batch size {global_batch_size} does not divide across '
        f'{mesh.size} devices and {processes} process(es)')
  host_batch = global_batch_size // processes
  device_batch = global_batch_size // mesh.size

  def device_batch_fn(step: jax.Array, split: DeviceSplit) -> Batch:
    pixels, key, slot = split.pixels[0], split.key[0], split.slot[0]
    if pixels.shape[0] < host_batch:  # record_indices needs a batch <= epoch
      raise ValueError(f'a shard of {pixels.shape[0]} records is smaller '
                       f'than the host batch of {host_batch}')
    perm_key, aug_key = jax.random.split(key)
    positions = slot * device_batch + jnp.arange(device_batch,
                                                 dtype=jnp.int32)
    index = record_indices(perm_key, step, positions, pixels.shape[0],
                           host_batch)
    params = photo_params = None
    if spec.augment:
      step_key = jax.random.fold_in(aug_key, step)
      params = jax.vmap(lambda j: augment.sample_params(
          jax.random.fold_in(step_key, j), spec))(positions)
      if spec.photometric.enabled:  # own keys: the warp's draws unchanged
        photo_params = jax.vmap(lambda j: photometric.params(
            jax.random.uniform(jax.random.fold_in(jax.random.fold_in(
                step_key, j), _PHOTOMETRIC), (spec.photometric.num_params,)),
            spec.photometric, jnp))(positions)
    return preprocess_pixels(pixels[index], spec, params, photo_params)

  return device_batch_fn


def with_device_batch(per_device_step: Callable[[Any, Batch], Any],
                      device_batch_fn: Callable[[jax.Array, DeviceSplit],
                                                Batch]
                      ) -> Callable[[Any, DeviceSplit], Any]:
  """Per-device `(state, split) -> step(state, batch of state.step)`."""

  def step(state: Any, split: DeviceSplit) -> Any:
    return per_device_step(state, device_batch_fn(state.step, split))

  return step


def global_batches(spec: DataSpec, mesh: Mesh, global_batch_size: int
                   ) -> Callable[[jax.Array, DeviceSplit], Batch]:
  """Jitted `(step, split) -> the global batch of step` (sharded): the batch
  a train step sees, for tests and benchmarks."""
  return sharding.data_parallel(
      make_device_batch(spec, mesh, global_batch_size), mesh,
      out_specs=P(sharding.AXIS), donate=False)
