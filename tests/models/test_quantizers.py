"""Vector quantizers: shapes, straight-through gradients, losses, EMA update vs
NumPy, dead codes, and the data-parallel EMA update on two devices."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, PartitionSpec as P

from f2s.models import VectorQuantizer, VectorQuantizerEMA

K, D, BETA, DECAY, EPS = 6, 3, 0.25, 0.9, 1e-5


def _z(seed, shape=(2, 4, 5, D)):
  return jax.random.normal(jax.random.key(seed), shape)


def _init(vq, z):
  return vq.init({'params': jax.random.key(0)}, z)


@pytest.mark.parametrize('cls', [VectorQuantizer, VectorQuantizerEMA])
def test_straight_through_identity_and_exact_codes(cls):
  vq = cls(K, D, BETA, DECAY) if cls is VectorQuantizerEMA else cls(K, D, BETA)
  z = _z(1)
  variables = _init(vq, z)
  out, vjp = jax.vjp(lambda z: vq.apply(variables, z).quantize, z)
  cot = jax.random.normal(jax.random.key(2), z.shape)
  np.testing.assert_array_equal(vjp(cot)[0], cot)
  codebook = (variables['params'] if cls is VectorQuantizer else variables['vq_ema'])['embeddings']
  res = vq.apply(variables, z)
  np.testing.assert_array_equal(out, codebook.T[res.encoding_indices])
  # The chosen code is the nearest one.
  dist = ((np.asarray(z)[..., None, :] - np.asarray(codebook).T)**2).sum(-1)
  np.testing.assert_array_equal(res.encoding_indices, dist.argmin(-1))


@pytest.mark.parametrize('cls', [VectorQuantizer, VectorQuantizerEMA])
def test_commitment_gradient(cls):
  vq = cls(K, D, BETA, DECAY) if cls is VectorQuantizerEMA else cls(K, D, BETA)
  z = _z(3)
  variables = _init(vq, z)
  g = jax.grad(lambda z: vq.apply(variables, z).loss)(z)
  q = vq.apply(variables, z).codes
  np.testing.assert_allclose(g, 2 * BETA * (z - q) / z.size, rtol=1e-5, atol=1e-9)


def test_ema_codebook_gets_no_gradient_and_is_not_a_param():
  vq = VectorQuantizerEMA(K, D, BETA, DECAY)
  z = _z(4)
  variables = _init(vq, z)
  assert 'params' not in variables
  cot = jax.random.normal(jax.random.key(5), z.shape)

  def f(state):
    out = vq.apply({'vq_ema': state}, z)
    return out.loss + jnp.sum(out.quantize * cot)

  grads = jax.grad(f, allow_int=True)(variables['vq_ema'])
  assert all(not np.any(np.asarray(g)) for g in jax.tree.leaves(grads)
             if jnp.issubdtype(g.dtype, jnp.floating))


def test_plain_codebook_gets_codebook_loss_gradient():
  vq = VectorQuantizer(K, D, BETA)
  z = _z(6)
  params = _init(vq, z)['params']
  cot = jax.random.normal(jax.random.key(7), z.shape)

  def f(p):
    out = vq.apply({'params': p}, z)
    return out.loss + jnp.sum(out.quantize * cot)  # quantize must not reach the codebook

  g = np.asarray(jax.grad(f)(params)['embeddings'])
  emb = np.asarray(params['embeddings'])
  flat = np.asarray(z).reshape(-1, D)
  idx = ((flat[:, None, :] - emb.T)**2).sum(-1).argmin(-1)
  ref = np.zeros_like(emb)
  for n, k in enumerate(idx):
    ref[:, k] += 2 * (emb[:, k] - flat[n]) / flat.size
  np.testing.assert_allclose(g, ref, rtol=1e-5, atol=1e-8)


def _numpy_ema_reference(emb0, batches, decay, eps):
  """Sonnet's VectorQuantizerEMA update in float64 NumPy (hidden starts at 0)."""
  emb = emb0.astype(np.float64)
  k = emb.shape[1]
  cs_h, dw_h, count = np.zeros(k), np.zeros_like(emb), 0
  history = []
  for z in batches:
    flat = z.reshape(-1, emb.shape[0]).astype(np.float64)
    idx = ((flat[:, None, :] - emb.T[None])**2).sum(-1).argmin(-1)
    onehot = np.eye(k)[idx]
    count += 1
    cs_h = cs_h - (cs_h - onehot.sum(0)) * (1 - decay)
    dw_h = dw_h - (dw_h - flat.T @ onehot) * (1 - decay)
    cs = cs_h / (1 - decay**count)
    dw = dw_h / (1 - decay**count)
    n = cs.sum()
    cs = (cs + eps) / (n + k * eps) * n
    emb = dw / cs[None]
    history.append(dict(embeddings=emb, ema_cluster_size=cs_h, ema_dw=dw_h, counter=count))
  return history


