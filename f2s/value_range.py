"""The data value ranges: how pixel values are scaled for the models.

'unit' is [0, 1], 'symmetric' is [-1, 1]. Photos and target sketches enter the
models in `config.data.value_range`; predictions (sigmoid of the logits),
losses and metrics are always in [0, 1].
"""
from typing import Any

import numpy as np

VALUE_RANGES = ('unit', 'symmetric')


def check(value_range: str) -> None:
  """Raises ValueError naming `config.data.value_range` unless it is known."""
  if value_range not in VALUE_RANGES:
    raise ValueError(f'config.data.value_range={value_range!r}: expected one '
                     f'of {VALUE_RANGES}')


def from_uint8(x: np.ndarray, value_range: str, *,
               in_place: bool = False) -> np.ndarray:
  """Maps uint8-scaled values [0, 255] to float32 in the value range.

  `in_place` overwrites `x` (which must then be float32) to save a copy.
  """
  check(value_range)
  scale = np.float32(1 / 255 if value_range == 'unit' else 2 / 255)
  out = np.multiply(x, scale, out=x if in_place else None, dtype=np.float32)
  if value_range == 'symmetric':
    out -= 1
  return out


def to_unit(x: Any, value_range: str) -> Any:
  """Maps a NumPy or JAX image from the value range to [0, 1]."""
  check(value_range)
  return x if value_range == 'unit' else (x + 1.0) / 2.0


def from_unit(x: Any, value_range: str) -> Any:
  """Maps a NumPy or JAX image from [0, 1] to the value range (to_unit's
  inverse)."""
  check(value_range)
  return x if value_range == 'unit' else x * 2.0 - 1.0
