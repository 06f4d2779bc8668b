"""Data parallelism: the device mesh, replicated state, sharded batches.

Per-device code names the data axis `AXIS` and is run with `data_parallel`
(`jax.jit` over `jax.shard_map`); each process assembles its host-local
batch into global arrays with `global_batch`.

A top-level module (as big_vision's `sharding.py`): the data layer, which
keeps the training split on the devices, and the training layer both use
it, and neither imports the other for it.
"""
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

AXIS = 'batch'


def make_mesh(devices: list[jax.Device] | None = None,
              axis_name: str = AXIS) -> Mesh:
  """A 1-D mesh over `devices` (default: all devices of all processes)."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), (axis_name,))


def data_parallel(fn: Callable[..., Any], mesh: Mesh, *,
                  out_specs: Any = (P(), P()), donate: bool = True,
                  axis_name: str = AXIS,
                  compiler_options: Mapping[str, str] | None = None
                  ) -> Callable[..., Any]:
  """jit(shard_map(fn)) with the state replicated and the batch sharded.

  `fn(state, batch)` is a per-device function using `axis_name`; the state
  (first argument) is donated. `compiler_options` go to XLA (e.g.
  f2s.xla_cpu's).
  """
  sharded = jax.shard_map(fn, mesh=mesh, in_specs=(P(), P(axis_name)),
                          out_specs=out_specs, check_vma=False)
  return jax.jit(sharded, donate_argnums=(0,) if donate else (),
                 compiler_options=compiler_options)


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Places a pytree replicated on every device of the mesh."""
  return jax.device_put(tree, NamedSharding(mesh, P()))


def global_batch(local: Mapping[str, np.ndarray], mesh: Mesh,
                 keys: tuple[str, ...], axis_name: str = AXIS
                 ) -> dict[str, jax.Array]:
  """Assembles each process's host-local batch into global sharded arrays.

  Only `keys` are taken (a batch may carry non-numeric fields such as names).
  """
  sharding = NamedSharding(mesh, P(axis_name))
  missing = [k for k in keys if k not in local]
  if missing:
    raise KeyError(f'batch lacks {missing}; it has {sorted(local)}')
  local_devices = len(mesh.local_devices)
  out = {}
  for key in keys:
    value = np.asarray(local[key])
    if value.shape[0] % local_devices:
      raise ValueError(
          f'host-local batch of {value.shape[0]} (key {key!r}) does not divide '
          f'across this process\'s {local_devices} devices')
    out[key] = jax.make_array_from_process_local_data(sharding, value)
  return out
