"""Model registry: `default_config(name, variant)` and `build_model(config, out_shape)`.

Sizes live only in `_DEFAULTS` below; every one is a `config.model` knob.
Models are called as `model.apply(variables, photo, train=..., rngs=...,
mutable=...)` and return `(logits, aux)`: pre-sigmoid sketch logits of
`out_shape` and a dict of scalar metrics (`*_loss` entries are added to the
training loss).
"""

from typing import Any

import flax.linen as nn
import ml_collections

from f2s import value_range as value_range_lib
from f2s.models.attention import SelfAttention
from f2s.models.casq import CASQ
from f2s.models.dae import ConvDAE, DenseDAE
from f2s.models.exposure import ExposureInput
from f2s.models.grey import GreyInput, GreyOutput
from f2s.models.quantizers import (CODEBOOK_RNG, VQ_COLLECTION, VectorQuantizer,
                                   VectorQuantizerEMA, VQOutput)
from f2s.models.vae import SAMPLE_RNG, ConvVAE, DenseVAE

__all__ = ['build_model', 'check_config', 'default_config', 'VARIANTS', 'CASQ', 'ConvDAE', 'DenseDAE',
           'ExposureInput', 'GreyInput', 'GreyOutput', 'ConvVAE', 'DenseVAE', 'SelfAttention', 'VectorQuantizer',
           'VectorQuantizerEMA', 'VQOutput', 'VQ_COLLECTION', 'SAMPLE_RNG', 'CODEBOOK_RNG']

_CASQ_QUANTIZER = dict(quantizer='ema', commitment_cost=0.25, decay=0.99, epsilon=1e-5)

# (name, variant) -> (module class, knobs). The study's sizes are the 'paper' variants.
_DEFAULTS: dict[tuple[str, str], tuple[type[nn.Module], dict[str, Any]]] = {
    ('dae', 'paper'): (DenseDAE, dict(hidden=(128, 64, 32))),
    ('dae', 'conv'): (ConvDAE, dict(features=(32, 64, 128), latent_channels=16,
                                    block='plain', num_groups=8, conv_impl='auto')),
    ('vae', 'paper'): (DenseVAE, dict(hidden=(128, 64, 32), latent_dim=4)),
    ('vae', 'conv'): (ConvVAE, dict(features=(32, 64, 128), latent_channels=8,
                                    block='plain', num_groups=8, conv_impl='auto')),
    ('casq', 'paper'): (CASQ, dict(
        features=(64, 32, 16), decoder_features=(16, 32, 64), block='plain',
        num_groups=0, bottleneck_blocks=0, attention=True, embedding_dim=32,
        num_embeddings=128, dead_code_steps=20, conv_impl='auto', **_CASQ_QUANTIZER)),
    ('casq', 'default'): (CASQ, dict(
        # Narrow at full resolution, wide at the bottleneck: a CPU train step
        # (batch 16, 200x200) costs ~2x the paper variant's (7.8 vs 16.0
        # images/s in experiments/benchmark.py).
        features=(16, 64, 128), decoder_features=(64, 32, 16), block='residual',
        num_groups=8, bottleneck_blocks=2, attention=True, embedding_dim=64,
        num_embeddings=512, dead_code_steps=20, conv_impl='auto', **_CASQ_QUANTIZER)),
    # casq/default with U-Net skips, trained against a discriminator (the
    # config's `gan` section: f2s.config_lib.VARIANT_SETTINGS).
    ('casq', 'gan'): (CASQ, dict(
        features=(16, 64, 128), decoder_features=(64, 32, 16), block='residual',
        num_groups=8, bottleneck_blocks=2, attention=True, embedding_dim=64,
        num_embeddings=512, dead_code_steps=20, conv_impl='auto',
        skip_connections=True, **_CASQ_QUANTIZER)),
}

# Knobs of every model, applied by build_model around the module.
# grey_output: draw one channel and repeat it to the sketch's (GreyOutput);
# grey_input: see the photo's luma alone (GreyInput); face_exposure: if not
# 0, the face's mean luma the photo is scaled to (ExposureInput);
# face_light_balance: with face_exposure, even out light from one side first.
_COMMON_KNOBS: dict[str, Any] = dict(grey_output=False, grey_input=False,
                                     face_exposure=0.0,
                                     face_light_balance=False)

VARIANTS: dict[str, tuple[str, ...]] = {}
for _name, _variant in _DEFAULTS:
  VARIANTS.setdefault(_name, ())
  VARIANTS[_name] += (_variant,)


