"""Photometric augmentation of the photo alone, at training time.

The sketch an artist draws does not change with the photo's lighting or
camera; a model that sees only CUHK's evenly lit, same-camera photos learns
to copy their tones (a face lit from one side drawn half dark). Each training
photo here gets, per example: a greyscale conversion (with probability
`grey`), a Gaussian blur (sigma up to `blur` pixels), a gamma, a contrast
factor and a brightness shift, and a one-sided shadow (a linear ramp, in a
random direction, darkening the far side by up to `shadow`), and a cast
shadow (a soft Gaussian blob of random place and size, darkening by up to
`cast_shadow`: FERET photos show the head's shadow on the background, which
the artist leaves white), and a gamma that varies smoothly across the
photo (3x3 log-exponents up to `local_gamma`, bilinear between: regions
lightened and darkened apart, black hair made grey or pale skin darker, as
FERET's blond hair, pale faces and uneven light, which the artist draws as
the face's shape asks, not as the photo's tone). The target sketch is left as
it is. JPEG artefacts are not simulated: a DCT codec
inside the jitted step is beyond this module.

Written once for numpy (the grain pipeline) and JAX (device-resident data,
inside the step): `params` and `apply` take the array module `xp`, so both
paths compute the same float32 operations in the same order; the random
draws come from the caller's explicit generator or key, as uniforms.
"""
import dataclasses
import math
from typing import Any

import numpy as np

from f2s.colour import LUMA

# [brightness, contrast, gamma, shadow strength, shadow angle, grey, blur],
# then, with cast_shadow only (so that the other specs' draws are unchanged),
# [cast shadow centre x, centre y, radius, strength], then, with local_gamma
# only, the 3x3 log-exponents of the local gamma, row by row.
NUM_PARAMS = 7
NUM_CAST_SHADOW_PARAMS = 4
_GAMMA_GRID = 3
NUM_LOCAL_GAMMA_PARAMS = _GAMMA_GRID * _GAMMA_GRID
# The cast shadow's Gaussian radius, in image half-widths.
_CAST_RADIUS = (0.2, 0.6)


@dataclasses.dataclass(frozen=True)
class PhotometricSpec:
  """config.data.photometric; every knob 0 (the default) is off.

  brightness: the shift is uniform in [-brightness, brightness] ([0, 1]
    units). contrast: the factor about the image mean is uniform in
    [1 - contrast, 1 + contrast]. gamma: the exponent is log-uniform in
    [1 / (1 + gamma), 1 + gamma]. shadow: the one-sided ramp darkens by a
    fraction uniform in [0, shadow]. grey: the probability of a greyscale
    photo. blur: the Gaussian sigma is uniform in [0, blur] pixels.
    cast_shadow: the blob darkens its centre by a fraction uniform in
    [0, cast_shadow]; its centre is uniform over the image, its radius
    uniform in _CAST_RADIUS half-widths. local_gamma: the log-exponents of
    the local gamma at the corners, edge midpoints and centre are uniform
    in [-local_gamma, local_gamma].
  """
  brightness: float = 0.0
  contrast: float = 0.0
  gamma: float = 0.0
  shadow: float = 0.0
  grey: float = 0.0
  blur: float = 0.0
  cast_shadow: float = 0.0
  local_gamma: float = 0.0

  def __post_init__(self):
    bounds = {'brightness': (0, 1), 'contrast': (0, 1), 'gamma': (0, 4),
              'shadow': (0, 1), 'grey': (0, 1), 'blur': (0, 4),
              'cast_shadow': (0, 1), 'local_gamma': (0, 2)}
    for name, (low, high) in bounds.items():
      value = getattr(self, name)
      if (not isinstance(value, (int, float)) or isinstance(value, bool)
          or not low <= value <= high):
        raise ValueError(f'config.data.photometric.{name}={value!r}: '
                         f'expected a number in [{low}, {high}]')

  @property
  def enabled(self) -> bool:
    return any(dataclasses.astuple(self))

  @property
  def num_params(self) -> int:
    """Uniforms per example: NUM_PARAMS, then the cast shadow's and the
    local gamma's, each if on."""
    return (self.local_gamma_index
            + (NUM_LOCAL_GAMMA_PARAMS if self.local_gamma else 0))

  @property
  def local_gamma_index(self) -> int:
    """Where the local gamma's params start."""
    return NUM_PARAMS + (NUM_CAST_SHADOW_PARAMS if self.cast_shadow else 0)

  @property
  def blur_radius(self) -> int:
    """Taps each side of the blur kernel: 3 sigma at the largest sigma."""
    return math.ceil(3 * self.blur)


