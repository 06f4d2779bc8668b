"""f2s.winograd: the same convolution as XLA's, its gradients too, within a
float32 rounding bound against a float64 reference."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from f2s import winograd

EPS = np.finfo(np.float32).eps


def reference(x: np.ndarray, kernel: np.ndarray) -> tuple[np.ndarray,
                                                          np.ndarray]:
  """(the 'SAME' 3x3 convolution in float64, the same of |x| and |kernel|)."""
  def conv(x, k):
    b, h, w, _ = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return sum(np.einsum('bhwc,cd->bhwd', xp[:, i:i + h, j:j + w], k[i, j])
               for i in range(3) for j in range(3))
  x, kernel = x.astype(np.float64), kernel.astype(np.float64)
  return conv(x, kernel), conv(np.abs(x), np.abs(kernel))


def bound(channels: int, magnitude: np.ndarray) -> np.ndarray:
  """A float32 rounding bound: each output sums 9 * channels products, and
  F(2x2, 3x3)'s transforms add up to 4 terms along each side of the tile
  before and after them (entries 0, +-1, +-1/2), each addition rounding."""
  return (9 * channels + 4 * 4 + 4 * 4) * EPS * magnitude


@pytest.mark.parametrize('shape', [(2, 7, 5, 3, 4), (1, 8, 6, 6, 2),
                                   (2, 1, 2, 2, 3)])
def test_conv3x3_equals_the_convolution(shape):
  b, h, w, c, d = shape
  rng = np.random.default_rng(0)
  x = rng.standard_normal((b, h, w, c)).astype(np.float32)
  kernel = rng.standard_normal((3, 3, c, d)).astype(np.float32)
  got = np.asarray(jax.jit(winograd.conv3x3)(x, kernel))
  want, magnitude = reference(x, kernel)
  assert got.shape == want.shape
  assert np.all(np.abs(got - want) <= bound(c, magnitude))


def test_conv3x3_gradients_equal_the_convolutions():
  rng = np.random.default_rng(1)
  x = rng.standard_normal((2, 9, 6, 5)).astype(np.float32)
  kernel = rng.standard_normal((3, 3, 5, 4)).astype(np.float32)
  dy = rng.standard_normal((2, 9, 6, 4)).astype(np.float32)

  def loss(conv):
    return lambda x, k: jnp.sum(conv(x, k) * dy)
  dx, dk = jax.jit(jax.grad(loss(winograd.conv3x3), (0, 1)))(x, kernel)
  # The input gradient is the convolution of dy with the kernel flipped and
  # transposed (channels swapped).
  flipped = np.flip(kernel, (0, 1)).transpose(0, 1, 3, 2)
  want, magnitude = reference(dy, flipped)
  assert np.all(np.abs(np.asarray(dx) - want) <= bound(4, magnitude))
  xla_dx, xla_dk = jax.grad(loss(winograd._lax_conv3x3), (0, 1))(x, kernel)
  np.testing.assert_array_equal(dk, xla_dk)  # XLA's, as documented
  assert np.all(np.abs(np.asarray(dx) - np.asarray(xla_dx))
                <= 2 * bound(4, magnitude))


def test_the_winograd_path_also_takes_the_input_gradient_when_faster():
  """At a shape `faster` picks, dx is Winograd's too (not XLA's bit for bit)
  and still the convolution."""
  rng = np.random.default_rng(2)
  x = rng.standard_normal((1, 6, 6, 128)).astype(np.float32)
  kernel = (rng.standard_normal((3, 3, 128, 128)) / 30).astype(np.float32)
  dy = rng.standard_normal((1, 6, 6, 128)).astype(np.float32)
  assert winograd.faster(dy.shape, kernel.shape)
  dx = jax.jit(jax.grad(lambda x: jnp.sum(winograd.conv3x3(x, kernel) * dy))
               )(x)
  want, magnitude = reference(dy, np.flip(kernel, (0, 1)).transpose(0, 1, 3, 2))
  assert np.all(np.abs(np.asarray(dx) - want) <= bound(128, magnitude))


def test_faster_picks_the_deep_layers_only():
  assert winograd.faster((16, 32, 26, 256), (3, 3, 256, 256))
  assert winograd.faster((16, 8, 6, 512), (3, 3, 512, 512))
  assert not winograd.faster((16, 128, 104, 64), (3, 3, 64, 64))
  assert not winograd.faster((16, 64, 52, 64), (3, 3, 64, 128))
  assert not winograd.faster((16, 4, 4, 512), (3, 3, 512, 512))
  assert not winograd.faster((16, 32, 26, 256), (5, 5, 256, 256))
