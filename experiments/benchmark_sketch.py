"""Times `python -m f2s.sketch`: the model per face, and a whole photo.

  python experiments/benchmark_sketch.py [--model=NAME | --workdir=RUN]
      [--photos=DIR] [--num_photos=20] [--size=1200x1600]

Makes --num_photos portrait photos in a temporary folder, JPEG: each a CUHK
test photo ($F2S_CUHK_DIR, default ../shared/data/cuhk beside this
repository; f2s's procedural faces without it) scaled 2.5-4x, turned by up
to 10 degrees and put on a --size background; or reads the image files of
--photos. After one warm-up photo (compilation), prints

- model GFLOP/face (XLA's cost analysis of its forward pass);
- model ms/face: the loaded, compiled model (`f2s.sketch.Sketcher`) on
  aligned faces, batch 1 and per face in a batch of 4 (median of --repeats);
- whole photo ms: `f2s.sketch.sketch_file` per photo (read, detect, align,
  sketch, write), median and mean over the photos after the first, and its
  stages timed apart (read + detect, align, model, write).

Wall-clock figures count time spent waiting for the CPU; on a machine busy
with other work, the process's CPU time (printed too) bounds what an idle
machine would take.
"""
import argparse
import glob
import math
import os
import statistics
import sys
import tempfile
import time

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmark import flops  # noqa: E402  (this script's folder)
from f2s import align, sketch  # noqa: E402  (after the path set-up)

CUHK_DIR = os.environ.get('F2S_CUHK_DIR', os.path.join(
    os.path.dirname(ROOT), 'shared', 'data', 'cuhk'))


def faces(count: int) -> tuple[list[np.ndarray], str]:
  """`count` uint8 (250, 200, 3) face photos, and what they are."""
  paths = sorted(glob.glob(
      os.path.join(CUHK_DIR, 'CUHK_testing_cropped_photos', '*.jpg')))
  if paths:
    return ([np.asarray(Image.open(p).convert('RGB')) for p in paths[:count]],
            f'CUHK test photos ({CUHK_DIR})')
  from f2s.datasets import faces as procedural
  return ([procedural.render_pair(0, i)[0] for i in range(count)],
          "f2s's procedural faces (no CUHK data found)")


def make_photos(folder: str, count: int, size: tuple[int, int]) -> str:
  """Writes `count` portrait JPEGs into `folder`; returns their source."""
  rng = np.random.default_rng(0)
  crops, source = faces(count)
  width, height = size
  for i, crop in enumerate(crops):
    scale = rng.uniform(2.5, 4.0) * width / 1200
    angle = math.radians(rng.uniform(-10, 10))
    turn = scale * complex(math.cos(angle), math.sin(angle))
    centre = complex(width / 2, height * 0.45) - turn * complex(100, 125)
    to_photo = np.array([[turn.real, -turn.imag, centre.real],
                         [turn.imag, turn.real, centre.imag]])
    face = Image.fromarray(align.warp(Image.fromarray(crop), to_photo,
                                      (height, width)))
    mask = Image.fromarray(align.warp(
        Image.new('RGB', (200, 250), (255, 255, 255)), to_photo,
        (height, width))[..., 0])
    background = np.clip(rng.normal(rng.uniform(60, 200, 3), 12,
                                    (height, width, 3)), 0, 255)
    photo = Image.fromarray(background.astype(np.uint8))
    photo.paste(face, (0, 0), mask)
    photo.save(os.path.join(folder, f'photo{i:03d}.jpg'), quality=90)
  return source


def read_and_detect(path: str) -> tuple[align.Photo, list[align.Face]]:
  photo = align.Photo(path)
  return photo, align.find_faces(photo)


def timed(fn, *args, **kwargs) -> tuple[float, object]:
  """(wall-clock ms, result) of one call."""
  start = time.perf_counter()
  result = fn(*args, **kwargs)
  return (time.perf_counter() - start) * 1e3, result


def cpu_timed(fn, *args) -> tuple[float, float]:
  """(wall-clock ms, CPU ms of this process, all threads) of one call."""
  wall, cpu = time.perf_counter(), time.process_time()
  fn(*args)
  return ((time.perf_counter() - wall) * 1e3,
          (time.process_time() - cpu) * 1e3)


def summary(values: list[float]) -> str:
  return (f'median {statistics.median(values):6.1f}  mean '
          f'{statistics.fmean(values):6.1f}  min {min(values):6.1f}')