def test_ema_update_matches_numpy_and_eval_is_frozen():
  vq = VectorQuantizerEMA(K, D, BETA, DECAY, EPS)
  batches = [_z(10), _z(11) * 0.5 + 0.2]
  state = _init(vq, batches[0])
  # init (even with train=True) does not update the statistics.
  init_train = vq.init({'params': jax.random.key(0)}, batches[0], train=True)
  np.testing.assert_array_equal(init_train['vq_ema']['ema_cluster_size'], 0)
  ref = _numpy_ema_reference(np.asarray(state['vq_ema']['embeddings']),
                             [np.asarray(b) for b in batches], DECAY, EPS)
  for z, r in zip(batches, ref):
    frozen, st = vq.apply(state, z, train=False, mutable=['vq_ema'])
    jax.tree.map(np.testing.assert_array_equal, st, state)
    out, state = vq.apply(state, z, train=True, mutable=['vq_ema'])
    s = state['vq_ema']
    np.testing.assert_allclose(s['embeddings'], r['embeddings'], atol=1e-6, rtol=1e-6)
    np.testing.assert_allclose(s['ema_cluster_size'], r['ema_cluster_size'], atol=1e-6)
    np.testing.assert_allclose(s['ema_dw'], r['ema_dw'], atol=1e-6)
    assert int(s['ema_cluster_size_counter']) == int(s['ema_dw_counter']) == r['counter']
    np.testing.assert_array_equal(frozen.quantize, out.quantize)  # output from old codebook


def test_perplexity_and_usage():
  vq = VectorQuantizerEMA(4, 2, BETA, DECAY)
  emb = jnp.array([[0., 10., 20., 30.], [0., 0., 0., 0.]])
  z = jnp.array([[0., 0.], [0.1, 0.], [10., 0.], [20.2, 0.]])
  out = vq.apply({'vq_ema': {**_init(vq, z)['vq_ema'], 'embeddings': emb}}, z)
  np.testing.assert_array_equal(out.encoding_indices, [0, 0, 1, 2])
  p = np.array([0.5, 0.25, 0.25])
  np.testing.assert_allclose(out.perplexity, np.exp(-(p * np.log(p)).sum()), rtol=1e-6)
  np.testing.assert_allclose(out.code_usage, 0.75)


def test_dead_code_reinitialised_after_configured_steps():
  steps = 3
  vq = VectorQuantizerEMA(4, 2, BETA, DECAY, EPS, dead_code_steps=steps)
  centres = np.array([[5., 5.], [-5., 5.], [5., -5.]])
  noise = np.random.default_rng(0).normal(scale=0.1, size=(3, 4, 2))
  z = jnp.asarray((centres[:, None, :] + noise).reshape(-1, 2), jnp.float32)
  state = _init(vq, z)
  state = {'vq_ema': {**state['vq_ema'],
                      'embeddings': jnp.asarray(np.c_[centres.T, [100., 100.]], jnp.float32)}}
  rng = {'codebook': jax.random.key(3)}
  for step in range(1, steps + 1):
    prev = state
    out, state = vq.apply(state, z, train=True, mutable=['vq_ema'], rngs=rng)
    emb = np.asarray(state['vq_ema']['embeddings'])
    assert 3 not in np.asarray(out.encoding_indices)
    if step < steps:
      assert int(out.codes_reset) == 0
      assert int(state['vq_ema']['steps_unused'][3]) == step
      assert not np.any(np.all(np.isclose(np.asarray(z), emb[:, 3]), axis=1))
  assert int(out.codes_reset) == 1
  assert int(state['vq_ema']['steps_unused'][3]) == 0
  assert np.any(np.all(np.asarray(z) == emb[:, 3], axis=1))  # an encoder output of the batch
  # The live codes got the ordinary EMA update, unaffected by the reset.
  _, no_reset = VectorQuantizerEMA(4, 2, BETA, DECAY, EPS).apply(
      {'vq_ema': {k: v for k, v in prev['vq_ema'].items() if k != 'steps_unused'}}, z,
      train=True, mutable=['vq_ema'])
  np.testing.assert_array_equal(emb[:, :3], no_reset['vq_ema']['embeddings'][:, :3])
  # Deterministic given the 'codebook' key; the re-initialised code stays put while unused.
  _, again = vq.apply(prev, z, train=True, mutable=['vq_ema'], rngs=rng)
  np.testing.assert_array_equal(again['vq_ema']['embeddings'], emb)
  far = jnp.asarray(centres[[0, 2]], jnp.float32)  # a batch that leaves code 3 unused
  out, later = vq.apply(state, far, train=True, mutable=['vq_ema'], rngs=rng)
  assert 3 not in np.asarray(out.encoding_indices)
  np.testing.assert_allclose(later['vq_ema']['embeddings'][:, 3], emb[:, 3], rtol=1e-4)


