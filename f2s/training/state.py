"""Train state and optimizers."""
import dataclasses
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import linen as nn

from f2s.models import CODEBOOK_RNG, SAMPLE_RNG
from f2s.models.discriminator import (LEGACY_SCALES, LEGACY_SPECTRAL_NORM,
                                     MultiScaleDiscriminator,
                                     PatchDiscriminator)

PyTree = Any


@flax.struct.dataclass
class TrainState:
  """Everything a training step reads and writes.

  model_state holds the model's non-'params' collections (e.g. the EMA
  codebook in 'vq_ema'); rng is the base key, split once per step.
  """
  step: jax.Array
  params: PyTree
  opt_state: optax.OptState
  model_state: PyTree
  rng: jax.Array


@flax.struct.dataclass
class GANTrainState(TrainState):
  """A TrainState plus the discriminator's: params, optimizer state and its
  spectral-norm statistics (f2s.models.discriminator)."""
  disc_params: PyTree
  disc_opt_state: optax.OptState
  disc_state: PyTree


def adversarial(config: ml_collections.ConfigDict) -> bool:
  """Whether `config` trains against a discriminator (config.gan.weight > 0;
  configs saved before the option existed have no `gan` section)."""
  return 'gan' in config and config.gan.weight > 0


def make_discriminator(gan: ml_collections.ConfigDict,
                       conv_impl: str = 'auto') -> nn.Module:
  """The PatchGAN discriminator of config.gan: one, or a multi-scale stack
  of `gan.scales` (configs saved before the option had one); `conv_impl`:
  the model's (`layers.cpu_fast`), which the discriminator follows."""
  features = tuple(gan.features)
  spectral_norm = gan.get('spectral_norm', LEGACY_SPECTRAL_NORM)
  scales = gan.get('scales', LEGACY_SCALES)
  if scales == 1:
    return PatchDiscriminator(features=features, spectral_norm=spectral_norm,
                              conv_impl=conv_impl)
  return MultiScaleDiscriminator(features=features,
                                 spectral_norm=spectral_norm, scales=scales,
                                 conv_impl=conv_impl)


def make_disc_optimizer(
    gan: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """The discriminator's Adam (constant rate, the GAN betas)."""
  return optax.adam(gan.learning_rate, b1=gan.b1, b2=gan.b2)


def learning_rate_schedule(train: ml_collections.ConfigDict) -> optax.Schedule:
  """Linear warm-up, then constant or cosine decay to zero at num_steps."""
  warmup = int(train.warmup_steps)
  if train.lr_schedule == 'constant':
    decay = optax.constant_schedule(train.learning_rate)
  elif train.lr_schedule == 'cosine':
    decay = optax.cosine_decay_schedule(
        train.learning_rate, max(1, int(train.num_steps) - warmup))
  else:
    raise ValueError(f'config.train.lr_schedule={train.lr_schedule!r}: '
                     "expected 'constant' or 'cosine'")
  if warmup == 0:
    return decay
  return optax.join_schedules(
      [optax.linear_schedule(0.0, train.learning_rate, warmup), decay],
      [warmup])


def make_optimizer(
    train: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """AdamW (Adam when weight_decay is 0) with optional global-norm clipping."""
  parts = []
  if train.grad_clip_norm:
    parts.append(optax.clip_by_global_norm(train.grad_clip_norm))
  parts.append(
      optax.adamw(learning_rate_schedule(train), b1=train.b1, b2=train.b2,
                  weight_decay=train.weight_decay))
  return optax.chain(*parts)


def init_variables(model: nn.Module, photo_shape: tuple[int, ...],
                   key: jax.Array) -> PyTree:
  """Initialises the model's variables from a zero photo batch."""
  params_key, sample_key, codebook_key = jax.random.split(key, 3)
  return model.init(
      {'params': params_key, SAMPLE_RNG: sample_key,
       CODEBOOK_RNG: codebook_key},
      jnp.zeros(photo_shape, jnp.float32), train=False)


def create_train_state(model: nn.Module, tx: optax.GradientTransformation,
                       photo_shape: tuple[int, ...], seed: int) -> TrainState:
  """A fresh train state: initialised variables, optimizer state, step 0."""
  # A raw uint32 key (not a typed key) so the state checkpoints as plain arrays.
  init_key, rng = jax.random.split(jax.random.PRNGKey(seed))
  variables = init_variables(model, photo_shape, init_key)
  params = variables['params']
  model_state = {k: v for k, v in variables.items() if k != 'params'}
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    opt_state=tx.init(params), model_state=model_state,
                    rng=rng)


def create_gan_train_state(model: nn.Module, tx: optax.GradientTransformation,
                           disc: nn.Module,
                           disc_tx: optax.GradientTransformation,
                           photo_shape: tuple[int, ...],
                           sketch_channels: int, seed: int) -> GANTrainState:
  """`create_train_state`'s state plus an initialised discriminator.

  The model's variables are the same as without the discriminator (same
  seed, same keys); the discriminator's key is folded from the seed.
  """
  state = create_train_state(model, tx, photo_shape, seed)
  disc_key = jax.random.fold_in(jax.random.PRNGKey(seed), 1)
  disc_vars = disc.init(
      disc_key, jnp.zeros(photo_shape, jnp.float32),
      jnp.zeros((*photo_shape[:-1], sketch_channels), jnp.float32))
  disc_params = disc_vars['params']
  return GANTrainState(
      **{f.name: getattr(state, f.name)
         for f in dataclasses.fields(TrainState)},
      disc_params=disc_params, disc_opt_state=disc_tx.init(disc_params),
      disc_state={k: v for k, v in disc_vars.items() if k != 'params'})


@dataclasses.dataclass(frozen=True)
class TrainParts:
  """What a config trains with, built once and shared by the initial state
  and the train step: the model's optimizer and, when adversarial, the
  discriminator and its optimizer."""
  tx: optax.GradientTransformation
  disc: nn.Module | None = None
  disc_tx: optax.GradientTransformation | None = None


def make_train_parts(config: ml_collections.ConfigDict) -> TrainParts:
  if not adversarial(config):
    return TrainParts(make_optimizer(config.train))
  disc = make_discriminator(config.gan,
                            config.model.get('conv_impl', 'auto'))
  return TrainParts(make_optimizer(config.train), disc,
                    make_disc_optimizer(config.gan))


def initial_state(parts: TrainParts, model: nn.Module,
                  photo_shape: tuple[int, ...], sketch_channels: int,
                  seed: int) -> TrainState:
  """The fresh train state: a GANTrainState when `parts` has a
  discriminator."""
  if parts.disc is None:
    return create_train_state(model, parts.tx, photo_shape, seed)
  return create_gan_train_state(model, parts.tx, parts.disc, parts.disc_tx,
                                photo_shape, sketch_channels, seed)