def spec_from_config(photometric_config: Any) -> PhotometricSpec:
  """The PhotometricSpec of `config.data.photometric` (None: off)."""
  if photometric_config is None:
    return PhotometricSpec()
  return PhotometricSpec(**dict(photometric_config))


def params(u: Any, spec: PhotometricSpec, xp: Any) -> Any:
  """float32 (..., spec.num_params) uniforms in [0, 1) -> one example's
  params per row, in NUM_PARAMS' order (xp: numpy or jax.numpy)."""
  u = u.astype(np.float32)
  log_gamma = np.float32(math.log1p(spec.gamma))
  low, high = _CAST_RADIUS
  cast = [] if not spec.cast_shadow else [
      2 * u[..., 7] - 1, 2 * u[..., 8] - 1,
      np.float32(low) + u[..., 9] * np.float32(high - low),
      u[..., 10] * np.float32(spec.cast_shadow)]
  first = spec.local_gamma_index
  log_gammas = [] if not spec.local_gamma else [
      (2 * u[..., first + k] - 1) * np.float32(spec.local_gamma)
      for k in range(NUM_LOCAL_GAMMA_PARAMS)]
  return xp.stack([
      (2 * u[..., 0] - 1) * np.float32(spec.brightness),
      1 + (2 * u[..., 1] - 1) * np.float32(spec.contrast),
      xp.exp((2 * u[..., 2] - 1) * log_gamma),
      u[..., 3] * np.float32(spec.shadow),
      u[..., 4] * np.float32(2 * math.pi),
      (u[..., 5] < spec.grey).astype(np.float32),
      u[..., 6] * np.float32(spec.blur),
      *cast,
      *log_gammas,
  ], axis=-1)


def sample(rng: np.random.Generator, spec: PhotometricSpec) -> np.ndarray:
  """One example's float32 params drawn from a numpy generator."""
  return params(rng.random(spec.num_params, dtype=np.float32), spec, np)


def _blur_axis(x: Any, sigma: Any, radius: int, axis: int, xp: Any) -> Any:
  """Per-example Gaussian blur of (B, H, W, C) along `axis`, edge-padded;
  sigma (B,) >= 0 (0: the identity, up to rounding)."""
  offsets = np.arange(-radius, radius + 1, dtype=np.float32)
  s = xp.maximum(sigma, np.float32(1e-3))[:, None]
  taps = xp.exp(-offsets ** 2 / (2 * s * s))
  taps = taps / xp.sum(taps, axis=1, keepdims=True)
  widths = [(0, 0)] * 4
  widths[axis] = (radius, radius)
  padded = xp.pad(x, widths, mode='edge')
  n = x.shape[axis]
  out = 0
  for k in range(2 * radius + 1):
    window = [slice(None)] * 4
    window[axis] = slice(k, k + n)
    out = out + taps[:, k, None, None, None] * padded[tuple(window)]
  return out


def _coords(n: int) -> np.ndarray:
  """n pixel coordinates spanning [-1, 1] along one axis."""
  return np.linspace(-1, 1, n, dtype=np.float32)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
  """Row and column coordinates in [-1, 1], shaped (1, H, 1) and (1, 1, W)."""
  return _coords(h)[None, :, None], _coords(w)[None, None, :]


