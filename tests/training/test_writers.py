"""Writers: metrics.jsonl lines (appended, or cut back to the resume step),
TensorBoard events, sample PNGs, the photo | sketch | prediction grid, and
the disabled writer."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from f2s.training import writers


def _lines(workdir):
  with open(workdir / writers.METRICS_FILE) as f:
    return [json.loads(line) for line in f]


def test_scalars_are_json_lines_appended_across_writers(tmp_path):
  writer = writers.MetricWriter(str(tmp_path))
  writer.write_scalars(5, 'train', {'loss': np.float32(0.25), 'lr': 1e-3})
  writer.write_scalars(10, 'eval', {'ssim': 0.5})
  writer.close()
  again = writers.MetricWriter(str(tmp_path))  # a resumed run appends
  again.write_scalars(np.int64(15), 'train', {'loss': 0.125})
  again.close()
  assert _lines(tmp_path) == [
      {'step': 5, 'split': 'train', 'loss': 0.25, 'lr': 1e-3},
      {'step': 10, 'split': 'eval', 'ssim': 0.5},
      {'step': 15, 'split': 'train', 'loss': 0.125}]
  events = os.listdir(tmp_path / 'tensorboard')
  assert events and all(e.startswith('events.out.tfevents') for e in events)


def test_resumed_writer_drops_what_was_logged_after_the_resume_step(
    tmp_path):
  writer = writers.MetricWriter(str(tmp_path))
  for step in (5, 10, 15):
    writer.write_scalars(step, 'train', {'loss': 1.0 / step})
  writer.close()
  resumed = writers.MetricWriter(str(tmp_path), resume_step=10)
  resumed.write_scalars(15, 'train', {'loss': 0.5})
  resumed.close()
  assert [(r['step'], r['loss']) for r in _lines(tmp_path)] == [
      (5, 0.2), (10, 0.1), (15, 0.5)]
  fresh = tmp_path / 'fresh'  # nothing logged yet: nothing to drop
  writers.MetricWriter(str(fresh), resume_step=0).close()
  assert _lines(fresh) == []


def test_grid_is_saved_as_png_named_after_the_step(tmp_path):
  grid = np.random.default_rng(0).integers(0, 256, (6, 9, 3), np.uint8)
  writer = writers.MetricWriter(str(tmp_path))
  path = writer.write_grid(42, grid)
  writer.close()
  assert path == str(tmp_path / writers.SAMPLES_DIR / 'step_000042.png')
  np.testing.assert_array_equal(np.asarray(Image.open(path)), grid)


def test_disabled_writer_writes_nothing(tmp_path):
  workdir = tmp_path / 'run'
  writer = writers.MetricWriter(str(workdir), enabled=False)
  writer.write_scalars(1, 'train', {'loss': 1.0})
  assert writer.write_grid(1, np.zeros((2, 2, 3), np.uint8)) is None
  writer.close()
  assert not workdir.exists()


@pytest.mark.parametrize('value_range', ['unit', 'symmetric'])
def test_sample_grid_layout(value_range):
  n, h, w, gap = 2, 4, 3, 2
  rng = np.random.default_rng(1)
  photo01 = rng.uniform(size=(n, h, w, 3)).astype(np.float32)
  sketch01 = rng.uniform(size=(n, h, w, 1)).astype(np.float32)
  prediction = rng.uniform(-0.5, 1.5, size=(n, h, w, 1)).astype(np.float32)
  scale = (lambda x: x) if value_range == 'unit' else (lambda x: x * 2 - 1)
  grid = writers.sample_grid(scale(photo01), scale(sketch01), prediction,
                             value_range=value_range, gap=gap)
  assert grid.dtype == np.uint8
  assert grid.shape == (n * h + (n - 1) * gap, 3 * w + 2 * gap, 3)

  def cell(row, col):
    top, left = row * (h + gap), col * (w + gap)
    return grid[top:top + h, left:left + w].astype(int)

  for row in range(n):
    np.testing.assert_allclose(cell(row, 0), photo01[row] * 255, atol=0.51)
    np.testing.assert_allclose(cell(row, 1), np.repeat(sketch01[row], 3, -1)
                               * 255, atol=0.51)
    np.testing.assert_array_equal(  # clipped to [0, 1], grey as RGB
        cell(row, 2), np.repeat(np.round(np.clip(prediction[row], 0, 1)
                                         * 255), 3, -1))
  assert (grid[h:h + gap] == 255).all()  # gap between rows
  assert (grid[:, w:w + gap] == 255).all()  # gaps between columns
  assert (grid[:, 2 * w + gap:2 * w + 2 * gap] == 255).all()