def _lookup(name: str, variant: str) -> tuple[type[nn.Module], dict[str, Any]]:
  if name not in VARIANTS:
    raise ValueError(f'Unknown model name {name!r}; expected one of {tuple(VARIANTS)}.')
  if (name, variant) not in _DEFAULTS:
    raise ValueError(f'Unknown variant {variant!r} for model {name!r}; expected one of '
                     f'{VARIANTS[name]}.')
  return _DEFAULTS[(name, variant)]


def default_config(name: str, variant: str) -> ml_collections.ConfigDict:
  """The `config.model` ConfigDict of model `name`, variant `variant`: name, variant
  and every size knob at its default."""
  _, knobs = _lookup(name, variant)
  return ml_collections.ConfigDict(
      dict(name=name, variant=variant, **knobs, **_COMMON_KNOBS))


def check_config(config: ml_collections.ConfigDict
                 ) -> tuple[type[nn.Module], dict[str, Any]]:
  """(module class, its keyword arguments) of `config` (= `config.model`).

  Knobs missing from `config` take the variant's defaults; an unknown model,
  variant or knob raises ValueError naming it. The common knobs
  (`grey_output`, `grey_input`, `face_exposure`, `face_light_balance`) are
  not among the keyword
  arguments.
  """
  if 'name' not in config or 'variant' not in config:
    raise ValueError(f'config.model needs keys "name" and "variant", got {sorted(config)}.')
  cls, knobs = _lookup(config.name, config.variant)
  given = {k: v for k, v in config.items()
           if k not in ('name', 'variant', *_COMMON_KNOBS)}
  unexpected = sorted(set(given) - set(knobs))
  if unexpected:
    raise ValueError(f'Unexpected knob(s) {unexpected} in config.model for '
                     f'{config.name}/{config.variant}; allowed: '
                     f'{sorted({*knobs, *_COMMON_KNOBS})}.')
  return cls, {**knobs, **given}


def build_model(config: ml_collections.ConfigDict, out_shape: tuple[int, int, int],
                axis_name: str | None = None,
                value_range: str | None = None) -> nn.Module:
  """The Flax module described by `config` (= `config.model`), see `check_config`.

  `axis_name` is used by the EMA quantizer (psum over data-parallel replicas)
  and ignored by models without state. With `grey_output`, the module draws
  one channel and GreyOutput repeats it to `out_shape`'s; with `grey_input`,
  GreyInput gives it the photo's luma; with `face_exposure`, ExposureInput
  (outermost) scales the photo first, in `value_range` (config.data's, which
  it then needs), and with `face_light_balance` too evens out its light
  across the face.
  """
  cls, kwargs = check_config(config)
  if len(out_shape) != 3:
    raise ValueError(f'out_shape must be (H, W, C), got {out_shape}.')
  # ConfigDict may hand back lists: modules want hashable tuples.
  kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
  if cls is CASQ:
    kwargs['axis_name'] = axis_name
  out_shape = tuple(int(d) for d in out_shape)
  if config.get('grey_output', _COMMON_KNOBS['grey_output']):
    model = GreyOutput(cls(out_shape=(*out_shape[:2], 1), **kwargs),
                       channels=out_shape[2])
  else:
    model = cls(out_shape=out_shape, **kwargs)
  if config.get('grey_input', _COMMON_KNOBS['grey_input']):
    model = GreyInput(model)
  exposure = config.get('face_exposure', _COMMON_KNOBS['face_exposure'])
  balance = config.get('face_light_balance',
                       _COMMON_KNOBS['face_light_balance'])
  if balance not in (True, False):
    raise ValueError(f'config.model.face_light_balance={balance!r}: expected '
                     'true or false.')
  if balance and not exposure:
    raise ValueError('config.model.face_light_balance=true needs '
                     'config.model.face_exposure (a mean luma in (0, 1]), '
                     'got 0 (off).')
  if exposure:
    if (isinstance(exposure, bool) or not isinstance(exposure, (int, float))
        or not 0 < exposure <= 1):
      raise ValueError(f'config.model.face_exposure={exposure!r}: expected 0 '
                       '(off) or a mean luma in (0, 1].')
    if value_range is None:
      raise ValueError('config.model.face_exposure needs the data\'s value '
                       'range: pass build_model(value_range=...).')
    value_range_lib.check(value_range)
    model = ExposureInput(model, target=float(exposure),
                          value_range=value_range, balance=bool(balance))
  return model
