"""Pure numpy preprocessing of photo/sketch batches for both protocols.

Records hold a photo uint8 (250, 200, 3) and a sketch uint8 (250, 200, 1).

* 'casq' protocol: the 200x200 centre crop, sketch repeated to 3 channels.
* 'standard' protocol: the full 250x200 image, 1-channel sketch, padded to
  `pad_to` (256, 208) so that the models' 8x/16x downsampling divides it.
  The padding is 'reflect': the network then sees image-like texture at the
  border instead of flat stripes (edge) or a black frame (constant) that it
  would have to learn to reproduce; the padded border is never scored, as
  `crop_to_valid` cuts predictions back to 250x200 first.

Augmentation (training only) is one geometric transform per example (flip,
shift, scale about the centre), applied with the same parameters to photo and
sketch: they are warped together as one 4-channel image; then, when
`config.data.photometric` asks for it, the photo alone gets
`f2s.data.photometric`'s lighting and camera changes.

`f2s.data.augment` and `f2s.data.device_data` compute the same augmentation
and preprocessing in JAX, inside the train step, for device-resident data.
"""

from collections.abc import Mapping
import dataclasses
from typing import Any

import numpy as np

from f2s import value_range
from f2s.data import photometric as photometric_lib
from f2s.data.photometric import PhotometricSpec

RECORD_SHAPE = (250, 200)
CASQ_SIZE = (200, 200)
PROTOCOLS = ('casq', 'standard')
PAD_MODE = 'reflect'


@dataclasses.dataclass(frozen=True)
class DataSpec:
  """The preprocessing settings, read once from `config.data`."""
  protocol: str
  value_range: str
  pad_to: tuple[int, int] = (256, 208)
  augment: bool = False
  flip: bool = False
  max_shift: float = 0.0
  max_scale: float = 0.0
  photometric: PhotometricSpec = PhotometricSpec()

  def __post_init__(self):
    if self.protocol not in PROTOCOLS:
      raise ValueError(
          f'config.data.protocol={self.protocol!r}: expected one of {PROTOCOLS}.')
    value_range.check(self.value_range)
    if self.protocol == 'standard' and (
        len(self.pad_to) != 2 or self.pad_to[0] < RECORD_SHAPE[0]
        or self.pad_to[1] < RECORD_SHAPE[1]):
      raise ValueError(f'config.data.pad_to={self.pad_to!r}: expected (H, W) '
                       f'of at least {RECORD_SHAPE}.')
    if self.max_shift < 0 or not 0 <= self.max_scale < 1:
      raise ValueError(
          f'config.data.max_shift={self.max_shift!r} / max_scale='
          f'{self.max_scale!r}: expected max_shift >= 0 and 0 <= max_scale < 1.')
    if self.photometric.enabled and not self.augment:
      raise ValueError('config.data.photometric is set but config.data.augment '
                       'is false: photometric augmentation is part of the '
                       'training augmentation; set augment=true or zero the '
                       'photometric knobs.')

  @property
  def image_shape(self) -> tuple[int, int]:
    """(H, W) of the batches the pipeline yields."""
    return CASQ_SIZE if self.protocol == 'casq' else tuple(self.pad_to)

  @property
  def sketch_channels(self) -> int:
    return 3 if self.protocol == 'casq' else 1

  @property
  def sketch_shape(self) -> tuple[int, int, int]:
    """(H, W, C) of the target sketch and the model output."""
    return (*self.image_shape, self.sketch_channels)


def spec_from_config(data_config: Any) -> DataSpec:
  """Builds a DataSpec from `config.data`, naming any missing key."""

  def get(key, default=None, required=True):
    try:
      return data_config[key]
    except (KeyError, AttributeError) as e:
      if required:
        raise KeyError(f'config.data.{key} is missing.') from e
      return default

  augment = bool(get('augment'))
  return DataSpec(
      protocol=get('protocol'),
      value_range=get('value_range'),
      pad_to=tuple(get('pad_to', (256, 208),
                       required=get('protocol') == 'standard')),
      augment=augment,
      flip=bool(get('flip', False, required=augment)),
      max_shift=float(get('max_shift', 0.0, required=augment)),
      max_scale=float(get('max_scale', 0.0, required=augment)),
      photometric=photometric_lib.spec_from_config(
          get('photometric', None, required=False)))


