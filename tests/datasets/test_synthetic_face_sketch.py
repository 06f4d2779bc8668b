"""Procedural faces and the synthetic builder."""

import dataclasses

import numpy as np
import pytest
import tensorflow_datasets as tfds

import f2s.datasets
from f2s.datasets import faces
from f2s.datasets.synthetic_face_sketch import render_example


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


@pytest.fixture(scope='module')
def tiny_builder(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp('tfds_synthetic'))
  f2s.datasets.load_source(
      'synthetic_face_sketch', 'train', data_dir=data_dir, builder_config='tiny'
  )
  return tfds.builder('synthetic_face_sketch/tiny', data_dir=data_dir)


def test_tiny_builder_reads_back(tiny_builder):
  train, test = tiny_builder.as_data_source('train'), tiny_builder.as_data_source('test')
  assert (len(train), len(test)) == (24, 8)
  names = {train[i]['name'] for i in range(24)} | {test[i]['name'] for i in range(8)}
  assert len(names) == 32
  for source, split in ((train, 'train'), (test, 'test')):
    record = source[5]
    assert record['photo'].shape == (250, 200, 3) and record['photo'].dtype == np.uint8
    assert record['sketch'].shape == (250, 200, 1) and record['sketch'].dtype == np.uint8
    # PNG storage is lossless and example i does not depend on the count.
    expected = render_example(0, split, 5)
    np.testing.assert_array_equal(record['photo'], expected['photo'])
    np.testing.assert_array_equal(record['sketch'], expected['sketch'])
  assert not np.array_equal(train[0]['photo'], test[0]['photo'])
