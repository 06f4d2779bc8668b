"""The CPU-tuned convolutions are the plain Flax/XLA layers: values,
gradients, parameters; whole models agree under either `conv_impl`."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from f2s import models
from f2s.models import cpu_conv
from f2s.models.cpu_conv import conv3x3, strided_conv
from f2s.models.layers import Conv3x3, FastConv3x3, upsample2


def _lax_conv(x, kernel):
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), 'SAME',
                                      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


def _loss_grads(conv, x, kernel, dy):
  return jax.grad(lambda x, k: jnp.sum(conv(x, k) * dy), argnums=(0, 1))(x, kernel)


def _abs(tree):
  return jax.tree.map(jnp.abs, tree)


# 3 -> 64 and 64 -> 128 take the x-patch weight gradient, 64 -> 3 and
# 64 -> 32 the dy-patch one, 5 -> 5 XLA's.
@pytest.mark.parametrize('cin,cout', [(3, 64), (64, 128), (64, 3), (64, 32),
                                      (5, 5)])
def test_conv3x3_matches_lax_conv_and_its_gradients(cin, cout, assert_sums_close):
  kx, kk, ky = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, (2, 7, 6, cin))
  kernel = jax.random.normal(kk, (3, 3, cin, cout))
  dy = jax.random.normal(ky, (2, 7, 6, cout))
  # Each output sums 9 cin products; the same convolution of the magnitudes
  # is their sum of |terms|. The gradients are linear in (x, kernel, dy)
  # too: dx sums 9 cout products, dkernel one per batch pixel.
  assert_sums_close(conv3x3(x, kernel), _lax_conv(x, kernel), terms=9 * cin,
                    abs_sum=_lax_conv(jnp.abs(x), jnp.abs(kernel)))
  got = jax.jit(lambda *a: _loss_grads(conv3x3, *a))(x, kernel, dy)
  want = _loss_grads(_lax_conv, x, kernel, dy)
  abs_sums = _loss_grads(_lax_conv, *_abs((x, kernel, dy)))
  for g, w, a, n in zip(got, want, abs_sums, (9 * cout, 2 * 7 * 6)):
    assert_sums_close(g, w, terms=n, abs_sum=a)


def _lax_strided(x, kernel, stride, padding):
  return jax.lax.conv_general_dilated(
      x, kernel, (stride, stride), padding,
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


# The discriminator's 4x4 stride-2 'SAME' conv on even and odd sizes (padding
# (1, 1) and (1, 2)), and a 3x3 stride-3 one.
@pytest.mark.parametrize('size,k,stride', [((8, 6), 4, 2), ((7, 9), 4, 2),
                                           ((9, 7), 3, 3)])
def test_strided_conv_matches_lax_conv_and_its_gradients(size, k, stride,
                                                         assert_sums_close):
  kx, kk, ky = jax.random.split(jax.random.key(1), 3)
  x = jax.random.normal(kx, (3, *size, 5))
  kernel = jax.random.normal(kk, (k, k, 5, 6))
  padding = tuple(jax.lax.padtype_to_pads(size, (k, k), (stride, stride),
                                          'SAME'))
  want = _lax_strided(x, kernel, stride, padding)
  assert_sums_close(strided_conv(x, kernel, stride, padding), want,
                    terms=k * k * 5,
                    abs_sum=_lax_strided(jnp.abs(x), jnp.abs(kernel), stride,
                                         padding))
  dy = jax.random.normal(ky, want.shape)

  def grads(conv, x, kernel, dy):
    return jax.grad(lambda x, w: jnp.sum(conv(x, w, stride, padding) * dy),
                    argnums=(0, 1))(x, kernel)

  got = jax.jit(lambda *a: grads(strided_conv, *a))(x, kernel, dy)
  abs_sums = grads(_lax_strided, *_abs((x, kernel, dy)))
  # An input pixel's gradient sums <= k * k * 6 products, a weight's one per
  # output pixel.
  for g, w, a, n in zip(got, grads(_lax_strided, x, kernel, dy), abs_sums,
                        (k * k * 6, dy[..., 0].size)):
    assert_sums_close(g, w, terms=n, abs_sum=a)


def test_conv_general_dilated_is_nn_conv_with_the_same_parameters(
    assert_sums_close):
  x = jax.random.normal(jax.random.key(2), (2, 10, 8, 3))
  fast = nn.Conv(7, (4, 4), strides=2,
                 conv_general_dilated=cpu_conv.conv_general_dilated)
  plain = nn.Conv(7, (4, 4), strides=2)
  params = fast.init(jax.random.key(3), x)
  jax.tree.map(np.testing.assert_array_equal, params,
               plain.init(jax.random.key(3), x))
  out = fast.apply(params, x)
  assert out.shape == (2, 5, 4, 7)
  assert_sums_close(out, plain.apply(params, x), terms=4 * 4 * 3 + 1,
                    abs_sum=plain.apply(_abs(params), jnp.abs(x)))


@pytest.mark.parametrize('conv', [
    nn.Conv(4, (3, 3), kernel_dilation=2),
    nn.Conv(4, (3, 3), feature_group_count=2),
    nn.Conv(4, (3, 3), strides=(1, 2)),
], ids=['dilated', 'grouped', 'unequal_strides'])
def test_conv_general_dilated_refuses_what_it_does_not_compute(conv):
  conv = conv.clone(conv_general_dilated=cpu_conv.conv_general_dilated)
  with pytest.raises(ValueError, match=r'input \(1, 8, 8, 4\)'):
    conv.init(jax.random.key(0), jnp.ones((1, 8, 8, 4)))


@pytest.mark.parametrize('upsample', [False, True])
def test_fast_conv_module_equals_xla_module(upsample, assert_sums_close):
  """Same parameters, outputs and gradients as `layers.Conv3x3`."""
  x = jax.random.normal(jax.random.key(3), (2, 5, 4, 3))
  fast, xla = FastConv3x3(7, upsample), Conv3x3(7, upsample)
  params = fast.init(jax.random.key(4), x)
  jax.tree.map(np.testing.assert_array_equal, params,
               xla.init(jax.random.key(4), x))
  params = jax.tree.map(lambda p: p + 0.1, params)  # non-zero bias too
  out = fast.apply(params, x)
  assert out.shape == ((2, 10, 8, 7) if upsample else (2, 5, 4, 7))
  # The longest sums: an output's 9 * 3 products and its bias; an input
  # pixel's gradient, 9 * 7 products from each of the (up to 4) output pixels
  # it reaches; the kernel's and bias', one per output pixel. The upsampling
  # conv folds up to 2 x 2 taps into one weight first: 2 more roundings.
  # The same functions of the magnitudes bound each sum of |terms|.
  terms = max(9 * 3 + 1, 4 * 9 * 7, out.size // 7) + 2
  abs_params, abs_x = _abs((params, x))
  assert_sums_close(out, xla.apply(params, x), terms=terms,
                    abs_sum=xla.apply(abs_params, abs_x))

  def grads(m, p, x, dy):
    return jax.grad(lambda p, x: jnp.sum(m.apply(p, x) * dy),
                    argnums=(0, 1))(p, x)

  dy = jax.random.normal(jax.random.key(5), out.shape)
  jax.tree.map(lambda g, w, a: assert_sums_close(g, w, terms=terms, abs_sum=a),
               grads(fast, params, x, dy), grads(xla, params, x, dy),
               grads(xla, abs_params, abs_x, jnp.abs(dy)))


def test_upsampling_xla_conv_is_nn_conv_of_upsampled_input(assert_sums_close):
  x = jax.random.normal(jax.random.key(1), (2, 6, 5, 4))
  ours, ref = Conv3x3(6, upsample=True), nn.Conv(6, (3, 3))
  params = ours.init(jax.random.key(2), x)
  jax.tree.map(np.testing.assert_array_equal, params,
               ref.init(jax.random.key(2), upsample2(x)))
  # 9 * 4 products and the bias, up to 2 x 2 taps folded first.
  assert_sums_close(ours.apply(params, x), ref.apply(params, upsample2(x)),
                    terms=9 * 4 + 1 + 2,
                    abs_sum=ref.apply(_abs(params), upsample2(jnp.abs(x))))


def test_casq_under_both_conv_impls_is_one_function(as_float64):
  """A checkpoint of either implementation loads into the other and gives
  the same outputs and gradients (the residual variant: every conv kind)."""
  def build(impl):
    config = models.default_config('casq', 'default')
    config.update(features=(4, 4), decoder_features=(4, 4), num_groups=2,
                  bottleneck_blocks=1, embedding_dim=4, num_embeddings=8,
                  conv_impl=impl)
    return models.build_model(config, (16, 12, 3))

  fast, xla = build('cpu_fast'), build('xla')
  photo = jax.random.uniform(jax.random.key(6), (2, 16, 12, 3))
  rngs = {'params': jax.random.key(7), 'codebook': jax.random.key(8)}
  variables = jax.jit(fast.init)(rngs, photo)
  jax.tree.map(np.testing.assert_array_equal, variables,
               jax.jit(xla.init)(rngs, photo))
  # In float64: the two implementations sum each convolution in other orders,
  # and through a dozen layers (normalisations, attention's softmax, the
  # quantizer's straight-through) float32's differences reached 1e-5 of a
  # gradient. float64's unit roundoff is 2^29 ~ 5e8 times smaller, so the same
  # amplification stays below 1e-9 of the largest value, and a different
  # function would be off by far more.
  with jax.enable_x64(True):
    variables, photo = as_float64((variables, photo))

    def loss(params, model):
      logits, aux = model.apply({**variables, 'params': params}, photo)
      return jnp.mean(jax.nn.sigmoid(logits)) + aux['vq_loss']

    (la, ga), (lb, gb) = (
        jax.jit(jax.value_and_grad(loss), static_argnums=1)(variables['params'], m)
        for m in (fast, xla))
    assert la.dtype == jnp.float64
    np.testing.assert_allclose(la, lb, rtol=1e-9)
    largest = max(float(jnp.abs(g).max()) for g in jax.tree.leaves(gb))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(
        a, b, rtol=0, atol=1e-9 * largest), ga, gb)


def test_unknown_conv_impl_is_named():
  config = models.default_config('dae', 'conv')
  config.conv_impl = 'cuda'
  model = models.build_model(config, (16, 16, 1))
  with pytest.raises(ValueError, match="conv_impl='cuda'"):
    model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)))