def _shadow_ramp(h: int, w: int, angle: Any, xp: Any) -> Any:
  """(B, H, W, 1) in [0, 1]: 0 on the lit side, 1 on the far side, linear
  along direction `angle` (B,), saturating past the image's half-widths."""
  ys, xs = _grid(h, w)
  along = (xp.cos(angle)[:, None, None] * xs
           + xp.sin(angle)[:, None, None] * ys)
  return xp.clip((along + 1) / 2, 0, 1)[..., None]


def _cast_shadow_blob(h: int, w: int, p: Any, xp: Any) -> Any:
  """(B, H, W, 1) Gaussian blobs, 1 at the centres p[:, 7:9] (in [-1, 1]
  image coordinates), radius p[:, 9] half-widths."""
  ys, xs = _grid(h, w)
  dx = xs - p[:, 7, None, None]
  dy = ys - p[:, 8, None, None]
  r = p[:, 9, None, None]
  return xp.exp(-(dx * dx + dy * dy) / (2 * r * r))[..., None]


def _hat_weights(n: int) -> np.ndarray:
  """(n, _GAMMA_GRID) bilinear weights of the grid nodes at -1, 0, 1 for n
  coordinates spanning [-1, 1]."""
  coords = _coords(n)[:, None]
  nodes = _coords(_GAMMA_GRID)[None, :]
  spacing = np.float32(2 / (_GAMMA_GRID - 1))
  return np.maximum(0, 1 - np.abs(coords - nodes) / spacing)


def _gamma_field(h: int, w: int, log_gammas: Any, xp: Any) -> Any:
  """(B, H, W, 1) exponents: exp of the (B, 3, 3) log-exponents, bilinear
  between the grid nodes (the corners, edge midpoints and centre)."""
  field = xp.einsum('hk,bkl,wl->bhw', _hat_weights(h), log_gammas,
                    _hat_weights(w))
  return xp.exp(field)[..., None]


def apply(photo: Any, p: Any, spec: PhotometricSpec, xp: Any) -> Any:
  """float32 photos (B, H, W, 3) on the 0..255 scale with per-example params
  p (B, spec.num_params) -> the altered photos, float32 in [0, 255].

  Knobs at 0 are skipped (not computed), so each op is off exactly.
  """
  x = photo * np.float32(1 / 255)

  def per_example(i):
    return p[:, i, None, None, None]

  if spec.grey:
    luma = xp.sum(x * LUMA, axis=-1, keepdims=True)
    x = x + per_example(5) * (luma - x)
  if spec.blur:
    for axis in (1, 2):
      x = _blur_axis(x, p[:, 6], spec.blur_radius, axis, xp)
  if spec.gamma:
    x = xp.clip(x, 0, 1) ** per_example(2)
  if spec.contrast:
    mean = xp.mean(x, axis=(1, 2, 3), keepdims=True)
    x = (x - mean) * per_example(1) + mean
  if spec.brightness:
    x = x + per_example(0)
  if spec.shadow:
    ramp = _shadow_ramp(x.shape[1], x.shape[2], p[:, 4], xp)
    x = x * (1 - per_example(3) * ramp)
  if spec.cast_shadow:
    blob = _cast_shadow_blob(x.shape[1], x.shape[2], p, xp)
    x = x * (1 - per_example(10) * blob)
  if spec.local_gamma:
    first = spec.local_gamma_index
    log_gammas = p[:, first:first + NUM_LOCAL_GAMMA_PARAMS].reshape(
        -1, _GAMMA_GRID, _GAMMA_GRID)
    x = xp.clip(x, 0, 1) ** _gamma_field(x.shape[1], x.shape[2], log_gammas,
                                         xp)
  return (xp.clip(x, 0, 1) * np.float32(255)).astype(np.float32)
