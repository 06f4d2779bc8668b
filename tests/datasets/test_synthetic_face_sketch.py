"""The synthetic builder: the tiny config builds and reads back the
rendered pairs losslessly."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

import f2s.datasets
from f2s.datasets.synthetic_face_sketch import render_example


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
