"""The per-device train step and its data-parallel wrapper.

The step is written in pmap's model: it sees one device's slice of the batch,
names the data axis, and averages gradients and metrics with `lax.pmean`. It is
run with `jax.jit` over `jax.shard_map` with check_vma=False, which gives
exactly pmap's semantics: per-device gradients, so one explicit pmean is right.
(With check_vma=True, the gradient of a replicated parameter would already come
back summed over devices, and the pmean would double it.)
"""
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
import optax
from flax import linen as nn
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from f2s.training import losses
from f2s.training.state import TrainState

AXIS = 'batch'
Batch = Mapping[str, jax.Array]
Metrics = dict[str, jax.Array]


def step_keys(rng: jax.Array, axis_name: str
              ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Splits the state's key into the next state key and this step's streams.

  'sample' (per-example noise) differs per device; 'codebook' (dead-code
  re-initialisation of a replicated codebook) must be the same everywhere.
  """
  next_rng, sample_key, codebook_key = jax.random.split(rng, 3)
  sample_key = jax.random.fold_in(sample_key, lax.axis_index(axis_name))
  return next_rng, {'sample': sample_key, 'codebook': codebook_key}


def make_train_step(
    model: nn.Module,
    tx: optax.GradientTransformation,
    *,
    terms: Mapping[str, float],
    kl_weight: float,
    value_range: str,
    axis_name: str = AXIS,
) -> Callable[[TrainState, Batch], tuple[TrainState, Metrics]]:
  """Returns the per-device step `(state, batch) -> (state, metrics)`.

  `model` must have been built with `axis_name` so that its EMA statistics are
  psummed over the data axis. Metrics are averaged over devices.
  """
  terms = dict(terms)
  losses.check_terms(terms)

  def train_step(state: TrainState, batch: Batch
                 ) -> tuple[TrainState, Metrics]:
    next_rng, rngs = step_keys(state.rng, axis_name)
    mutable = list(state.model_state)

    def loss_fn(params):
      variables = {'params': params, **state.model_state}
      if mutable:
        (logits, aux), new_model_state = model.apply(
            variables, batch['photo'], train=True, rngs=rngs, mutable=mutable)
      else:
        logits, aux = model.apply(variables, batch['photo'], train=True,
                                  rngs=rngs)
        new_model_state = state.model_state
      loss, metrics = losses.total_loss(
          logits, aux, batch['sketch'], terms=terms, kl_weight=kl_weight,
          value_range=value_range)
      return loss, (metrics, new_model_state)

    grads, (metrics, new_model_state) = jax.grad(
        loss_fn, has_aux=True)(state.params)
    grads = lax.pmean(grads, axis_name)
    metrics = lax.pmean(metrics, axis_name)
    metrics['grad_norm'] = optax.tree.norm(grads)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    new_state = state.replace(
        step=state.step + 1,
        params=optax.apply_updates(state.params, updates),
        opt_state=opt_state,
        model_state=new_model_state,
        rng=next_rng)
    return new_state, metrics

  return train_step


def make_mesh(devices: list[jax.Device] | None = None,
              axis_name: str = AXIS) -> Mesh:
  """A 1-D mesh over `devices` (default: all devices of all processes)."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), (axis_name,))


def data_parallel(fn: Callable[..., Any], mesh: Mesh, *,
                  out_specs: Any = (P(), P()), donate: bool = True,
                  axis_name: str = AXIS) -> Callable[..., Any]:
  """jit(shard_map(fn)) with the state replicated and the batch sharded.

  `fn(state, batch)` is a per-device function using `axis_name`; the state
  (first argument) is donated.
  """
  sharded = jax.shard_map(fn, mesh=mesh, in_specs=(P(), P(axis_name)),
                          out_specs=out_specs, check_vma=False)
  return jax.jit(sharded, donate_argnums=(0,) if donate else ())


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


def all_finite(metrics: Mapping[str, Any]) -> bool:
  return all(bool(np.all(np.isfinite(np.asarray(v)))) for v in metrics.values())


def check_finite(history: list[tuple[int, Metrics]]) -> list[tuple[int, dict]]:
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