def test_quantizer_shapes():
  for batch in (1, 2):
    x = jax.ShapeDtypeStruct((batch, 25, 25, 16), jnp.float32)
    vq = VectorQuantizerEMA(128, 16, 0.25, 0.99, dead_code_steps=5)
    v = jax.eval_shape(lambda x: vq.init({'params': jax.random.key(0)}, x), x)
    out, _ = jax.eval_shape(
        lambda v, x: vq.apply(v, x, train=True, rngs={'codebook': jax.random.key(1)},
                              mutable=['vq_ema']), v, x)
    assert out.quantize.shape == x.shape and out.quantize.dtype == jnp.float32
    assert out.encoding_indices.shape == (batch, 25, 25)
    assert out.encoding_indices.dtype == jnp.int32


def test_input_of_the_wrong_width_is_named():
  with pytest.raises(ValueError, match='embedding_dim=16'):
    VectorQuantizerEMA(8, 16, 0.25, 0.99).init(jax.random.key(0), jnp.zeros((2, 4, 4, 8)))


def test_data_parallel_codebook_matches_single_device():
  """The psum-ed update on two devices equals the single-device update on
  the whole batch; dead_code_steps=1 resets every unused code each step, so
  the re-initialisation must also agree across replicas."""
  mesh = Mesh(np.array(jax.devices()), ('d',))
  assert mesh.size == 2
  kw = dict(num_embeddings=16, embedding_dim=4, commitment_cost=0.25,
            decay=0.9, dead_code_steps=1)
  single, dp = VectorQuantizerEMA(**kw), VectorQuantizerEMA(**kw, axis_name='d')
  # Inputs on a 1/16 grid below 8 in magnitude: every partial sum of the 36
  # vectors is exact in float32, so psum's order cannot change the counts
  # and sums. What is left is the elementwise EMA update compiled in two
  # programs, a few roundings of relative 2^-24 each: rtol 1e-6 is 16 of them.
  batches = [jnp.round(16 * jax.random.normal(jax.random.key(s), (4, 3, 3, 4)))
             / 16 for s in (1, 2, 3)]
  state0 = single.init({'params': jax.random.key(0)}, batches[0])

  def dp_step(state, z, key):
    out, new = dp.apply(state, z, train=True, mutable=['vq_ema'],
                        rngs={'codebook': key})
    return new, out.quantize

  dp_step = jax.jit(jax.shard_map(dp_step, mesh=mesh, in_specs=(P(), P('d'), P()),
                                  out_specs=(P(), P('d'))))
  s_state, d_state = state0, state0
  resets = 0
  for i, z in enumerate(batches):
    key = jax.random.key(10 + i)
    out, s_state = single.apply(s_state, z, train=True, mutable=['vq_ema'],
                                rngs={'codebook': key})
    resets += int(out.codes_reset)
    d_state, dq = dp_step(d_state, z, key)
    np.testing.assert_allclose(dq, out.quantize, rtol=1e-6, atol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6),
                 d_state, s_state)
  assert resets > 0, 'the test should exercise dead-code resets'
