"""Shapes and dtypes of every model/variant, the registry, and the layer helpers."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from f2s.models import VARIANTS, SelfAttention, VectorQuantizerEMA, build_model, default_config
from f2s.models.layers import max_pool2, upsample2

RNG_NAMES = ('params', 'sample', 'codebook')
IO_SHAPES = [((200, 200, 3), (200, 200, 3)), ((256, 208, 3), (256, 208, 1))]
AUX_KEYS = {'dae': set(), 'vae': {'kl_loss'},
            'casq': {'vq_loss', 'perplexity', 'code_usage', 'codes_reset'}}
MODEL_VARIANTS = [(n, v) for n, vs in VARIANTS.items() for v in vs]


def _rngs(seed=0):
  return {k: jax.random.key(seed + i) for i, k in enumerate(RNG_NAMES)}


@pytest.mark.parametrize('batch', [1, 3])
@pytest.mark.parametrize('in_shape,out_shape', IO_SHAPES)
@pytest.mark.parametrize('name,variant', MODEL_VARIANTS)
def test_model_shapes(name, variant, in_shape, out_shape, batch):
  model = build_model(default_config(name, variant), out_shape)
  photo = jax.ShapeDtypeStruct((batch, *in_shape), jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(_rngs(), x, train=False), photo)
  state = [c for c in variables if c != 'params']
  assert state == (['vq_ema'] if name == 'casq' else [])
  for train in (True, False):
    fn = lambda v, x: model.apply(v, x, train=train, rngs=_rngs(), mutable=state if train else False)
    out = jax.eval_shape(fn, variables, photo)
    (logits, aux), new_state = out if train else (out, {})
    assert logits.shape == (batch, *out_shape) and logits.dtype == jnp.float32
    assert set(aux) == AUX_KEYS[name]
    assert all(a.shape == () and a.dtype == jnp.float32 for a in aux.values())
    if train:
      assert jax.tree.map(lambda a: (a.shape, a.dtype), dict(new_state)) == \
          jax.tree.map(lambda a: (a.shape, a.dtype), {c: variables[c] for c in state})


def test_casq_state_not_in_params():
  model = build_model(default_config('casq', 'paper'), (200, 200, 3))
  variables = jax.eval_shape(
      lambda x: model.init(_rngs(), x, train=False),
      jax.ShapeDtypeStruct((1, 200, 200, 3), jnp.float32))
  assert 'vq' not in variables['params']
  assert set(variables['vq_ema']['vq']) == {
      'embeddings', 'ema_cluster_size', 'ema_cluster_size_counter', 'ema_dw',
      'ema_dw_counter', 'steps_unused'}
  assert variables['vq_ema']['vq']['embeddings'].shape == (32, 128)


def test_paper_sizes():
  dae = jax.eval_shape(
      lambda x: build_model(default_config('dae', 'paper'), (200, 200, 3)).init(_rngs(), x),
      jax.ShapeDtypeStruct((1, 200, 200, 3), jnp.float32))['params']
  widths = [dae[f'dense{i}']['kernel'].shape[1] for i in range(5)]
  assert widths == [128, 64, 32, 64, 128]
  assert dae['dense0']['kernel'].shape[0] == 200 * 200 * 3
  vae = jax.eval_shape(
      lambda x: build_model(default_config('vae', 'paper'), (200, 200, 3)).init(_rngs(), x),
      jax.ShapeDtypeStruct((1, 200, 200, 3), jnp.float32))['params']
  assert vae['mean']['kernel'].shape == (32, 4)
  casq = build_model(default_config('casq', 'paper'), (200, 200, 3))
  enc = jax.eval_shape(lambda x: casq.init(_rngs(), x),
                       jax.ShapeDtypeStruct((1, 200, 200, 3), jnp.float32))
  kernels = [enc['params']['encoder'][f'block{i}']['conv']['kernel'].shape for i in range(3)]
  assert kernels == [(3, 3, 3, 64), (3, 3, 64, 32), (3, 3, 32, 16)]
  assert enc['params']['pre_vq']['kernel'].shape == (1, 1, 16, 32)


def test_attention_and_quantizer_shapes():
  for batch in (1, 2):
    x = jax.ShapeDtypeStruct((batch, 25, 25, 16), jnp.float32)
    att = SelfAttention()
    v = jax.eval_shape(att.init, jax.random.key(0), x)
    y = jax.eval_shape(att.apply, v, x)
    assert y.shape == x.shape and y.dtype == jnp.float32
    assert v['params']['query']['kernel'].shape == (1, 1, 16, 2)
    assert v['params']['value']['kernel'].shape == (1, 1, 16, 8)
    vq = VectorQuantizerEMA(128, 16, 0.25, 0.99, dead_code_steps=5)
    v = jax.eval_shape(lambda x: vq.init({'params': jax.random.key(0)}, x), x)
    out, _ = jax.eval_shape(
        lambda v, x: vq.apply(v, x, train=True, rngs={'codebook': jax.random.key(1)},
                              mutable=['vq_ema']), v, x)
    assert out.quantize.shape == x.shape and out.quantize.dtype == jnp.float32
    assert out.encoding_indices.shape == (batch, 25, 25)
    assert out.encoding_indices.dtype == jnp.int32


def test_default_config_roundtrip_and_overrides():
  cfg = default_config('casq', 'default')
  assert cfg.name == 'casq' and cfg.variant == 'default'
  cfg.features = [8, 8, 8]  # ConfigDict may hold lists
  cfg.decoder_features = [8, 8, 8]
  cfg.embedding_dim = 8
  model = build_model(cfg, (32, 16, 1))
  assert model.features == (8, 8, 8)
  variables = jax.eval_shape(model.init, _rngs(), jnp.zeros((2, 32, 16, 3)))
  assert variables['vq_ema']['vq']['embeddings'].shape == (8, 512)
  # A partial config takes the missing knobs from the variant's defaults.
  partial = ml_collections.ConfigDict({'name': 'vae', 'variant': 'paper', 'latent_dim': 2})
  assert build_model(partial, (8, 8, 1)).hidden == (128, 64, 32)


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


def test_bad_inputs():
  model = build_model(default_config('casq', 'paper'), (200, 200, 3))
  with pytest.raises(ValueError, match='divisible by 8'):
    jax.eval_shape(lambda x: build_model(default_config('casq', 'paper'), (204, 200, 3)).init(
        _rngs(), x), jax.ShapeDtypeStruct((1, 204, 200, 3), jnp.float32))
  with pytest.raises(ValueError, match='differs from out_shape'):
    jax.eval_shape(lambda x: model.init(_rngs(), x),
                   jax.ShapeDtypeStruct((1, 256, 208, 3), jnp.float32))
  with pytest.raises(ValueError, match=r'\(B, H, W, 3\)'):
    jax.eval_shape(lambda x: model.init(_rngs(), x),
                   jax.ShapeDtypeStruct((1, 200, 200, 1), jnp.float32))
  with pytest.raises(ValueError, match='embedding_dim=16'):
    VectorQuantizerEMA(8, 16, 0.25, 0.99).init(jax.random.key(0), jnp.zeros((2, 4, 4, 8)))


def test_vae_sampling_uses_sample_rng_and_eval_uses_mean():
  cfg = default_config('vae', 'conv')
  cfg.features, cfg.latent_channels, cfg.num_groups = (4, 4, 4), 2, 2
  model = build_model(cfg, (16, 16, 1))
  x = jax.random.uniform(jax.random.key(0), (2, 16, 16, 3))
  variables = jax.jit(model.init)(_rngs(), x)
  apply = jax.jit(model.apply, static_argnames='train')
  ev1, _ = apply(variables, x, train=False)
  ev2, _ = apply(variables, x, train=False, rngs={'sample': jax.random.key(9)})
  np.testing.assert_array_equal(ev1, ev2)
  tr1, aux1 = apply(variables, x, train=True, rngs={'sample': jax.random.key(1)})
  tr1b, _ = apply(variables, x, train=True, rngs={'sample': jax.random.key(1)})
  tr2, _ = apply(variables, x, train=True, rngs={'sample': jax.random.key(2)})
  np.testing.assert_array_equal(tr1, tr1b)
  assert not np.allclose(tr1, tr2) and not np.allclose(tr1, ev1)
  assert float(aux1['kl_loss']) >= 0


def test_kl_matches_closed_form():
  from f2s.models.vae import kl_divergence
  mean = np.array([[0.5, -1.0], [0.0, 2.0]])
  logvar = np.array([[0.1, -0.3], [0.0, 0.7]])
  per = 0.5 * np.sum(np.exp(logvar) + mean**2 - 1 - logvar, axis=1)
  np.testing.assert_allclose(kl_divergence(jnp.array(mean), jnp.array(logvar)), per.mean(),
                             rtol=1e-6)


def test_pool_and_upsample():
  x = jax.random.normal(jax.random.key(0), (2, 6, 4, 3))
  np.testing.assert_array_equal(max_pool2(x), nn.max_pool(x, (2, 2), (2, 2)))
  np.testing.assert_array_equal(upsample2(x), jnp.repeat(jnp.repeat(x, 2, 1), 2, 2))
  with pytest.raises(ValueError, match='even'):
    max_pool2(jnp.zeros((1, 5, 4, 1)))
