"""What a blurred but otherwise perfect sketch scores: a scale for FSIM/SSIM.

  python experiments/fsim_blur_reference.py [--sigmas=1,2,2.5,3]
      [--predictions=RUN/predictions/STEP]

Scores each standard-protocol test sketch (CUHK, 100 greyscale 250x200
targets) blurred with a Gaussian of each sigma (pixels) against itself, with
the project's metrics. With `--predictions` (a run's prediction PNGs, as
`--mode=eval` writes them) it scores those too, so a model's FSIM can be read
as "as good as the true sketch blurred by sigma".
"""
import argparse
import os

import jax.numpy as jnp
import numpy as np
from PIL import Image

from f2s import metrics
from f2s.datasets import load_source


def gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
  """(N, H, W) float images blurred, edges reflected: the SSIM window's
  separable Gaussian filter (f2s.metrics), over 3 sigma each side."""
  radius = int(np.ceil(3 * sigma))
  padded = np.pad(images, ((0, 0), (radius, radius), (radius, radius)),
                  mode='reflect')
  taps = metrics._gaussian_taps(2 * radius + 1, sigma)
  return np.asarray(metrics._valid_filter(padded[..., None], taps))[..., 0]


def score(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
  """Mean FSIM and SSIM of (N, H, W) images in [0, 1]."""
  a, b = jnp.asarray(pred)[..., None], jnp.asarray(target)[..., None]
  return (float(metrics.fsim(a, b, data_range=1.0).mean()),
          float(metrics.ssim(a, b, data_range=1.0).mean()))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--sigmas', default='1,2,2.5,3')
  parser.add_argument('--predictions', default=None)
  args = parser.parse_args()
  source = load_source('cuhk_face_sketch', 'test')
  records = [source[i] for i in range(len(source))]
  target = np.stack([r['sketch'][..., 0] for r in records]) / np.float32(255)
  print(f'{len(records)} test sketches, {target.shape[1]}x{target.shape[2]}')
  print(f'{"compared with the target":<32} {"FSIM":>7} {"SSIM":>7}')
  for sigma in (float(s) for s in args.sigmas.split(',')):
    fsim, ssim = score(gaussian_blur(target, sigma), target)
    print(f'{f"target blurred, sigma {sigma:g}":<32} {fsim:>7.4f} {ssim:>7.4f}')
  if args.predictions:
    names = [r['name'] for r in records]
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    pred = np.stack([np.asarray(Image.open(os.path.join(
        args.predictions, f'{name}.png')).convert('L')) for name in names])
    fsim, ssim = score(pred / np.float32(255), target)
    print(f'{"predictions":<32} {fsim:>7.4f} {ssim:>7.4f}')


if __name__ == '__main__':
  main()
