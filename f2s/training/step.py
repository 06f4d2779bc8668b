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
import jax.numpy as jnp
import optax
from flax import linen as nn
from jax import lax

from f2s import value_range as value_ranges
from f2s.sharding import AXIS
from f2s.models import CODEBOOK_RNG, SAMPLE_RNG
from f2s.models.discriminator import SPECTRAL_COLLECTION
from f2s.training import losses
from f2s.training.state import GANTrainState, TrainState

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


COMPUTE_DTYPES = ('float32', 'bfloat16')


def _model_loss(model: nn.Module, params, model_state, batch: Batch,
                rngs: dict[str, jax.Array], terms: Mapping[str, float],
                kl_weight: float, value_range: str, compute_dtype: str,
                feature_spec: losses.FeatureSpec):
  """(loss, metrics, new model state, logits) of the model on `batch`.

  With a `compute_dtype` other than float32 the forward pass runs on a cast
  copy of the parameters and photo (mixed precision): the parameters, their
  gradients (the cast's transpose casts back) and the optimizer state stay
  float32, as do the model's state, the logits and the losses.
  """
  photo = batch['photo']
  if compute_dtype != 'float32':
    dtype = jnp.dtype(compute_dtype)
    params = jax.tree.map(lambda p: p.astype(dtype), params)
    photo = photo.astype(dtype)
  variables = {'params': params, **model_state}
  mutable = list(model_state)
  if mutable:
    (logits, aux), new_model_state = model.apply(
        variables, photo, train=True, rngs=rngs, mutable=mutable)
  else:
    logits, aux = model.apply(variables, photo, train=True, rngs=rngs)
    new_model_state = model_state
  # At least float32 (a float64 run, as the data-parallel tests', stays so).
  logits = logits.astype(jnp.promote_types(logits.dtype, jnp.float32))
  aux = {k: v.astype(jnp.promote_types(v.dtype, jnp.float32))
         for k, v in aux.items()}
  loss, metrics = losses.total_loss(
      logits, aux, batch['sketch'], terms=terms, kl_weight=kl_weight,
      value_range=value_range, feature_spec=feature_spec)
  return loss, metrics, new_model_state, logits


def _apply_update(state: TrainState, tx: optax.GradientTransformation, grads,
                  model_state, rng: jax.Array) -> TrainState:
  """The state one step on: `grads` applied by `tx`, the new model state and key."""
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  return state.replace(
      step=state.step + 1,
      params=optax.apply_updates(state.params, updates),
      opt_state=opt_state,
      model_state=model_state,
      rng=rng)


def make_train_step(
    model: nn.Module,
    tx: optax.GradientTransformation,
    *,
    terms: Mapping[str, float],
    kl_weight: float,
    value_range: str,
    compute_dtype: str = 'float32',
    feature_spec: losses.FeatureSpec = losses.FeatureSpec(),
    axis_name: str = AXIS,
) -> Callable[[TrainState, Batch], tuple[TrainState, Metrics]]:
  """Returns the per-device step `(state, batch) -> (state, metrics)`.

  `model` must have been built with `axis_name` so that its EMA statistics are
  psummed over the data axis. Metrics are averaged over devices.
  `compute_dtype`: the forward pass's (see `_model_loss`); `feature_spec`:
  the perceptual/style terms' (see `losses.total_loss`).
  """
  terms = dict(terms)

  def train_step(state: TrainState, batch: Batch
                 ) -> tuple[TrainState, Metrics]:
    next_rng, rngs = step_keys(state.rng, axis_name)

    def loss_fn(params):
      loss, metrics, new_model_state, _ = _model_loss(
          model, params, state.model_state, batch, rngs, terms, kl_weight,
          value_range, compute_dtype, feature_spec)
      return loss, (metrics, new_model_state)

    grads, (metrics, new_model_state) = jax.grad(
        loss_fn, has_aux=True)(state.params)
    grads = lax.pmean(grads, axis_name)
    metrics = lax.pmean(metrics, axis_name)
    metrics['grad_norm'] = optax.tree.norm(grads)
    return _apply_update(state, tx, grads, new_model_state, next_rng), metrics

  return train_step


