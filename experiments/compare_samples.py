"""Puts the predictions of several runs side by side, on the same test faces.

  python experiments/compare_samples.py GRID_A.png GRID_B.png [...] --out=F.png

Each GRID is a run's `samples/step_*.png` (photo | target | prediction per
row, f2s.training.writers.sample_grid, gap 2 pixels); runs evaluated on the
same test split show the same faces in the same rows. The output is the
first grid's photo and target columns followed by every grid's prediction
column, in the order given.
"""
import argparse
import sys

import numpy as np
from PIL import Image

GAP = 2  # writers.sample_grid's default


def columns(grid: np.ndarray, path: str) -> list[np.ndarray]:
  """The three columns of a sample grid; ValueError if it is not one."""
  width = (grid.shape[1] - 2 * GAP) / 3
  if width != int(width) or width <= 0:
    raise ValueError(f'{path}: {grid.shape[1]} pixels wide is not a sample '
                     f'grid of three columns with {GAP}-pixel gaps')
  width = int(width)
  return [grid[:, i * (width + GAP):i * (width + GAP) + width]
          for i in range(3)]


def side_by_side(grids: list[np.ndarray], paths: list[str]) -> np.ndarray:
  split = [columns(g, p) for g, p in zip(grids, paths)]
  shapes = {c.shape for cols in split for c in cols}
  if len(shapes) != 1:
    raise ValueError(f'the grids differ in size: {[g.shape for g in grids]}')
  parts = split[0][:2] + [cols[2] for cols in split]
  h = parts[0].shape[0]
  gap = np.full((h, GAP, 3), 255, np.uint8)
  out = [parts[0]]
  for part in parts[1:]:
    out += [gap, part]
  return np.concatenate(out, axis=1)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('grids', nargs='+')
  parser.add_argument('--out', required=True)
  args = parser.parse_args()
  try:
    grids = [np.asarray(Image.open(p).convert('RGB')) for p in args.grids]
    image = side_by_side(grids, args.grids)
  except (OSError, ValueError) as e:
    sys.exit(f'error: {e}')
  Image.fromarray(image).save(args.out)
  print(f'wrote {args.out}')


if __name__ == '__main__':
  main()
