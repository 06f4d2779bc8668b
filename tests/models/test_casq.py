"""CASQ: the output contract, the EMA codebook as state, the paper's sizes,
quantizer choices, bad inputs, and a data-parallel forward pass."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, PartitionSpec as P

from f2s.models import CASQ, VARIANTS, build_model, default_config

CASQ_AUX = {'vq_loss', 'perplexity', 'code_usage', 'codes_reset'}


def _tiny(quantizer='ema'):
  cfg = default_config('casq', 'default')
  cfg.features, cfg.decoder_features = (8, 8, 8), (8, 8, 8)
  cfg.embedding_dim, cfg.num_embeddings, cfg.bottleneck_blocks = 8, 16, 1
  cfg.quantizer = quantizer
  return cfg


def _init(model, make_rngs, shape):
  return jax.eval_shape(lambda x: model.init(make_rngs(), x, train=False),
                        jax.ShapeDtypeStruct(shape, jnp.float32))


@pytest.mark.parametrize('variant', VARIANTS['casq'])
def test_casq_contract(check_contract, variant, io_shapes, batch):
  check_contract('casq', variant, io_shapes, batch, aux_keys=CASQ_AUX,
                 state=['vq_ema'])


def test_casq_state_not_in_params(make_rngs):
  model = build_model(default_config('casq', 'paper'), (200, 200, 3))
  variables = _init(model, make_rngs, (1, 200, 200, 3))
  assert 'vq' not in variables['params']
  assert set(variables['vq_ema']['vq']) == {
      'embeddings', 'ema_cluster_size', 'ema_cluster_size_counter', 'ema_dw',
      'ema_dw_counter', 'steps_unused'}
  assert variables['vq_ema']['vq']['embeddings'].shape == (32, 128)


def test_casq_paper_sizes(make_rngs):
  casq = build_model(default_config('casq', 'paper'), (200, 200, 3))
  enc = _init(casq, make_rngs, (1, 200, 200, 3))
  kernels = [enc['params']['encoder'][f'block{i}']['conv']['kernel'].shape for i in range(3)]
  assert kernels == [(3, 3, 3, 64), (3, 3, 64, 32), (3, 3, 32, 16)]
  assert enc['params']['pre_vq']['kernel'].shape == (1, 1, 16, 32)


@pytest.mark.parametrize('quantizer,aux', [('plain', CASQ_AUX),
                                           ('none', set())])
def test_other_quantizers(make_rngs, quantizer, aux):
  model = build_model(_tiny(quantizer), (16, 16, 1))
  variables = _init(model, make_rngs, (2, 16, 16, 3))
  assert list(variables) == ['params']
  assert ('vq' in variables['params']) == (quantizer == 'plain')
  logits, got = jax.eval_shape(
      lambda v, x: model.apply(v, x, train=True, rngs=make_rngs()),
      variables, jax.ShapeDtypeStruct((2, 16, 16, 3), jnp.float32))
  assert logits.shape == (2, 16, 16, 1) and set(got) == aux


def test_bad_knobs_are_named(make_rngs):
  cfg = _tiny('gumbel')
  with pytest.raises(ValueError, match="unknown quantizer 'gumbel'"):
    _init(build_model(cfg, (16, 16, 1)), make_rngs, (1, 16, 16, 3))
  cfg = _tiny()
  cfg.decoder_features = (8, 8)
  with pytest.raises(ValueError, match=r'decoder_features \(8, 8\) must have'):
    _init(build_model(cfg, (16, 16, 1)), make_rngs, (1, 16, 16, 3))


def test_bad_inputs(make_rngs):
  model = build_model(default_config('casq', 'paper'), (200, 200, 3))
  with pytest.raises(ValueError, match='divisible by 8'):
    _init(build_model(default_config('casq', 'paper'), (204, 200, 3)),
          make_rngs, (1, 204, 200, 3))
  with pytest.raises(ValueError, match='differs from out_shape'):
    _init(model, make_rngs, (1, 256, 208, 3))
  with pytest.raises(ValueError, match=r'\(B, H, W, 3\)'):
    _init(model, make_rngs, (1, 200, 200, 1))


def test_casq_runs_data_parallel_under_shard_map(make_rngs):
  """With axis_name, the model compiles under shard_map on two devices and
  updates its one replicated codebook once per step."""
  mesh = Mesh(np.array(jax.devices()), ('d',))
  assert mesh.size == 2
  model = build_model(_tiny(), (16, 16, 1), axis_name='d')
  x = jax.random.uniform(jax.random.key(5), (2, 16, 16, 3))
  rngs = make_rngs()
  variables = jax.jit(model.init)(rngs, x)

  def fwd(v, x):
    (logits, _), new = model.apply(v, x, train=True, rngs=rngs,
                                   mutable=['vq_ema'])
    return logits, new

  logits, new = jax.jit(jax.shard_map(fwd, mesh=mesh, in_specs=(P(), P('d')),
                                      out_specs=(P('d'), P())))(variables, x)
  assert logits.shape == (2, 16, 16, 1)
  assert int(new['vq_ema']['vq']['ema_dw_counter']) == 1


def test_skip_connections_feed_each_decoder_stage(make_rngs):
  """With skips every decoder stage's next conv sees its own features plus
  the encoder's of that resolution; without, only its own."""
  def first_kernels(skips):
    model = CASQ(out_shape=(32, 32, 1), features=(8, 16), decoder_features=(
        16, 8), block='plain', num_groups=0, bottleneck_blocks=0,
        attention=False, embedding_dim=4, num_embeddings=8, quantizer='none',
        commitment_cost=0.25, decay=0.99, epsilon=1e-5, dead_code_steps=0,
        skip_connections=skips)
    variables = model.init(make_rngs(0), jnp.ones((1, 32, 32, 3)))
    decoder = variables['params']['decoder']
    logits, _ = model.apply(variables, jnp.ones((2, 32, 32, 3)))
    assert logits.shape == (2, 32, 32, 1)
    return (decoder['block1']['conv']['kernel'].shape[2],
            decoder['head']['kernel'].shape[2])

  assert first_kernels(False) == (16, 8)
  assert first_kernels(True) == (16 + 16, 8 + 8)


def test_decoder_refuses_a_wrong_number_of_skips():
  from f2s.models.layers import ConvDecoder
  decoder = ConvDecoder(features=(8, 8), out_channels=1)
  with pytest.raises(ValueError, match='1 skips for 2 stages'):
    decoder.init(jax.random.PRNGKey(0), jnp.ones((1, 4, 4, 8)),
                 [jnp.ones((1, 16, 16, 8))])
