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
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

from f2s import value_range as value_range_lib
from f2s.models.common import check_rgb
from f2s.models.grey import LUMA

# The face's rows and columns, as fractions of the input frame (the CUHK
# frame, in which f2s.align puts every face; padding moves it < 2%).
FACE_BOX = ((0.28, 0.80), (0.275, 0.725))
# The darkest face mean luma scaled up: one 8-bit step (a black photo
# stays black instead of dividing by zero).
_MIN_LUMA = 1 / 255


def face_luma(photo01: jax.Array) -> jax.Array:
  """(B,) mean luma of each (B, H, W, 3) photo in [0, 1] over FACE_BOX."""
  (top, bottom), (left, right) = FACE_BOX
  h, w = photo01.shape[1:3]
  face = photo01[:, round(top * h):round(bottom * h),
                 round(left * w):round(right * w)]
  return jnp.mean(face @ jnp.asarray(LUMA, photo01.dtype), axis=(1, 2))


class ExposureInput(nn.Module):
  """Runs `model` on the photo scaled (clipped to the value range) so that
  its face's mean luma is `target`; the outputs pass through."""
  model: nn.Module
  target: float
  value_range: str

  def __call__(self, photo: jax.Array, **kwargs) -> tuple[jax.Array, dict]:
    check_rgb(photo, 'ExposureInput')
    photo01 = value_range_lib.to_unit(photo, self.value_range)
    gain = self.target / jnp.maximum(face_luma(photo01), _MIN_LUMA)
    exposed = jnp.clip(photo01 * gain[:, None, None, None], 0, 1)
    return self.model(
        value_range_lib.from_unit(exposed, self.value_range).astype(
            photo.dtype), **kwargs)
