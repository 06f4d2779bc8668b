"""Where a run's test MSE comes from: the frame's scanner wedges vs the face.

  python experiments/mse_breakdown.py \\
      runs/reproduce/cuhk_casq/dae_conv/seed0/predictions/300 [more folders]

Many CUHK sketch scans do not cover the whole frame once aligned to their
photo, and the uncovered strip is black, mostly along the right edge; the
photos show no such wedge, so the best a photo -> sketch model can do there
is to paint each frame pixel with its mean over sketches. This script splits
each run's MSE into the frame (pixels within `--frame` px of an edge) and the
interior, and prints beside each part the MSE of the test set's own mean
image ("mean image"): the error left by a predictor that knows each pixel's
average over the test sketches but nothing about the photo.

`--ensemble` scores the pixel-wise mean of the folders' predictions instead
(e.g. one row's seeds): what averaging away the seeds' variance leaves.

Pairs each `<name>.png` with its CUHK sketch as `rescore_predictions.py` does
(same folder; numpy and pillow only).
"""
import argparse
import os
import pathlib

import numpy as np

from rescore_predictions import ROOT, pairs


def frame_mask(shape: tuple[int, int], width: int) -> np.ndarray:
  """True within `width` px of any edge of an (H, W) image."""
  mask = np.zeros(shape, bool)
  mask[:width] = mask[-width:] = True
  mask[:, :width] = mask[:, -width:] = True
  return mask


def load(folder: pathlib.Path, cuhk_dir: pathlib.Path
         ) -> tuple[np.ndarray, np.ndarray]:
  """(predictions, targets) in [0, 1], (N, H, W, C): C is 1 for the standard
  protocol's greyscale, 3 for the CASQ protocol's RGB."""
  preds, targets = [], []
  for pred, target in pairs(folder, cuhk_dir):
    preds.append(np.atleast_3d(pred) / 255)
    targets.append(np.atleast_3d(target) / 255)
  return np.stack(preds), np.stack(targets)


def breakdown(preds: np.ndarray, targets: np.ndarray, width: int) -> dict:
  """MSE of the frame and interior, their share of the squared error, and the
  test-set mean image's MSE on each."""
  error = ((preds - targets) ** 2).mean(-1)
  mean_image_error = ((targets - targets.mean(0)) ** 2).mean(-1)
  mask = frame_mask(targets.shape[1:3], width)
  out = {'mse': error.mean(), 'mean_image_mse': mean_image_error.mean()}
  for name, part in (('frame', mask), ('interior', ~mask)):
    out[name] = {'pixels': part.mean(),
                 'mse': error[:, part].mean(),
                 'share': error[:, part].sum() / error.sum(),
                 'mean_image_mse': mean_image_error[:, part].mean()}
  grey = targets.mean(-1)
  out['wedges'] = int(sum((t[mask] < 0.1).mean() > 0.02 for t in grey))
  return out


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('predictions', type=pathlib.Path, nargs='+',
                      help='predictions/<step> folders of runs')
  parser.add_argument('--frame', type=int, default=16,
                      help='width in px of the frame strip')
  parser.add_argument('--cuhk_dir', type=pathlib.Path, default=pathlib.Path(
      os.environ.get('F2S_CUHK_DIR', ROOT.parent / 'shared' / 'data' / 'cuhk')))
  parser.add_argument('--ensemble', action='store_true',
                      help='score the mean of all folders\' predictions')
  args = parser.parse_args()
  loaded = [(str(f), *load(f, args.cuhk_dir)) for f in args.predictions]
  if args.ensemble:
    # Each folder's PNGs pair in name order: equal targets mean one test set.
    first = loaded[0]
    for label, _, targets in loaded[1:]:
      if not np.array_equal(targets, first[2]):
        parser.error(f'--ensemble: {label} holds other test images than '
                     f'{first[0]}')
    loaded = [(f'mean of {len(loaded)} runs',
               np.mean([preds for _, preds, _ in loaded], axis=0),
               loaded[0][2])]
  for label, preds, targets in loaded:
    report(label, breakdown(preds, targets, args.frame), len(preds))


def report(label: str, b: dict, count: int) -> None:
  print(f'{label}: {count} predictions, mse={b["mse"]:.5f} '
        f'(mean image {b["mean_image_mse"]:.5f}); {b["wedges"]} targets '
        f'have >2% of the frame black')
  for name in ('frame', 'interior'):
    part = b[name]
    print(f'  {name:8s} {part["pixels"]:6.1%} of pixels: mse={part["mse"]:.5f}'
          f' ({part["share"]:.1%} of the squared error), mean image '
          f'{part["mean_image_mse"]:.5f}')

if __name__ == '__main__':
  main()
