"""The exported ONNX model against JAX: file size and ms per face.

  python experiments/benchmark_export.py [--model=NAME | --workdir=RUN]
      [--repeats=20]

Exports the model (`f2s.export`) to a temporary file, then times the loaded
models of both runtimes, `f2s.sketch.Sketcher` (JAX, compiled) and
`f2s.sketch.OnnxSketcher` (onnxruntime's CPU provider), on the same aligned
faces (CUHK test photos, else f2s's procedural faces, as
experiments/benchmark_sketch.py): batch 1, and per face in a batch of 4,
median of --repeats after a warm-up call; and their largest difference.
Wall-clock figures count time spent waiting for the CPU; the process's CPU
time (all threads) is printed beside them.
"""
import argparse
import os
import sys
import tempfile
import time

import jax
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmark_sketch import cpu_timed, faces, summary  # noqa: E402
from f2s import export, sketch  # noqa: E402  (after the path set-up)


def per_face(sketcher, crops: np.ndarray, repeats: int
             ) -> tuple[list[float], list[float]]:
  """(wall ms, CPU ms) per face of `sketcher(crops)`, after a warm-up."""
  sketcher(crops)
  wall, cpu = zip(*[cpu_timed(sketcher, crops) for _ in range(repeats)])
  return [w / len(crops) for w in wall], [c / len(crops) for c in cpu]


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  group = parser.add_mutually_exclusive_group()
  group.add_argument('--model', default=None, help='shipped model name')
  group.add_argument('--workdir', default=None, help='a training run')
  parser.add_argument('--repeats', type=int, default=20)
  args = parser.parse_args(argv)
  from absl import logging  # keep Orbax's INFO lines quiet
  logging.set_verbosity(logging.WARNING)

  trained = sketch.load_model(args.model, args.workdir)
  cfg = trained.config.model
  print(f'model: {trained.source} ({cfg.name}/{cfg.variant})')
  print(f'cpu: {os.cpu_count()} cores, load average before: '
        f'{", ".join(f"{x:.2f}" for x in os.getloadavg())}')
  crops, source = faces(4)
  crops = np.stack(crops)
  print(f'faces: {source}')
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, 'model.onnx')
    start = time.perf_counter()
    size = export.export(trained, path)
    arrays = sum(a.nbytes for a in jax.tree.leaves(trained.variables))
    print(f'export: {time.perf_counter() - start:.1f} s, file '
          f'{size / 2**20:.2f} MiB ({size} bytes); the variables: '
          f'{arrays / 2**20:.2f} MiB')
    runtimes = {'jax': sketch.Sketcher(trained),
                'onnxruntime': sketch.OnnxSketcher(path)}
    outputs = {name: s(crops) for name, s in runtimes.items()}
    print('max abs difference, onnxruntime vs jax (4 faces): '
          f'{np.abs(outputs["onnxruntime"] - outputs["jax"]).max():.2e}')
    for name, sketcher in runtimes.items():
      for batch in (1, 4):
        wall, cpu = per_face(sketcher, crops[:batch], args.repeats)
        print(f'{name:12s} ms/face, batch {batch}: {summary(wall)}   '
              f'CPU ms: {summary(cpu)}')
  print(f'load average after: '
        f'{", ".join(f"{x:.2f}" for x in os.getloadavg())}')


if __name__ == '__main__':
  main()