def make_gan_train_step(
    model: nn.Module,
    tx: optax.GradientTransformation,
    disc: nn.Module,
    disc_tx: optax.GradientTransformation,
    *,
    terms: Mapping[str, float],
    kl_weight: float,
    value_range: str,
    adversarial_weight: float,
    start_step: int,
    feature_matching_weight: float = 0.0,
    r1_weight: float = 0.0,
    compute_dtype: str = 'float32',
    feature_spec: losses.FeatureSpec = losses.FeatureSpec(),
    axis_name: str = AXIS,
) -> Callable[[GANTrainState, Batch], tuple[GANTrainState, Metrics]]:
  """`make_train_step`'s step against the discriminator `disc`, both updated.

  The model's loss is `make_train_step`'s plus `adversarial_weight` times the
  hinge generator loss from the step `start_step` on (before, the
  discriminator already learns, so that it is useful when it starts
  counting), plus `feature_matching_weight` times pix2pixHD's feature
  matching loss from the same step (off at 0: not computed). The
  discriminator sees (photo, sketch in [0, 1]) pairs: the real ones and the
  model's, detached; its loss adds `r1_weight` / 2 times the R1 penalty on
  the real pairs (`losses.r1_penalty`; off at 0: not computed). Both
  gradients are pmean'd over `axis_name`; metrics add `adversarial_loss`,
  `feature_matching_loss` and `r1_penalty` (unweighted), `disc_loss`,
  the mean real/fake logits and `disc_grad_norm`. `compute_dtype` applies
  to the model; the discriminator computes in float32.
  """
  terms = dict(terms)

  def train_step(state: GANTrainState, batch: Batch
                 ) -> tuple[GANTrainState, Metrics]:
    next_rng, rngs = step_keys(state.rng, axis_name)
    photo = batch['photo']
    real = value_ranges.to_unit(batch['sketch'], value_range)
    started = state.step >= start_step
    disc_vars = {'params': state.disc_params, **state.disc_state}
    if feature_matching_weight:
      _, real_features = disc.apply(disc_vars, photo, real,
                                    return_features=True)

    def loss_fn(params):
      loss, metrics, new_model_state, logits = _model_loss(
          model, params, state.model_state, batch, rngs, terms, kl_weight,
          value_range, compute_dtype, feature_spec)
      fake = jax.nn.sigmoid(logits)
      fake_logits, fake_features = disc.apply(disc_vars, photo, fake,
                                              return_features=True)
      adversarial = losses.hinge_generator_loss(fake_logits)
      metrics['adversarial_loss'] = adversarial
      loss = loss + adversarial_weight * started * adversarial
      if feature_matching_weight:
        matching = losses.feature_matching_loss(fake_features, real_features)
        metrics['feature_matching_loss'] = matching
        loss = loss + feature_matching_weight * started * matching
      metrics['loss'] = loss
      return loss, (metrics, new_model_state, fake)

    grads, (metrics, new_model_state, fake) = jax.grad(
        loss_fn, has_aux=True)(state.params)
    fake = lax.stop_gradient(fake)

    def disc_loss_fn(disc_params):
      variables = {'params': disc_params, **state.disc_state}
      # One call on real and fake together: one power iteration a step.
      logits, new_disc_state = disc.apply(
          variables, jnp.concatenate([photo, photo]),
          jnp.concatenate([real, fake]), update_stats=True,
          mutable=[SPECTRAL_COLLECTION])
      n = photo.shape[0]
      real_logits = jax.tree.map(lambda l: l[:n], logits)
      fake_logits = jax.tree.map(lambda l: l[n:], logits)
      loss = losses.hinge_discriminator_loss(real_logits, fake_logits)
      disc_metrics = dict(disc_real=losses.mean_over_grids(real_logits),
                          disc_fake=losses.mean_over_grids(fake_logits))
      if r1_weight:
        # The step's stored power-iteration vectors, as the generator's
        # pass uses them.
        r1 = losses.r1_penalty(lambda s: disc.apply(variables, photo, s), real)
        disc_metrics['r1_penalty'] = r1
        loss = loss + 0.5 * r1_weight * r1
      return loss, (new_disc_state, disc_metrics)

    (disc_loss, (new_disc_state, disc_metrics)), disc_grads = (
        jax.value_and_grad(disc_loss_fn, has_aux=True)(state.disc_params))
    metrics.update(disc_loss=disc_loss, **disc_metrics)
    grads = lax.pmean(grads, axis_name)
    disc_grads = lax.pmean(disc_grads, axis_name)
    metrics = lax.pmean(metrics, axis_name)
    metrics['grad_norm'] = optax.tree.norm(grads)
    metrics['disc_grad_norm'] = optax.tree.norm(disc_grads)
    disc_updates, disc_opt_state = disc_tx.update(
        disc_grads, state.disc_opt_state, state.disc_params)
    new_state = _apply_update(
        state, tx, grads, new_model_state, next_rng).replace(
        disc_params=optax.apply_updates(state.disc_params, disc_updates),
        disc_opt_state=disc_opt_state,
        disc_state=new_disc_state)
    return new_state, metrics

  return train_step
