"""What a user sees: JSON-lines and TensorBoard metrics, PNG sample grids."""
import json
import os
import sys
from collections.abc import Mapping

import numpy as np
from PIL import Image
from tensorboardX import SummaryWriter

from f2s import value_range as value_ranges

METRICS_FILE = 'metrics.jsonl'
SAMPLES_DIR = 'samples'


class MetricWriter:
  """Writes scalars to workdir/metrics.jsonl and TensorBoard event files.

  A disabled writer (processes other than 0) writes nothing. `resume_step`:
  the step a resumed run restarts after; what an interrupted run logged past
  it is dropped (metrics.jsonl lines, and TensorBoard events through
  `purge_step`), so the logs read as one uninterrupted run. A torn last
  line of metrics.jsonl is dropped in any case (`read_records`).
  """

  def __init__(self, workdir: str, enabled: bool = True,
               resume_step: int | None = None):
    self._enabled = enabled
    self._workdir = workdir
    self._jsonl = None
    self._tb = None
    if enabled:
      os.makedirs(workdir, exist_ok=True)
      path = os.path.join(workdir, METRICS_FILE)
      _drop_lines_after(path, resume_step)
      self._jsonl = open(path, 'a')
      self._tb = SummaryWriter(
          logdir=os.path.join(workdir, 'tensorboard'),
          purge_step=None if resume_step is None else resume_step + 1)

  def write_scalars(self, step: int, split: str,
                    scalars: Mapping[str, float]) -> None:
    if not self._enabled:
      return
    record = {'step': int(step), 'split': split}
    record.update({k: float(v) for k, v in scalars.items()})
    self._jsonl.write(json.dumps(record) + '\n')
    self._jsonl.flush()
    for key, value in scalars.items():
      self._tb.add_scalar(f'{split}/{key}', float(value), int(step))
    self._tb.flush()

  def write_grid(self, step: int, grid: np.ndarray, prefix: str = ''
                 ) -> str | None:
    """Saves a uint8 HxWx3 grid as samples/<prefix>step_XXXXXX.png; returns
    the path."""
    if not self._enabled:
      return None
    directory = os.path.join(self._workdir, SAMPLES_DIR)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f'{prefix}step_{int(step):06d}.png')
    Image.fromarray(grid).save(path)
    self._tb.add_image(f'{prefix}samples', grid, int(step), dataformats='HWC')
    self._tb.flush()
    return path

  def close(self) -> None:
    if self._enabled:
      self._jsonl.close()
      self._tb.close()


def read_records(path: str) -> list[tuple[str, dict]]:
  """(line, record) for each line of a metrics.jsonl.

  A torn last line (the process died while writing it: no newline, or not
  a JSON object) is left out with a note on stderr; it was written after
  the last checkpoint, so a resume drops it anyway. Any other bad line
  raises ValueError naming the file and line.
  """
  with open(path) as f:
    lines = [line for line in f if line.strip()]
  records = []
  for number, line in enumerate(lines, 1):
    try:
      record = json.loads(line) if line.endswith('\n') else None
    except ValueError:
      record = None
    if not isinstance(record, dict) or not isinstance(record.get('step'), int):
      if number == len(lines):
        print(f'note: {path}: dropping its torn last line {number} '
              f'({line.strip()[:60]!r}...), written after the last '
              'checkpoint', file=sys.stderr, flush=True)
        break
      raise ValueError(f'{path}: line {number} is not a JSON record with a '
                       f'step ({line.strip()[:80]!r}); fix or remove it')
    records.append((line, record))
  return records


def _drop_lines_after(path: str, step: int | None) -> None:
  """Keeps the metrics.jsonl records of steps <= `step` (all if None) and
  drops a torn last line (atomic rewrite)."""
  if not os.path.exists(path):
    return
  with open(path) as f:
    count = sum(1 for line in f if line.strip())
  keep = [line for line, record in read_records(path)
          if step is None or record['step'] <= step]
  if len(keep) == count:
    return
  with open(path + '.tmp', 'w') as f:
    f.writelines(keep)
  os.replace(path + '.tmp', path)


def _to_rgb_uint8(x: np.ndarray) -> np.ndarray:
  """[0, 1] float (N, H, W, C in {1, 3}) -> uint8 (N, H, W, 3)."""
  x = np.clip(np.asarray(x, np.float32), 0.0, 1.0)
  if x.shape[-1] == 1:
    x = np.repeat(x, 3, axis=-1)
  return np.round(x * 255.0).astype(np.uint8)


def sample_grid(photo: np.ndarray, sketch: np.ndarray, prediction: np.ndarray,
                *, value_range: str, gap: int = 2) -> np.ndarray:
  """One row per example: photo | target sketch | prediction, uint8 RGB.

  photo and sketch are in the data value range, prediction in [0, 1]; all
  share height and width (the padded size under the standard protocol).
  """
  columns = [_to_rgb_uint8(value_ranges.to_unit(photo, value_range)),
             _to_rgb_uint8(value_ranges.to_unit(sketch, value_range)),
             _to_rgb_uint8(prediction)]
  n, h, w, _ = columns[0].shape
  grid = np.full((n * h + (n - 1) * gap, 3 * w + 2 * gap, 3), 255, np.uint8)
  for row in range(n):
    for col, images in enumerate(columns):
      top, left = row * (h + gap), col * (w + gap)
      grid[top:top + h, left:left + w] = images[row]
  return grid
