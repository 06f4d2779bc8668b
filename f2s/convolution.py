"""The NHWC/HWIO convolution that the models, the feature losses and
`f2s.winograd` share: one place for its layout and precision."""
from collections.abc import Sequence

import jax

Padding = str | Sequence[tuple[int, int]]


def conv_nhwc(x: jax.Array, kernel: jax.Array, padding: Padding = 'SAME',
              stride: int = 1,
              precision: jax.lax.Precision | None = None) -> jax.Array:
  """`x` (batch, height, width, in) convolved with `kernel` (kh, kw, in,
  out) at `stride`, `padding` as `lax.conv_general_dilated` takes it
  ('SAME', 'VALID' or ((top, bottom), (left, right)))."""
  return jax.lax.conv_general_dilated(
      x, kernel, (stride, stride), padding,
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'), precision=precision)
