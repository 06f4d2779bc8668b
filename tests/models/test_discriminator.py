"""The PatchGAN discriminator: patch grid shape, spectral norm, bad input;
the multi-scale stack of them."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from f2s.models.discriminator import (SPECTRAL_COLLECTION,
                                     MultiScaleDiscriminator,
                                     PatchDiscriminator)


def test_one_logit_per_patch_and_spectral_state():
  disc = PatchDiscriminator(features=(8, 16, 32))
  photo = jnp.ones((2, 64, 48, 3))
  sketch = jnp.ones((2, 64, 48, 1))
  variables = disc.init(jax.random.PRNGKey(0), photo, sketch)
  logits = disc.apply(variables, photo, sketch)
  assert logits.shape == (2, 8, 6, 1)  # three stride-2 stages
  assert set(variables[SPECTRAL_COLLECTION]) == {'sn0', 'sn1', 'sn2',
                                                  'sn_logits'}
  same, features = disc.apply(variables, photo, sketch, return_features=True)
  np.testing.assert_array_equal(same, logits)
  assert [f.shape for f in features] == [(2, 32, 24, 8), (2, 16, 12, 16),
                                         (2, 8, 6, 32)]


def test_spectral_norm_bounds_each_layer():
  """After power iterations every normalised kernel has spectral norm ~1."""
  disc = PatchDiscriminator(features=(8, 16))
  photo = jax.random.normal(jax.random.PRNGKey(1), (2, 32, 32, 3))
  sketch = jax.random.uniform(jax.random.PRNGKey(2), (2, 32, 32, 1))
  variables = disc.init(jax.random.PRNGKey(0), photo, sketch)
  for _ in range(30):
    _, stats = disc.apply(variables, photo, sketch, update_stats=True,
                          mutable=[SPECTRAL_COLLECTION])
    variables = {**variables, **stats}
  for name, layer in variables['params'].items():
    kernel = np.asarray(layer['kernel']).reshape(-1, layer['kernel'].shape[-1])
    sigma = np.asarray(variables[SPECTRAL_COLLECTION][
        f'sn{name[4:]}' if name.startswith('conv') else 'sn_logits'][
            f'{name}/kernel/sigma'])
    np.testing.assert_allclose(sigma, np.linalg.norm(kernel, 2), rtol=1e-3)


def test_photo_and_sketch_of_different_sizes_are_refused():
  disc = PatchDiscriminator(features=(8,))
  with pytest.raises(ValueError, match='differ in batch or spatial size'):
    disc.init(jax.random.PRNGKey(0), jnp.ones((1, 32, 32, 3)),
              jnp.ones((1, 16, 16, 1)))


def test_without_spectral_norm_it_is_the_plain_convs():
  """spectral_norm=False: the same parameters, no power-iteration state,
  and logits equal to the convs applied by hand."""
  photo = jax.random.normal(jax.random.PRNGKey(1), (2, 32, 32, 3))
  sketch = jax.random.uniform(jax.random.PRNGKey(2), (2, 32, 32, 1))
  plain = PatchDiscriminator(features=(8, 16), spectral_norm=False)
  variables = plain.init(jax.random.PRNGKey(0), photo, sketch)
  assert set(variables) == {'params'}
  normalised = PatchDiscriminator(features=(8, 16)).init(
      jax.random.PRNGKey(0), photo, sketch)
  assert (jax.tree.map(jnp.shape, variables['params'])
          == jax.tree.map(jnp.shape, normalised['params']))
  params = variables['params']
  x = jnp.concatenate([photo, sketch], axis=-1)

  def conv(x, layer, stride):
    y = jax.lax.conv_general_dilated(
        x, layer['kernel'], (stride, stride), 'SAME',
        dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
        precision=jax.lax.Precision.HIGHEST)
    return y + layer['bias']

  for i in range(2):
    x = jax.nn.leaky_relu(conv(x, params[f'conv{i}'], 2), 0.2)
  expected = conv(x, params['logits'], 1)
  logits, stats = plain.apply(variables, photo, sketch, update_stats=True,
                              mutable=[SPECTRAL_COLLECTION])
  assert not stats
  # float32 sums of <= 4*4*16 = 256 products in another order: typically
  # sqrt(256) 2^-24 ~ 1e-6 of the sum; 1e-5 leaves 10x.
  np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)


def test_multi_scale_is_patch_discriminators_on_halved_pairs():
  """Scale k is a PatchDiscriminator with its own parameters on the pair
  mean-pooled k times (3x3 windows, stride 2, the padding not counted)."""
  photo = jax.random.normal(jax.random.PRNGKey(1), (2, 32, 24, 3))
  sketch = jax.random.uniform(jax.random.PRNGKey(2), (2, 32, 24, 1))
  disc = MultiScaleDiscriminator(features=(8, 16), scales=2)
  variables = disc.init(jax.random.PRNGKey(0), photo, sketch)
  assert set(variables['params']) == {'scale0', 'scale1'}
  (fine, coarse), features = disc.apply(variables, photo, sketch,
                                        return_features=True)
  assert fine.shape == (2, 8, 6, 1) and coarse.shape == (2, 4, 3, 1)
  assert len(features) == 4

  def halve(x):  # by hand: window sums over counts of the pixels inside
    pad = ((0, 0), (1, 1), (1, 1), (0, 0))
    window, strides = (1, 3, 3, 1), (1, 2, 2, 1)
    total = jax.lax.reduce_window(jnp.pad(x, pad), 0., jax.lax.add, window,
                                  strides, 'VALID')
    count = jax.lax.reduce_window(jnp.pad(jnp.ones_like(x), pad), 0.,
                                  jax.lax.add, window, strides, 'VALID')
    return total / count

  single = PatchDiscriminator(features=(8, 16))
  for k, grid in enumerate((fine, coarse)):
    scale = {c: v[f'scale{k}'] for c, v in variables.items()}
    # The pooled inputs may differ by float32 rounding (sums of 9 in
    # another order), carried through two convs of <= 4*4*8 products.
    np.testing.assert_allclose(single.apply(scale, photo, sketch), grid,
                               rtol=1e-5, atol=1e-5)
    photo, sketch = halve(photo), halve(sketch)
  # update_stats reaches every scale's power iteration.
  _, stats = disc.apply(variables, jnp.ones((2, 32, 24, 3)),
                        jnp.ones((2, 32, 24, 1)), update_stats=True,
                        mutable=[SPECTRAL_COLLECTION])
  for k in range(2):
    assert any(np.abs(np.asarray(a) - np.asarray(b)).max() > 0 for a, b in zip(
        jax.tree.leaves(stats[SPECTRAL_COLLECTION][f'scale{k}']),
        jax.tree.leaves(variables[SPECTRAL_COLLECTION][f'scale{k}'])))


@pytest.mark.parametrize('scales', [1, 2])
def test_cpu_convs_are_the_same_discriminator(scales, as_float64):
  """conv_impl='cpu_fast' (stride-2 convs by cpu_conv.strided_conv) and 'xla':
  the same parameters, logits and gradients (compared in float64, where the
  two summation orders agree far below any real difference)."""
  photo = jax.random.normal(jax.random.PRNGKey(1), (2, 32, 24, 3))
  sketch = jax.random.uniform(jax.random.PRNGKey(2), (2, 32, 24, 1))

  def build(impl):
    if scales == 1:
      return PatchDiscriminator(features=(8, 16), conv_impl=impl)
    return MultiScaleDiscriminator(features=(8, 16), scales=scales,
                                   conv_impl=impl)

  fast, xla = build('cpu_fast'), build('xla')
  variables = fast.init(jax.random.PRNGKey(0), photo, sketch)
  jax.tree.map(np.testing.assert_array_equal, variables,
               xla.init(jax.random.PRNGKey(0), photo, sketch))
  with jax.enable_x64(True):
    variables, photo, sketch = as_float64((variables, photo, sketch))

    def loss(params, photo, sketch, disc):
      logits = disc.apply({**variables, 'params': params}, photo, sketch)
      return sum(jnp.sum(jnp.tanh(l)) for l in jax.tree.leaves(logits))

    grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 2)), static_argnums=3)
    (la, ga), (lb, gb) = (grad(variables['params'], photo, sketch, d)
                          for d in (fast, xla))
    # float64's unit roundoff is 2^-53 ~ 1.1e-16 and each sum here has at
    # most 2 * 16 * 12 = 384 products (a weight's gradient over conv0's
    # output pixels), so two summation orders differ by < 2 * 384 * 1.1e-16
    # ~ 1e-13 of a sum's |terms| per layer; 1e-12 of the largest value leaves
    # a factor 10 for those sums and the three layers, while another function
    # would be off by far more.
    np.testing.assert_allclose(la, lb, rtol=1e-12)
    largest = max(float(jnp.abs(g).max()) for g in jax.tree.leaves(gb))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(
        a, b, rtol=0, atol=1e-12 * largest), ga, gb)


def test_r1_penalty_differentiates_through_the_cpu_convs(as_float64):
  """The R1 penalty's gradient in the parameters (a gradient of a gradient,
  through cpu_conv's custom_vjp rules) equals XLA's convolutions', in
  float64 as above."""
  from f2s.training import losses
  photo = jax.random.normal(jax.random.PRNGKey(1), (2, 32, 24, 3))
  sketch = jax.random.uniform(jax.random.PRNGKey(2), (2, 32, 24, 1))
  fast, xla = (PatchDiscriminator(features=(8, 16), spectral_norm=False,
                                  conv_impl=impl) for impl in ('cpu_fast', 'xla'))
  variables = fast.init(jax.random.PRNGKey(0), photo, sketch)
  with jax.enable_x64(True):
    variables, photo, sketch = as_float64((variables, photo, sketch))

    def r1(params, disc):
      return losses.r1_penalty(
          lambda s: disc.apply({**variables, 'params': params}, photo, s),
          sketch)

    grad = jax.jit(jax.value_and_grad(r1), static_argnums=1)
    (va, ga), (vb, gb) = (grad(variables['params'], d) for d in (fast, xla))
    assert float(vb) > 0
    # As the test above, with the gradient of a gradient chaining about
    # twice its sums (each of at most 384 products, so < 1e-13 of a sum's
    # |terms| apiece): < 6e-13, inside 1e-12.
    np.testing.assert_allclose(va, vb, rtol=1e-12)
    largest = max(float(jnp.abs(g).max()) for g in jax.tree.leaves(gb))
    assert largest > 0
    jax.tree.map(lambda a, b: np.testing.assert_allclose(
        a, b, rtol=0, atol=1e-12 * largest), ga, gb)
