"""experiments/sketch_grid.py's side-light measure: the grey-level change
from the evenly lit to the side-lit astronaut, per quarter of the face."""
import importlib.util
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location(
    'sketch_grid', os.path.join(ROOT, 'experiments', 'sketch_grid.py'))
sketch_grid = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sketch_grid)


def test_side_lit_change_reads_the_face_quarters_in_the_window():
  """A 256x208 frame whose sketches cover rows 3-252 and columns 4-203: the
  face box is rows 72-205 and columns 57-151 of the frame. The side-lit
  sketch is 8 levels darker in the face's last two quarters alone (of its
  94 columns: 24, 24, 23, 23, so from column 105), and 100 levels
  darker outside the face box, which the measure must not see."""
  frame, window = (256, 208), (3, 4)
  even = np.full((250, 200, 1), 200, np.uint8)
  lit = even.copy()
  lit[:, :] -= 100
  rows = slice(72 - 3, 205 - 3)
  lit[rows, 57 - 4:151 - 4] = 200
  lit[rows, 105 - 4:151 - 4] -= 8
  change = sketch_grid.side_lit_change(np.stack([even, lit]), window, frame)
  np.testing.assert_allclose(change, [0, 0, -8, -8])
