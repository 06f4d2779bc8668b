"""Photos scaled to one face exposure before the model sees them.

CUHK's photos are lit alike: the mean luma of the face (FACE_BOX of the
aligned frame) is 0.75 +- 0.06 over the 88 training photos. FERET's, in
CUFSF, are darker and vary more (0.39 +- 0.07 over the 85 dev pairs), and
a model trained on CUHK alone draws a dark face as a dark smudge where the
artist draws light skin and dark lines. ExposureInput multiplies each photo
by the gain that brings its face's mean luma to `target`, so the model sees
every face exposed alike, at training and at sketching time; the photometric
augmentation's brightness and contrast then vary the light around that
exposure only.

With `balance`, it first evens out light that falls from one side: it fits a
line to the face box's log luma across its columns (least squares) and
divides that slope out of every row of the frame, as face detectors have long
subtracted a best-fit brightness plane (Sung & Poggio 1998, Rowley et al.
1998). Only the left-right slope: an aligned face is close to symmetric, so
that slope is mostly light, where the top-to-bottom one is mostly the face
(dark hair above light skin).
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

from f2s import value_range as value_range_lib
from f2s.models.common import check_rgb
from f2s.colour import LUMA

# The face's rows and columns, as fractions of the input frame (the CUHK
# frame, in which f2s.align puts every face; padding moves it < 2%).
FACE_BOX = ((0.28, 0.80), (0.275, 0.725))
# The darkest face mean luma scaled up: one 8-bit step (a black photo
# stays black instead of dividing by zero).
MIN_LUMA = 1 / 255


def face_box(height: int, width: int) -> tuple[tuple[int, int],
                                               tuple[int, int]]:
  """FACE_BOX in pixels of a (height, width) frame: ((top, bottom), (left,
  right)), bottom and right exclusive."""
  (top, bottom), (left, right) = FACE_BOX
  return ((round(top * height), round(bottom * height)),
          (round(left * width), round(right * width)))


def _face_lumas(photo01: jax.Array) -> jax.Array:
  """(B, rows, columns) luma of each (B, H, W, 3) photo's FACE_BOX."""
  (top, bottom), (left, right) = face_box(*photo01.shape[1:3])
  face = photo01[:, top:bottom, left:right]
  return face @ jnp.asarray(LUMA, photo01.dtype)


def face_luma(photo01: jax.Array) -> jax.Array:
  """(B,) mean luma of each (B, H, W, 3) photo in [0, 1] over FACE_BOX."""
  return jnp.mean(_face_lumas(photo01), axis=(1, 2))


def column_offsets(width: int) -> jax.Array:
  """(W,) each column's offset from the face box's centre, in face-box
  widths (the face box's columns span about -0.5 to 0.5)."""
  _, (left, right) = face_box(1, width)
  return (jnp.arange(width) - (left + right - 1) / 2) / (right - left)


def light_slope(photo01: jax.Array) -> jax.Array:
  """(B,) least-squares slope of log luma across the face box's columns of
  each (B, H, W, 3) photo in [0, 1], per face-box width (positive: lit from
  the right as seen)."""
  width = photo01.shape[2]
  _, (left, right) = face_box(1, width)
  log_luma = jnp.log(jnp.maximum(_face_lumas(photo01), MIN_LUMA))
  # The offsets are centred, so the slope needs no intercept.
  x = column_offsets(width)[left:right]
  return (jnp.mean(log_luma, axis=1) @ x) / jnp.sum(x * x)


class ExposureInput(nn.Module):
  """Runs `model` on the photo scaled (clipped to the value range) so that
  its face's mean luma is `target`, with `balance` its left-right light
  slope divided out first (module docstring); the outputs pass through."""
  model: nn.Module
  target: float
  value_range: str
  balance: bool = False

  def __call__(self, photo: jax.Array, **kwargs) -> tuple[jax.Array, dict]:
    check_rgb(photo, 'ExposureInput')
    photo01 = value_range_lib.to_unit(photo, self.value_range)
    if self.balance:
      column_gain = jnp.exp(-light_slope(photo01)[:, None]
                            * column_offsets(photo01.shape[2])[None, :])
      photo01 = photo01 * column_gain[:, None, :, None]
    gain = self.target / jnp.maximum(face_luma(photo01), MIN_LUMA)
    exposed = jnp.clip(photo01 * gain[:, None, None, None], 0, 1)
    return self.model(
        value_range_lib.from_unit(exposed, self.value_range).astype(
            photo.dtype), **kwargs)