def output_window(spec: DataSpec) -> tuple[int, int, int, int]:
  """(top, left, height, width) of the output inside the 250x200 record."""
  if spec.protocol == 'casq':
    h, w = CASQ_SIZE
    return (RECORD_SHAPE[0] - h) // 2, (RECORD_SHAPE[1] - w) // 2, h, w
  return 0, 0, *RECORD_SHAPE


def pad_offsets(pad_to: tuple[int, int]) -> tuple[int, int]:
  """(top, left) of the centred 250x200 region inside a `pad_to` image."""
  return (pad_to[0] - RECORD_SHAPE[0]) // 2, (pad_to[1] - RECORD_SHAPE[1]) // 2


def pad_to_shape(x: np.ndarray, pad_to: tuple[int, int]) -> np.ndarray:
  """Centres (..., 250, 200, C) in (..., *pad_to, C) with reflect padding."""
  top, left = pad_offsets(pad_to)
  bottom = pad_to[0] - RECORD_SHAPE[0] - top
  right = pad_to[1] - RECORD_SHAPE[1] - left
  widths = [(0, 0)] * (x.ndim - 3) + [(top, bottom), (left, right), (0, 0)]
  return np.pad(x, widths, mode=PAD_MODE)


def crop_to_valid(x: Any, data_config: Any) -> Any:
  """Crops padded images (..., H, W, C) back to the scored region.

  Works on numpy and JAX arrays (slicing only). `data_config` is
  `config.data` (or a DataSpec). For 'casq' nothing is padded and `x` is
  returned as is; for 'standard' (..., *pad_to, C) becomes (..., 250, 200, C).
  """
  spec = data_config if isinstance(data_config, DataSpec) else (
      spec_from_config(data_config))
  if tuple(x.shape[-3:-1]) != spec.image_shape:
    raise ValueError(f'crop_to_valid: expected images of {spec.image_shape} '
                     f'(protocol {spec.protocol!r}), got shape {x.shape}.')
  if spec.protocol == 'casq':
    return x
  top, left = pad_offsets(spec.pad_to)
  return x[..., top:top + RECORD_SHAPE[0], left:left + RECORD_SHAPE[1], :]


def sample_augmentation(rng: np.random.Generator, spec: DataSpec) -> np.ndarray:
  """Draws one example's transform: float32 [flip, shift_y, shift_x, scale]."""
  flip = float(spec.flip and rng.random() < 0.5)
  shift_y, shift_x = rng.uniform(-spec.max_shift, spec.max_shift, size=2)
  scale = rng.uniform(1 - spec.max_scale, 1 + spec.max_scale)
  return np.array([flip, shift_y, shift_x, scale], np.float32)


