"""Per-image SSIM, MSE and PSNR as pure, jittable JAX functions.

All metrics take images shaped (..., H, W, C) and reduce the last three axes,
so a batch (B, H, W, C) gives shape (B,). SSIM follows `tf.image.ssim`: an
11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, the local statistics
taken only at window positions that lie fully inside the image (VALID
filtering) and the SSIM map averaged over those positions and the channels.
This equals `skimage.metrics.structural_similarity(..., gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, channel_axis=-1)`.
"""

import jax
import jax.numpy as jnp
import numpy as np


def _check_pair(a: jax.Array, b: jax.Array, name: str) -> None:
  if a.shape != b.shape:
    raise ValueError(
        f'{name}: images must have the same shape, got {a.shape} and {b.shape}.')
  if a.ndim < 3:
    raise ValueError(
        f'{name}: expected images shaped (..., H, W, C), got shape {a.shape}.')


def _gaussian_taps(size: int, sigma: float) -> np.ndarray:
  x = np.arange(size, dtype=np.float64) - (size - 1) / 2
  w = np.exp(-0.5 * (x / sigma) ** 2)
  return w / w.sum()


def _valid_filter(x: jax.Array, taps: np.ndarray) -> jax.Array:
  """Separable VALID filtering of (..., H, W, C) with a symmetric 1-D kernel.

  Shifted slices instead of a convolution op: exact, any dtype, and cheap for
  11 taps.
  """
  k = len(taps)
  h, w = x.shape[-3], x.shape[-2]
  rows = sum(float(t) * x[..., i:h - k + 1 + i, :, :] for i, t in enumerate(taps))
  return sum(float(t) * rows[..., :, i:w - k + 1 + i, :] for i, t in enumerate(taps))


def ssim(a: jax.Array, b: jax.Array, *, data_range: float,
         filter_size: int = 11, filter_sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03) -> jax.Array:
  """Mean structural similarity per image of (..., H, W, C) inputs.

  Args:
    a, b: images of equal shape (..., H, W, C), H and W >= filter_size.
    data_range: the span of the value range (1 for [0, 1], 2 for [-1, 1],
      255 for uint8 values).
    filter_size, filter_sigma: the Gaussian window.
    k1, k2: the stabilising constants' factors.

  Returns:
    SSIM of shape a.shape[:-3].
  """
  _check_pair(a, b, 'ssim')
  h, w = a.shape[-3], a.shape[-2]
  if h < filter_size or w < filter_size:
    raise ValueError(
        f'ssim: images of {h}x{w} are smaller than the {filter_size}x'
        f'{filter_size} window.')
  dtype = jnp.result_type(a.dtype, b.dtype, jnp.float32)
  # SSIM is invariant to scaling values and constants together: work in
  # [0, 1] units, and subtract each image's mean so that float32 keeps the
  # precision of E[x^2] - E[x]^2 (the covariance terms are shift-invariant).
  a = a.astype(dtype) / data_range
  b = b.astype(dtype) / data_range
  a_mean = jnp.mean(a, axis=(-3, -2, -1), keepdims=True)
  b_mean = jnp.mean(b, axis=(-3, -2, -1), keepdims=True)
  ac, bc = a - a_mean, b - b_mean
  taps = _gaussian_taps(filter_size, filter_sigma)
  mu_ac, mu_bc = _valid_filter(ac, taps), _valid_filter(bc, taps)
  var_a = _valid_filter(ac * ac, taps) - mu_ac * mu_ac
  var_b = _valid_filter(bc * bc, taps) - mu_bc * mu_bc
  cov = _valid_filter(ac * bc, taps) - mu_ac * mu_bc
  mu_a, mu_b = mu_ac + a_mean, mu_bc + b_mean
  c1, c2 = k1 ** 2, k2 ** 2
  luminance = (2 * mu_a * mu_b + c1) / (mu_a * mu_a + mu_b * mu_b + c1)
  structure = (2 * cov + c2) / (var_a + var_b + c2)
  return jnp.mean(luminance * structure, axis=(-3, -2, -1))


def mse(a: jax.Array, b: jax.Array) -> jax.Array:
  """Mean squared error per image of (..., H, W, C) inputs."""
  _check_pair(a, b, 'mse')
  dtype = jnp.result_type(a.dtype, b.dtype, jnp.float32)
  diff = a.astype(dtype) - b.astype(dtype)
  return jnp.mean(diff * diff, axis=(-3, -2, -1))


def psnr(a: jax.Array, b: jax.Array, *, data_range: float) -> jax.Array:
  """Peak signal-to-noise ratio in dB per image (inf for identical images)."""
  _check_pair(a, b, 'psnr')
  return 10.0 * jnp.log10(data_range ** 2 / mse(a, b))
