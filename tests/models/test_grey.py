"""GreyOutput: one drawn channel repeated to the sketch's channels, and
GreyInput: the photo's luma alone, for every model through
`config.model.grey_output` / `grey_input`."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from f2s import config_lib
from f2s.models import GreyInput, GreyOutput, build_model, default_config


@pytest.mark.parametrize('name,variant', [('dae', 'paper'),
                                          ('casq', 'gan')])
def test_grey_output_repeats_one_channel(name, variant, make_rngs):
  config = default_config(name, variant)
  config.update(config_lib.TINY_MODELS[(name, variant)], grey_output=True)
  model = build_model(config, (32, 32, 3))
  assert isinstance(model, GreyOutput) and model.model.out_shape == (32, 32, 1)
  photo = jax.random.uniform(jax.random.key(3), (2, 32, 32, 3))
  variables = jax.jit(model.init)(make_rngs(), photo)
  logits, _ = jax.jit(model.apply)(variables, photo, rngs=make_rngs(1))
  assert logits.shape == (2, 32, 32, 3)
  assert jnp.array_equal(logits[..., :1], logits[..., 1:2])
  assert jnp.array_equal(logits[..., :1], logits[..., 2:])
  # One head channel: the wrapped model's last conv has one output.
  heads = [x for path, x in jax.tree_util.tree_leaves_with_path(variables['params'])
           if 'head' in jax.tree_util.keystr(path) and x.ndim == 4]
  assert all(h.shape[-1] == 1 for h in heads)


def test_grey_output_gradient_sums_the_channels(make_rngs, as_float64):
  """The loss of the three repeated channels reaches the one drawn channel:
  the gradient equals three times a one-channel target's.

  In float64: the two gradients are the same sums taken in different orders
  (XLA may sum the three channels before or after the dense layers' matmuls),
  and in float32 their rounding differences, amplified through the network,
  reached the sixth digit on an AMD CPU. Summing n <= 10^4 terms (the widest
  layer) in float64 is exact to n 2^-53 ~ 1e-12 of the sum of magnitudes, so
  1e-9 of the largest gradient leaves a thousandfold for that amplification
  while a missing or doubled channel would be off by a third of it."""
  config = default_config('dae', 'paper')
  grey, single = dict(config), dict(config)
  grey['grey_output'] = True
  model3 = build_model(type(config)(grey), (16, 16, 3))
  model1 = build_model(type(config)(single), (16, 16, 1))
  with jax.enable_x64(True):
    photo = jax.random.uniform(jax.random.key(0), (2, 16, 16, 3), jnp.float64)
    target = jax.random.uniform(jax.random.key(1), (2, 16, 16, 1), jnp.float64)
    params1 = as_float64(model1.init(make_rngs(), photo)['params'])
    params3 = {'model': params1}

    def loss(model, params, t):
      return jnp.sum((model.apply({'params': params}, photo)[0] - t) ** 2)

    g1 = jax.grad(lambda p: loss(model1, p, target))(params1)
    g3 = jax.grad(lambda p: loss(model3, p, jnp.repeat(target, 3, -1)))(params3)
    assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(g3))
    largest = max(float(jnp.abs(g).max()) for g in jax.tree.leaves(g1))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(
        3 * a, b, rtol=0, atol=1e-9 * 3 * largest), g1, g3['model'])


def test_grey_output_rejects_a_multichannel_model(make_rngs):
  class Colour(nn.Module):
    @nn.compact
    def __call__(self, photo):
      return nn.Conv(3, (1, 1))(photo), {}

  with pytest.raises(ValueError, match='draws 3 channels, expected 1'):
    GreyOutput(Colour(), channels=3).init(make_rngs(), jnp.zeros((1, 4, 4, 3)))


def test_grey_output_is_listed_among_allowed_knobs():
  config = default_config('casq', 'paper')
  config.colour = 1
  with pytest.raises(ValueError, match="allowed: .*'grey_output'"):
    build_model(config, (200, 200, 3))


def _tiny_casq_gan(**knobs):
  config = default_config('casq', 'gan')
  config.update(config_lib.TINY_MODELS[('casq', 'gan')], **knobs)
  return build_model(config, (32, 32, 1))


def test_grey_input_sees_only_the_luma(make_rngs):
  """A colour change that keeps every pixel's ITU-R 601 luma leaves the
  sketch as it is; without grey_input the same change moves it.

  The two photos' lumas agree to float32 rounding (one ulp, 6e-8), which the
  network's normalisations amplified to 1.7e-6 on an AMD CPU: 1e-5 is that
  with room for another CPU's rounding, and 100x below the 1e-3 by which
  the colour model moves."""
  photo = jax.random.uniform(jax.random.key(3), (2, 32, 32, 3),
                             minval=0.2, maxval=0.8)
  # Orthogonal to the luma weights: (0.587, -0.299, 0) . LUMA = 0.
  shift = 0.1 * jnp.array([0.587, -0.299, 0.0])
  recoloured = photo + shift
  grey = _tiny_casq_gan(grey_input=True)
  assert isinstance(grey, GreyInput)
  variables = grey.init(make_rngs(), photo)
  logits = grey.apply(variables, photo, rngs=make_rngs(1))[0]
  np.testing.assert_allclose(
      grey.apply(variables, recoloured, rngs=make_rngs(1))[0], logits,
      atol=1e-5)
  # The same parameters in the model without the wrapper: colour counts.
  colour = _tiny_casq_gan()
  inner = {k: v['model'] for k, v in variables.items()}
  moved = colour.apply(inner, recoloured, rngs=make_rngs(1))[0]
  assert float(jnp.abs(moved - logits).max()) > 1e-3
  # ... and on the photo's luma repeated it is the wrapped model itself.
  luma = np.asarray(photo, np.float64) @ np.array([0.299, 0.587, 0.114])
  as_grey = jnp.asarray(np.repeat(luma[..., None], 3, -1), jnp.float32)
  np.testing.assert_allclose(colour.apply(inner, as_grey, rngs=make_rngs(1))[0],
                             logits, atol=1e-5)


def test_grey_input_rejects_a_photo_that_is_not_rgb(make_rngs):
  with pytest.raises(ValueError, match='photo has 1 channels, expected 3'):
    _tiny_casq_gan(grey_input=True).init(make_rngs(), jnp.zeros((1, 32, 32, 1)))
