"""Input/output shape checks shared by the models."""

import jax


def check_io(photo: jax.Array, out_shape: tuple[int, int, int], levels: int,
             model: str) -> None:
  """Raise ValueError unless `photo` is (B, H, W, 3) with (H, W) == out_shape[:2]
  and H, W divisible by 2**levels."""
  if photo.ndim != 4 or photo.shape[-1] != 3:
    raise ValueError(f'{model}: photo must be (B, H, W, 3), got {photo.shape}.')
  h, w = photo.shape[1:3]
  if (h, w) != tuple(out_shape[:2]):
    raise ValueError(f'{model}: photo spatial shape {(h, w)} differs from '
                     f'out_shape {tuple(out_shape)}.')
  f = 2**levels
  if h % f or w % f:
    raise ValueError(f'{model}: photo spatial shape {(h, w)} must be divisible by '
                     f'{f} (2**{levels} pooling levels).')


def check_rgb(photo: jax.Array, model: str) -> None:
  """Raise ValueError naming `model` unless `photo`'s last axis is RGB."""
  if photo.shape[-1] != 3:
    raise ValueError(f'{model}: the photo has {photo.shape[-1]} channels, '
                     'expected 3 (RGB).')