def _source_coords(out_start: int, out_len: int, in_len: int,
                   shift: np.ndarray, scale: np.ndarray,
                   flip: np.ndarray | None = None,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Bilinear taps along one axis: (lower index, upper index, upper weight).

  Output pixel p (in record coordinates) reads the input at
  c + (p' - c) / scale - shift, with p' = in_len - 1 - p when flipped and
  c the centre, clamped to the image (edge values fill the border). The
  division is a multiplication by 1 / scale, as XLA compiles it in
  `f2s.data.augment`: both give the same float32 coordinates.
  """
  centre = (in_len - 1) / 2
  pos = np.arange(out_start, out_start + out_len, dtype=np.float32)[None, :]
  if flip is not None:
    pos = np.where(flip[:, None] > 0.5, in_len - 1 - pos, pos)
  inverse = (np.float32(1) / scale)[:, None]
  src = centre + (pos - centre) * inverse - shift[:, None]
  src = np.clip(src, 0, in_len - 1)
  lo = np.floor(src).astype(np.int32)
  hi = np.minimum(lo + 1, in_len - 1)
  return lo, hi, (src - lo).astype(np.float32)


def warp(pixels: np.ndarray, params: np.ndarray,
         window: tuple[int, int, int, int]) -> np.ndarray:
  """Applies per-example [flip, shift_y, shift_x, scale] to uint8 (B, H, W, 4).

  Returns float32 (B, h, w, 4) for the output `window` (top, left, h, w) in
  input coordinates, bilinearly interpolated. The warp is separable (no
  rotation): whole rows are gathered and blended first (cheap, contiguous),
  then columns, gathering each pixel's 4 float32 channels as one 16-byte
  element. Weights lie along contiguous axes: numpy broadcasts a trailing
  size-1 axis slowly.
  """
  b, in_h, in_w, channels = pixels.shape
  if pixels.dtype != np.uint8 or channels != 4:
    raise ValueError(f'warp: expected uint8 (B, H, W, 4), got {pixels.dtype} '
                     f'{pixels.shape}.')
  top, left, h, w = window
  flip, shift_y, shift_x, scale = params.T
  y0, y1, wy = _source_coords(top, h, in_h, shift_y, scale)
  x0, x1, wx = _source_coords(left, w, in_w, shift_x, scale, flip)
  batch = np.arange(b)[:, None]
  rows = pixels[batch, y0].astype(np.float32)
  lower = pixels[batch, y1].astype(np.float32)
  lower -= rows
  lower *= wy[:, :, None, None]
  rows += lower
  as_pixels = rows.view(np.complex128)[..., 0]

  def columns(xs):
    gathered = np.take_along_axis(as_pixels, xs[:, None, :], axis=2)
    return gathered.view(np.float32).reshape(b, h, w * 4)

  out, right = columns(x0), columns(x1)
  right -= out
  right *= np.repeat(wx, 4, axis=1)[:, None, :]
  out += right
  return out.reshape(b, h, w, 4)


def check_record(record: Mapping[str, Any]) -> None:
  """Raises ValueError unless the record holds the contract's arrays."""
  for key, channels in (('photo', 3), ('sketch', 1)):
    if key not in record:
      raise ValueError(f'record has no {key!r} (keys: {sorted(record)}).')
    value = np.asarray(record[key])
    if value.shape != (*RECORD_SHAPE, channels) or value.dtype != np.uint8:
      raise ValueError(
          f'record[{key!r}]: expected uint8 {(*RECORD_SHAPE, channels)}, got '
          f'{value.dtype} {value.shape} (name {record.get("name")!r}).')


def preprocess_pixels(pixels: np.ndarray, spec: DataSpec,
                      aug_params: np.ndarray | None = None,
                      photometric_params: np.ndarray | None = None,
                      ) -> dict[str, np.ndarray]:
  """uint8 (B, 250, 200, 4) photo + sketch channels -> model batch.

  Returns float32 `photo` (B, H, W, 3) and `sketch` (B, H, W, C) in the value
  range, with (H, W, C) set by the protocol. `aug_params` (B, 4) from
  `sample_augmentation` warps photo and sketch identically (they are one
  array); None skips augmentation. `photometric_params` (B,
  spec.photometric.num_params) from `photometric.sample` then alter the warped
  photo (spec.photometric's ops; only with `aug_params`).
  """
  top, left, h, w = window = output_window(spec)
  if aug_params is None:
    both = value_range.from_uint8(pixels[:, top:top + h, left:left + w],
                                  spec.value_range)
  else:
    warped = warp(pixels, aug_params, window)
    if photometric_params is not None:
      warped[..., :3] = photometric_lib.apply(
          warped[..., :3], photometric_params, spec.photometric, np)
    both = value_range.from_uint8(warped, spec.value_range, in_place=True)
  photo, sketch = both[..., :3], both[..., 3:]
  if spec.protocol == 'casq':
    sketch = np.repeat(sketch, 3, axis=-1)
  else:
    photo = pad_to_shape(photo, spec.pad_to)
    sketch = pad_to_shape(sketch, spec.pad_to)
  return {'photo': np.ascontiguousarray(photo),
          'sketch': np.ascontiguousarray(sketch)}


def preprocess_batch(photo: np.ndarray, sketch: np.ndarray, spec: DataSpec,
                     aug_params: np.ndarray | None = None,
                     ) -> dict[str, np.ndarray]:
  """uint8 photo (B, 250, 200, 3) and sketch (B, 250, 200, 1) -> model batch.

  See `preprocess_pixels`.
  """
  return preprocess_pixels(np.concatenate([photo, sketch], axis=-1), spec,
                           aug_params)
