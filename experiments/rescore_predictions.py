"""Rescores a run's prediction PNGs with independent SSIM and FSIM code.

  python experiments/rescore_predictions.py \\
      runs/reproduce/cuhk_standard/casq_gan_plain_fsim/seed0/predictions/300

Reads every `<name>.png` of the folder, pairs it with its CUHK sketch (the
standard protocol's whole 250x200 greyscale frame, or the CASQ protocol's
200x200 centre crop in RGB, told apart by the PNGs' shape) and scores the pair
with `piq.fsim(..., chromatic=False)` and
`skimage.metrics.structural_similarity` (tf.image.ssim's settings), then
prints both means beside the run's own `metrics.json`.

It imports neither f2s nor JAX, so it runs where f2s does not: piq needs torch
(and its package __init__ torchvision, which is skipped), e.g.
  python3 -m venv /tmp/piqenv
  /tmp/piqenv/bin/pip install torch==2.13.0 numpy pillow scikit-image
  /tmp/piqenv/bin/pip install --no-deps piq==0.8.0
  /tmp/piqenv/bin/python experiments/rescore_predictions.py DIR
The CUHK folder is `../shared/data/cuhk` beside the repository, or
`$F2S_CUHK_DIR`, or `--cuhk_dir`.
"""
import argparse
import importlib.util
import json
import os
import pathlib
import sys
import types
from collections.abc import Iterator

import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parent.parent
SKETCH_FOLDERS = ('CUHK_testing_cropped_sketches',
                  'CUHK_training_cropped_sketches')


def _import_piq_fsim():
  """piq.fsim without piq/__init__.py, which imports torchvision."""
  spec = importlib.util.find_spec('piq')
  if spec is None:
    sys.exit('error: piq is not installed here (see this script\'s docstring)')
  package = types.ModuleType('piq')
  package.__path__ = list(spec.submodule_search_locations)
  sys.modules['piq'] = package
  from piq.fsim import fsim
  return fsim


def sketch_paths(cuhk_dir: pathlib.Path) -> dict[str, pathlib.Path]:
  """Photo stem -> sketch file, by the distribution's rule (`F2-005-01-sz1.jpg`
  -> `f-005-01`: drop -sz1, lower-case, f2/m2 -> f/m)."""
  paths = {}
  for folder in SKETCH_FOLDERS:
    directory = cuhk_dir / folder
    if not directory.is_dir():
      sys.exit(f'error: {directory} is not a folder: expected the CUHK '
               f'layout ({", ".join(SKETCH_FOLDERS)}) under {cuhk_dir}')
    for path in directory.iterdir():
      stem = path.stem.lower().removesuffix('-sz1')
      for prefix in ('f2-', 'm2-'):
        if stem.startswith(prefix):
          stem = stem[0] + stem[2:]
      paths[stem] = path
  return paths


def target_for(prediction: np.ndarray, sketch_file: pathlib.Path) -> np.ndarray:
  """The sketch as the protocol scores it, uint8 of the prediction's shape."""
  grey = np.asarray(Image.open(sketch_file).convert('L'))
  if grey.shape != (250, 200):
    sys.exit(f'error: {sketch_file} is {grey.shape[1]}x{grey.shape[0]}, '
             'expected 200x250')
  if prediction.shape == (250, 200):  # standard: the whole frame, grey
    return grey
  if prediction.shape == (200, 200, 3):  # CASQ: centre crop, RGB
    return np.repeat(grey[25:225, :, None], 3, axis=-1)
  sys.exit(f'error: prediction of shape {prediction.shape}: expected '
           '(250, 200) (standard) or (200, 200, 3) (CASQ)')


def pairs(folder: pathlib.Path, cuhk_dir: pathlib.Path
          ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
  """(prediction, sketch) uint8 arrays for each `<name>.png` of `folder`."""
  files = sorted(folder.glob('*.png'))
  if not files:
    sys.exit(f'error: no .png predictions in {folder}')
  sketches = sketch_paths(cuhk_dir)
  for path in files:
    if path.stem.lower() not in sketches:
      sys.exit(f'error: {path.name}: no CUHK sketch for {path.stem!r} in '
               f'{cuhk_dir}')
    pred = np.asarray(Image.open(path))
    yield pred, target_for(pred, sketches[path.stem.lower()])


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('predictions', type=pathlib.Path,
                      help='a predictions/<step> folder of a run')
  parser.add_argument('--cuhk_dir', type=pathlib.Path, default=pathlib.Path(
      os.environ.get('F2S_CUHK_DIR', ROOT.parent / 'shared' / 'data' / 'cuhk')))
  args = parser.parse_args()
  import torch
  from skimage.metrics import structural_similarity
  fsim = _import_piq_fsim()

  ssims, fsims = [], []
  for pred, target in pairs(args.predictions, args.cuhk_dir):
    a, b = pred.astype(np.float64) / 255, target.astype(np.float64) / 255
    channel_axis = -1 if a.ndim == 3 else None
    ssims.append(structural_similarity(
        a, b, data_range=1.0, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, channel_axis=channel_axis))

    def tensor(x):
      x = np.atleast_3d(x).transpose(2, 0, 1)[None]
      return torch.from_numpy(x.astype(np.float32))

    fsims.append(float(fsim(tensor(a), tensor(b), data_range=1.0,
                            chromatic=False)))
  print(f'{len(ssims)} predictions in {args.predictions}')
  print(f'independent: ssim={np.mean(ssims):.5f} (skimage) '
        f'fsim={np.mean(fsims):.5f} (piq)')
  reported = args.predictions / 'metrics.json'
  if reported.exists():
    metrics = json.loads(reported.read_text())
    print(f'reported:    ssim={metrics["ssim"]:.5f} fsim={metrics["fsim"]:.5f}'
          f' ({reported})')


if __name__ == '__main__':
  main()
