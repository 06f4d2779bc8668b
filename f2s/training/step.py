"""The per-device train step `(state, batch) -> (state, metrics)`.

The step is written in pmap's model: it sees one device's slice of the batch,
names the data axis, and averages gradients and metrics with `lax.pmean`. It is
run with `jax.jit` over `jax.shard_map` with check_vma=False, which gives
exactly pmap's semantics: per-device gradients, so one explicit pmean is right.
(With check_vma=True, the gradient of a replicated parameter would already come
back summed over devices, and the pmean would double it.)
"""
from collections.abc import Callable, Mapping

import jax
import optax
from flax import linen as nn
from jax import lax

from f2s.models import CODEBOOK_RNG, SAMPLE_RNG
from f2s.training import losses
from f2s.training.parallel import AXIS
from f2s.training.state import TrainState

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
  return next_rng, {SAMPLE_RNG: sample_key, CODEBOOK_RNG: codebook_key}


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
