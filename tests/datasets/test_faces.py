"""Procedural faces: deterministic rendering, shapes, the look of photo and
sketch, lighting."""

import dataclasses

import numpy as np
import pytest

from f2s.datasets import faces


def test_render_pair_is_deterministic_in_seed_and_index():
  photo, sketch = faces.render_pair(7, 3)
  again_photo, again_sketch = faces.render_pair(7, 3)
  np.testing.assert_array_equal(photo, again_photo)
  np.testing.assert_array_equal(sketch, again_sketch)
  other_photo, other_sketch = faces.render_pair(8, 3)
  assert np.abs(photo.astype(int) - other_photo).mean() > 5
  assert np.abs(sketch.astype(int) - other_sketch).mean() > 2
  assert not np.array_equal(faces.render_pair(7, 4)[0], photo)


@pytest.mark.parametrize('index', range(4))
def test_photo_and_sketch_shapes_and_looks(index):
  photo, sketch = faces.render_pair(0, index)
  assert photo.shape == (250, 200, 3) and photo.dtype == np.uint8
  assert sketch.shape == (250, 200, 1) and sketch.dtype == np.uint8
  # Pencil on paper: mostly near-white with some dark strokes.
  assert (sketch > 230).mean() > 0.6
  assert (sketch < 100).mean() > 0.005
  # The photo is a coloured, lit scene, not paper.
  assert (photo > 230).all(axis=-1).mean() < 0.1
  assert photo.std(axis=(0, 1)).min() > 10


def test_sketch_is_not_a_filter_of_the_photo():
  # Lighting changes the photo a lot but the sketch's contours stay.
  params = faces.sample_face_params(np.random.default_rng(0))
  dim = dataclasses.replace(params, ambient=0.2, light=(0.0, 0.0, 1.0))
  assert np.abs(faces.render_photo(params).astype(int) - faces.render_photo(dim)).mean() > 5
  contours = faces.render_sketch(params) < 100
  assert (contours == (faces.render_sketch(dim) < 100)).mean() > 0.97
  grey = faces.render_photo(params).mean(-1)
  sketch = faces.render_sketch(params)[..., 0]
  assert abs(np.corrcoef(grey.ravel(), sketch.ravel())[0, 1]) < 0.5


def test_sampled_params_are_deterministic_and_in_range():
  params = [faces.sample_face_params(np.random.default_rng(s)) for s in range(20)]
  assert params[0] == faces.sample_face_params(np.random.default_rng(0))
  assert len(set(params)) == 20
  for p in params:
    assert np.linalg.norm(p.light) == pytest.approx(1.0)
    assert p.hair_style in (0, 1, 2, 3) and -0.8 <= p.yaw <= 0.8
    assert all(0 <= c <= 255 for c in p.skin + p.hair + p.lip + p.shirt)


def test_lighting_is_brighter_on_the_lit_side():
  params = faces.sample_face_params(np.random.default_rng(3))
  params = dataclasses.replace(params, roll=0.0, ambient=0.3)
  cx, cy = (int(round(v)) for v in params.center)
  rx = int(params.head_radii[0] * 0.6)
  for lx in (-0.6, 0.6):
    light = dataclasses.replace(params, light=(lx, 0.0, 0.8))
    factor = faces.lighting(light)
    assert factor.shape == (faces.HEIGHT, faces.WIDTH)
    assert factor.min() >= 0.3 - 1e-9 and factor.max() <= 1.0 + 1e-9
    left, right = factor[cy, cx - rx], factor[cy, cx + rx]
    assert (left > right + 0.1) if lx < 0 else (right > left + 0.1)
