"""Writes a PNG grid of synthetic photo/sketch pairs and times the renderer.

Example:

  cd /work/main && /work/venv/bin/python experiments/preview_synthetic.py \
      --out=/tmp/synthetic_grid.png --rows=4 --cols=4
"""

import pathlib
import sys
import time

from absl import app
from absl import flags
import numpy as np
from PIL import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from f2s.datasets import synthetic_face_sketch  # pylint: disable=g-import-not-at-top

_OUT = flags.DEFINE_string('out', '/tmp/synthetic_grid.png', 'Output PNG.')
_ROWS = flags.DEFINE_integer('rows', 4, 'Grid rows.')
_COLS = flags.DEFINE_integer('cols', 4, 'Pairs per row.')
_SEED = flags.DEFINE_integer('seed', 0, 'Builder config seed.')
_SPLIT = flags.DEFINE_enum('split', 'train', ['train', 'test'], 'Split.')


def main(argv):
  del argv
  start = time.perf_counter()
  examples = [
      synthetic_face_sketch.render_example(_SEED.value, _SPLIT.value, i)
      for i in range(_ROWS.value * _COLS.value)
  ]
  seconds = (time.perf_counter() - start) / len(examples)
  rows = []
  for r in range(_ROWS.value):
    row = examples[r * _COLS.value:(r + 1) * _COLS.value]
    rows.append(np.concatenate(
        [np.concatenate([e['photo'], np.repeat(e['sketch'], 3, -1)], 1)
         for e in row], 1))
  Image.fromarray(np.concatenate(rows, 0)).save(_OUT.value)
  print(f'wrote {_OUT.value}; {seconds * 1000:.1f} ms per pair')


if __name__ == '__main__':
  app.run(main)
