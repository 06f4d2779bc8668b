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
name, an exported folder or a training run's workdir).
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


def grid(crops: np.ndarray, sketchers: list[sketch.FrameSketcher]
         ) -> np.ndarray:
  """uint8 RGB: a column per crop; the photo's window on top, then a row
  per model."""
  top, left = sketchers[0].window()
  h, w = sketchers[0].shape
  rows = [crops[:, top:top + h, left:left + w]]
  for sketcher in sketchers:
    drawn = sketch.to_uint8(sketcher(crops))
    rows.append(np.broadcast_to(drawn, (*drawn.shape[:3], 3)))
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
    sketchers = [sketch.load_sketcher('jax', *model_source(source))
                 for source in args.models.split(',')]
    image = grid(aligned_crops(args.faces), sketchers)
    sketch.write_png(args.out, image)
  except (sketch.LoadError, sketch.OutputError, align.ImageError) as e:
    sys.exit(f'error: {e}')
  print(f'wrote {args.out}')


if __name__ == '__main__':
  main()
