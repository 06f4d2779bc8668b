"""Rows of the generalisation table that need no training run: two baselines
and the shipped models, scored on a data set's aligned pairs (CUFSF).

Every row is scored as evaluation scores a run (`evaluate.score_images`:
8-bit predictions against the aligned artist sketches, 250x200 grey):
- `grey_photo`: the aligned photo itself in grey (PIL's ITU-R 601-2 luma),
  what a model that only copies the photo's tones would draw;
- `mean_sketch`: the mean of the aligned artist sketches of the same pairs,
  one image for every photo: what a model that ignores the photo would draw
  (its mean includes each target, a slight advantage to the baseline);
- each shipped model (`f2s.pretrained`), through `f2s.sketch.Sketcher`,
  exactly as `f2s.sketch` sketches a user's aligned face.
"""
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from f2s import pretrained, sketch
from f2s.data import device_data
from f2s.training import evaluate

BASELINES = ('grey_photo', 'mean_sketch')


def stack(source: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
  """(photos (N, 250, 200, 3), sketches (N, 250, 200, 1)) uint8 of a source."""
  pixels = device_data.read_pixels(source, range(len(source)))
  return pixels[..., :3], pixels[..., 3:]


def grey_photo(photos: np.ndarray) -> np.ndarray:
  """uint8 (N, H, W, 1): each RGB photo in grey."""
  return np.stack([np.asarray(Image.fromarray(p).convert('L'))[..., None]
                   for p in photos])


def mean_sketch(sketches: np.ndarray) -> np.ndarray:
  """uint8 (N, H, W, C): the sketches' mean, rounded, once per sketch."""
  mean = np.round(sketches.astype(np.float64).mean(axis=0)).astype(np.uint8)
  return np.broadcast_to(mean, sketches.shape).copy()


def baseline(name: str, photos: np.ndarray, sketches: np.ndarray) -> np.ndarray:
  """The baseline `name`'s predictions for the pairs."""
  if name == 'grey_photo':
    return grey_photo(photos)
  if name == 'mean_sketch':
    return mean_sketch(sketches)
  raise ValueError(f'unknown baseline {name!r}: expected one of {BASELINES}')


def model_predictions(trained: pretrained.TrainedModel, photos: np.ndarray,
                      batch: int = 8
                      ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
  """(uint8 sketches, (top, left, h, w) of the frame they cover) of a
  trained model for aligned photos, as `f2s.sketch` makes them."""
  sketcher = sketch.Sketcher(trained)
  out = np.concatenate([sketch.to_uint8(sketcher(photos[i:i + batch]))
                        for i in range(0, len(photos), batch)])
  return out, (*sketcher.window(), *sketcher.shape)


def score_model(trained: pretrained.TrainedModel, photos: np.ndarray,
                sketches: np.ndarray, lpips_nets: Sequence[str]
                ) -> dict[str, float]:
  """A trained (e.g. shipped) model's scores against the sketches (in its
  window, and as RGB for a model that draws RGB, as its protocol's
  evaluation does)."""
  pred, (top, left, h, w) = model_predictions(trained, photos)
  target = sketches[:, top:top + h, left:left + w]
  if pred.shape[-1] != target.shape[-1]:
    target = np.repeat(target, pred.shape[-1], axis=-1)
  return evaluate.score_images(pred, target, lpips_nets)


def score_baseline(name: str, photos: np.ndarray, sketches: np.ndarray,
                   lpips_nets: Sequence[str]) -> dict[str, float]:
  return evaluate.score_images(baseline(name, photos, sketches), sketches,
                               lpips_nets)
