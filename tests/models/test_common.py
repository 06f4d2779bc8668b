"""check_io: photos must be (B, H, W, 3), match out_shape and divide by the
pooling factor; every model calls it. check_rgb: the input wrappers' RGB
check."""

import jax
import jax.numpy as jnp
import pytest

from f2s.models import VARIANTS, build_model, default_config
from f2s.models.common import check_io, check_rgb


def test_accepts_a_matching_photo():
  check_io(jnp.zeros((2, 16, 8, 3)), (16, 8, 1), 3, 'M')


@pytest.mark.parametrize('shape,levels,match', [
    ((16, 8, 3), 0, r'M: photo must be \(B, H, W, 3\), got \(16, 8, 3\)'),
    ((2, 16, 8, 1), 0, r'M: photo must be \(B, H, W, 3\)'),
    ((2, 16, 16, 3), 0, r'spatial shape \(16, 16\) differs from out_shape '
                        r'\(16, 8, 1\)'),
    ((2, 16, 8, 3), 4, r'\(16, 8\) must be divisible by 16 \(2\*\*4 pooling'),
])
def test_bad_photos_are_named(shape, levels, match):
  with pytest.raises(ValueError, match=match):
    check_io(jnp.zeros(shape), (16, 8, 1), levels, 'M')


def test_check_rgb_names_the_model_and_the_channels():
  check_rgb(jnp.zeros((1, 4, 4, 3)), 'M')
  with pytest.raises(ValueError, match=r'M: the photo has 4 channels, '
                                       r'expected 3 \(RGB\)'):
    check_rgb(jnp.zeros((1, 4, 4, 4)), 'M')


@pytest.mark.parametrize('name,variant', [
    (n, v) for n, vs in VARIANTS.items() for v in vs])
def test_every_model_checks_its_input(make_rngs, name, variant):
  model = build_model(default_config(name, variant), (16, 16, 1))
  grey = jax.ShapeDtypeStruct((1, 16, 16, 1), jnp.float32)
  with pytest.raises(ValueError, match=r'photo must be \(B, H, W, 3\)'):
    jax.eval_shape(lambda x: model.init(make_rngs(), x), grey)
