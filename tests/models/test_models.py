"""The model registry: variants, default configs, overrides, and errors
naming unknown models, variants and knobs."""

import jax
import jax.numpy as jnp
import ml_collections
import pytest

from f2s.models import (CASQ, VARIANTS, ConvDAE, ConvVAE, DenseDAE, DenseVAE,
                        build_model, check_config, default_config)


def test_variants_and_their_classes():
  assert VARIANTS == {'dae': ('paper', 'conv'), 'vae': ('paper', 'conv'),
                      'casq': ('paper', 'default', 'gan')}
  classes = {('dae', 'paper'): DenseDAE, ('dae', 'conv'): ConvDAE,
             ('vae', 'paper'): DenseVAE, ('vae', 'conv'): ConvVAE,
             ('casq', 'paper'): CASQ, ('casq', 'default'): CASQ,
             ('casq', 'gan'): CASQ}
  for (name, variant), cls in classes.items():
    assert type(build_model(default_config(name, variant), (8, 8, 1))) is cls


def test_default_config_roundtrip_and_overrides(make_rngs):
  cfg = default_config('casq', 'default')
  assert cfg.name == 'casq' and cfg.variant == 'default'
  cfg.features = [8, 8, 8]  # ConfigDict may hold lists
  cfg.decoder_features = [8, 8, 8]
  cfg.embedding_dim = 8
  model = build_model(cfg, (32, 16, 1))
  assert model.features == (8, 8, 8)
  variables = jax.eval_shape(model.init, make_rngs(), jnp.zeros((2, 32, 16, 3)))
  assert variables['vq_ema']['vq']['embeddings'].shape == (8, 512)
  # A partial config takes the missing knobs from the variant's defaults.
  partial = ml_collections.ConfigDict({'name': 'vae', 'variant': 'paper', 'latent_dim': 2})
  assert build_model(partial, (8, 8, 1)).hidden == (128, 64, 32)


def test_check_config_merges_defaults_without_building():
  cls, kwargs = check_config(ml_collections.ConfigDict(
      {'name': 'dae', 'variant': 'paper', 'hidden': (4, 2)}))
  assert cls is DenseDAE
  assert kwargs['hidden'] == (4, 2)
  # grey_output/grey_input/face_exposure/face_light_balance wrap the module
  # in build_model, not passed to it.
  assert set(kwargs) == set(default_config('dae', 'paper')) - {
      'name', 'variant', 'grey_output', 'grey_input', 'face_exposure',
      'face_light_balance'}


@pytest.mark.parametrize('change,match', [
    ({'name': 'gan'}, "Unknown model name 'gan'"),
    ({'variant': 'huge'}, "Unknown variant 'huge' for model 'casq'"),
    ({'widths': 3}, r"Unexpected knob\(s\) \['widths'\]"),
])
def test_registry_errors(change, match):
  cfg = ml_collections.ConfigDict(dict(default_config('casq', 'paper')))
  for k, v in change.items():
    cfg[k] = v
  with pytest.raises(ValueError, match=match):
    build_model(cfg, (200, 200, 3))
  with pytest.raises(ValueError, match='Unknown'):
    default_config('casq', 'conv')


def test_config_without_name_or_bad_out_shape_is_refused():
  with pytest.raises(ValueError, match='needs keys "name" and "variant"'):
    check_config(ml_collections.ConfigDict({'name': 'dae'}))
  with pytest.raises(ValueError, match=r'out_shape must be \(H, W, C\)'):
    build_model(default_config('dae', 'paper'), (200, 200))


def test_axis_name_reaches_only_the_casq_quantizer():
  casq = build_model(default_config('casq', 'paper'), (8, 8, 1),
                     axis_name='batch')
  assert casq.axis_name == 'batch'
  dae = build_model(default_config('dae', 'conv'), (8, 8, 1),
                    axis_name='batch')
  assert not hasattr(dae, 'axis_name')
