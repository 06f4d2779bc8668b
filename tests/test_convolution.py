"""conv_nhwc against a direct float64 NumPy convolution: layout, stride,
padding."""
import numpy as np
import pytest

from f2s.convolution import conv_nhwc


def _direct(x, kernel, pad, stride):
  """sum over (i, j, c) of padded x[n, s*y + i, s*x + j, c] kernel[i, j, c, :]."""
  xp = np.pad(x.astype(np.float64), ((0, 0), *pad, (0, 0)))
  kh, kw = kernel.shape[:2]
  ho = (xp.shape[1] - kh) // stride + 1
  wo = (xp.shape[2] - kw) // stride + 1
  out = np.zeros((x.shape[0], ho, wo, kernel.shape[3]))
  for i in range(kh):
    for j in range(kw):
      window = xp[:, i:i + stride * (ho - 1) + 1:stride,
                  j:j + stride * (wo - 1) + 1:stride]
      out += window @ kernel[i, j].astype(np.float64)
  return out


@pytest.mark.parametrize('kernel_size, padding, stride, pad', [
    (3, 'SAME', 1, ((1, 1), (1, 1))),
    (3, 'VALID', 1, ((0, 0), (0, 0))),
    (4, ((1, 2), (0, 1)), 2, ((1, 2), (0, 1))),
    (11, ((2, 2), (2, 2)), 4, ((2, 2), (2, 2))),  # AlexNet's first layer
])
def test_matches_a_direct_convolution(kernel_size, padding, stride, pad):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 23, 19, 3)).astype(np.float32)
  kernel = rng.normal(size=(kernel_size, kernel_size, 3, 5)).astype(np.float32)
  got = np.asarray(conv_nhwc(x, kernel, padding, stride))
  want = _direct(x, kernel, pad, stride)
  assert got.shape == want.shape
  # Sums of k*k*3 float32 products of unit normals: each rounding error
  # <= eps times the running sum of magnitudes.
  bound = kernel_size ** 2 * 3 * np.finfo(np.float32).eps * _direct(
      np.abs(x), np.abs(kernel), pad, stride)
  assert np.all(np.abs(got - want) <= bound)