def gflop_per_face(sketcher: sketch.Sketcher, crop: np.ndarray) -> float:
  """The model's forward FLOPs on one face, by XLA's cost analysis."""
  import jax
  model = sketcher.trained.build()
  forward = jax.jit(lambda v, p: model.apply(v, p, train=False)[0])
  return flops(forward.lower(sketcher.trained.variables,
                             sketcher.model_input(crop[None])).compile()) / 1e9


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  group = parser.add_mutually_exclusive_group()
  group.add_argument('--model', default=None, help='shipped model name')
  group.add_argument('--workdir', default=None, help='a training run')
  parser.add_argument('--photos', default=None,
                      help='folder of photos (default: made, see above)')
  parser.add_argument('--num_photos', type=int, default=20)
  parser.add_argument('--size', default='1200x1600',
                      help='WxH of the made photos')
  parser.add_argument('--repeats', type=int, default=20)
  args = parser.parse_args(argv)
  from absl import logging  # keep Orbax's INFO lines quiet
  logging.set_verbosity(logging.WARNING)

  start = time.perf_counter()
  sketcher = sketch.Sketcher(sketch.load_model(args.model, args.workdir))
  load_ms = (time.perf_counter() - start) * 1e3
  cfg = sketcher.trained.config.model
  print(f'model: {sketcher.trained.source} ({cfg.name}/{cfg.variant}), '
        f'loaded in {load_ms:.0f} ms')
  print(f'cpu: {os.cpu_count()} cores, load average before: '
        f'{", ".join(f"{x:.2f}" for x in os.getloadavg())}')

  with tempfile.TemporaryDirectory() as tmp:
    if args.photos:
      paths, _ = sketch.expand_inputs([args.photos])
      source = args.photos
    else:
      width, height = (int(x) for x in args.size.split('x'))
      source = make_photos(tmp, args.num_photos, (width, height))
      paths = sorted(glob.glob(os.path.join(tmp, '*.jpg')))
      source = f'{len(paths)} {width}x{height} JPEGs of {source}'
    out = os.path.join(tmp, 'out')
    os.makedirs(out)
    print(f'photos: {source}')

    first_ms, _ = timed(sketch.sketch_file, paths[0], sketcher, out)
    whole, whole_cpu = zip(*[cpu_timed(sketch.sketch_file, p, sketcher, out)
                             for p in paths[1:]])

    read_detect, align_ms, model_ms, write_ms, crops = [], [], [], [], []
    for path in paths[1:]:
      ms, (photo, found) = timed(read_and_detect, path)
      read_detect.append(ms)
      ms, aligned = timed(align.align, photo, found)
      align_ms.append(ms)
      batch = np.stack([a.pixels for a in aligned])
      crops.append(batch[0])
      ms, result = timed(sketcher, batch)
      model_ms.append(ms / len(batch))
      ms, _ = timed(sketch.write_png, os.path.join(out, 'stage.png'),
                    sketch.to_uint8(result[0]))
      write_ms.append(ms)

    sketcher(np.stack(crops[:4]))  # compiles the batch of 4
    single, single_cpu = zip(*[cpu_timed(sketcher, crops[i % len(crops)][None])
                               for i in range(args.repeats)])
    four = [timed(sketcher, np.stack(crops[:4]))[0] / 4
            for _ in range(args.repeats)]

  print(f'model GFLOP/face (XLA cost analysis): '
        f'{gflop_per_face(sketcher, crops[0]):.2f}')
  print(f'first photo (compiles the model): {first_ms:.0f} ms')
  print(f'model ms/face, batch 1:            {summary(single)}')
  print(f'  CPU ms (all threads):            {summary(single_cpu)}')
  print(f'model ms/face, batch 4:            {summary(four)}')
  print(f'whole photo ms ({len(whole)} photos):       {summary(whole)}')
  print(f'  CPU ms (all threads):            {summary(whole_cpu)}')
  print(f'  read + detect ms:                {summary(read_detect)}')
  print(f'  align ms/photo:                  {summary(align_ms)}')
  print(f'  model ms/face:                   {summary(model_ms)}')
  print(f'  write ms:                        {summary(write_ms)}')
  print(f'load average after: '
        f'{", ".join(f"{x:.2f}" for x in os.getloadavg())}')


if __name__ == '__main__':
  main()
