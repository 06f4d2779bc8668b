"""Sketches of faces that are neither CUHK's nor CUFSF's, by several models
side by side: a grid that may be committed (no data set's pixels in it).

  python experiments/sketch_grid.py --models=casq_gan_cuhk,RUN_DIR \\
      --out=docs/sketch_grid.png

Columns: skimage's astronaut (found and aligned by f2s.align, as f2s.sketch
does), the same aligned photo lit from one side (the frame's right half
darkened by a linear ramp to 35% at the edge: an artist draws the same
face), and `--faces` of f2s's procedural demo faces (`f2s.datasets.faces`,
seed 0, already in the CUHK frame). Rows: the photo in the sketch's window,
then each model's sketch, in the order of `--models` (a shipped model's
name, an exported folder or a training run's workdir). For each model it
prints how the side light changed the sketch: the mean grey-level change
(side-lit minus evenly lit) over the face box's rows, in four quarters of
its columns from left to right as seen (the light falls off to the right).
"""
import argparse
import os
import sys
import tempfile

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from f2s import align, sketch  # noqa: E402  (after the path set-up)
from f2s.datasets import faces  # noqa: E402
from f2s.models import exposure  # noqa: E402

GAP = 2  # pixels of white between cells
SHADOW_FLOOR = 0.35  # the side-lit photo's darkest column, as a fraction


def side_lit(rgb: np.ndarray) -> np.ndarray:
  """uint8 RGB with brightness falling linearly from 1 at the middle column
  to SHADOW_FLOOR at the right edge (the photo's left and right, as seen)."""
  w = rgb.shape[1]
  ramp = np.clip(1 - (np.arange(w) - w / 2) / (w / 2) * (1 - SHADOW_FLOOR),
                 SHADOW_FLOOR, 1)
  return np.round(rgb * ramp[None, :, None]).astype(np.uint8)


def aligned_crops(num_faces: int) -> np.ndarray:
  """uint8 (2 + num_faces, 250, 200, 3): the astronaut, side-lit, and the
  procedural faces."""
  import skimage.data
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, 'astronaut.png')
    Image.fromarray(skimage.data.astronaut()).save(path)
    photo = align.Photo(path)
    found = align.find_faces(photo)
    if not found:
      raise align.ImageError('astronaut: no face found')
    astronaut = align.align(photo, found[:1])[0].pixels
  return np.stack([astronaut, side_lit(astronaut)]
                  + [faces.render_pair(0, i)[0] for i in range(num_faces)])


def side_lit_change(drawn: np.ndarray, window: tuple[int, int],
                    frame: tuple[int, int]) -> np.ndarray:
  """(4,) mean grey-level change from drawn[0] (the evenly lit astronaut) to
  drawn[1] (side-lit) over the face box's rows, in four quarters of its
  columns, left to right. drawn: uint8 (N, h, w, C) sketches in the frame's
  window at (top, left); frame: the crops' (H, W)."""
  (top, bottom), (left, right) = exposure.face_box(*frame)
  h0, w0 = window
  rows = slice(top - h0, bottom - h0)
  columns = np.arange(left, right) - w0
  change = drawn[1, rows].astype(np.float64) - drawn[0, rows]
  return np.array([change[:, quarter].mean()
                   for quarter in np.array_split(columns, 4)])


def grid(crops: np.ndarray, drawn: list[np.ndarray],
         window: tuple[int, int]) -> np.ndarray:
  """uint8 RGB: a column per crop; the photo's window (top, left) on top,
  then a row per model's uint8 sketches."""
  top, left = window
  h, w = drawn[0].shape[1:3]
  rows = [crops[:, top:top + h, left:left + w]]
  rows += [np.broadcast_to(d, (*d.shape[:3], 3)) for d in drawn]
  lines = []
  for row in rows:
    cells = []
    for cell in row:
      cells += [cell, np.full((h, GAP, 3), 255, np.uint8)]
    lines += [np.concatenate(cells[:-1], axis=1)]
    lines += [np.full((GAP, lines[-1].shape[1], 3), 255, np.uint8)]
  return np.concatenate(lines[:-1], axis=0)


def model_source(source: str) -> tuple[str | None, str | None]:
  """(model, workdir) for f2s.sketch.load_sketcher: a folder without an
  exported model's variables.msgpack is a training run."""
  if os.path.isdir(source) and not os.path.isfile(
      os.path.join(source, 'variables.msgpack')):
    return None, source
  return source, None


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--models', required=True,
                      help='comma-separated shipped model names, exported '
                      'folders or training run workdirs')
  parser.add_argument('--faces', type=int, default=4,
                      help='procedural demo faces after the astronaut')
  parser.add_argument('--out', required=True)
  args = parser.parse_args()
  try:
    sources = args.models.split(',')
    sketchers = [sketch.load_sketcher('jax', *model_source(source))
                 for source in sources]
    crops = aligned_crops(args.faces)
    drawn = [sketch.to_uint8(sketcher(crops)) for sketcher in sketchers]
    window = sketchers[0].window()
    sketch.write_png(args.out, grid(crops, drawn, window))
  except (sketch.LoadError, sketch.OutputError, align.ImageError) as e:
    sys.exit(f'error: {e}')
  print(f'wrote {args.out}')
  print('side-lit minus evenly lit astronaut, grey levels over the face\'s '
        'column quarters, left (lit) to right (shaded):')
  for source, d in zip(sources, drawn):
    change = side_lit_change(d, window, crops.shape[1:3])
    print(f'  {source}: ' + ' '.join(f'{c:+.1f}' for c in change))


if __name__ == '__main__':
  main()
