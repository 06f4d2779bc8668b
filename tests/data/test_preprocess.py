"""Pure preprocessing: protocols, value ranges, padding, the augmentation warp."""

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from f2s.data import preprocess
from f2s.data.preprocess import DataSpec


def _batch(records, n=4):
  return (np.stack([r['photo'] for r in records[:n]]),
          np.stack([r['sketch'] for r in records[:n]]))


def test_casq_protocol_crops_centre_and_repeats_sketch(records):
  photo, sketch = _batch(records)
  out = preprocess.preprocess_batch(photo, sketch, DataSpec('casq', 'unit'))
  assert out['photo'].shape == (4, 200, 200, 3)
  assert out['sketch'].shape == (4, 200, 200, 3)
  assert out['photo'].dtype == out['sketch'].dtype == np.float32
  # Rows 25..224 of the record (the 200x200 centre), scaled to [0, 1].
  np.testing.assert_allclose(out['photo'][:, :, 0, 0] * 255,
                             np.broadcast_to(np.arange(25, 225), (4, 200)),
                             atol=1e-4)
  np.testing.assert_array_equal(out['sketch'][..., 1], out['sketch'][..., 0])
  np.testing.assert_array_equal(out['sketch'][..., 2], out['photo'][..., 0])


def test_standard_protocol_pads_symmetric_range(records):
  photo, sketch = _batch(records)
  spec = DataSpec('standard', 'symmetric', pad_to=(256, 208))
  out = preprocess.preprocess_batch(photo, sketch, spec)
  assert out['photo'].shape == (4, 256, 208, 3)
  assert out['sketch'].shape == (4, 256, 208, 1)
  assert out['photo'].min() >= -1 and out['photo'].max() <= 1
  valid = preprocess.crop_to_valid(out['photo'], spec)
  np.testing.assert_allclose((valid + 1) * 127.5, photo, atol=1e-4)
  # Reflect padding: 3 rows above mirror rows 3, 2, 1; 4 columns left
  # mirror columns 4..1.
  rows = (out['photo'][0, :4, 10, 0] + 1) * 127.5
  np.testing.assert_allclose(rows, [3, 2, 1, 0], atol=1e-4)
  cols = (out['photo'][0, 10, :5, 1] + 1) * 127.5
  np.testing.assert_allclose(cols, [4, 3, 2, 1, 0], atol=1e-4)


def test_crop_to_valid_inverts_padding_and_checks_shape(make_config):
  config = make_config('standard')
  x = np.random.default_rng(0).uniform(size=(2, 250, 200, 1)).astype(np.float32)
  padded = preprocess.pad_to_shape(x, (256, 208))
  assert padded.shape == (2, 256, 208, 1)
  np.testing.assert_array_equal(preprocess.crop_to_valid(padded, config.data), x)
  np.testing.assert_array_equal(
      preprocess.crop_to_valid(jnp.asarray(padded), config.data), x)
  casq = make_config('casq').data
  y = np.zeros((2, 200, 200, 3))
  assert preprocess.crop_to_valid(y, casq) is y
  with pytest.raises(ValueError, match=r'expected images of \(256, 208\)'):
    preprocess.crop_to_valid(x, config.data)


def _expected_source(pos, centre, scale, shift, size):
  return np.clip(centre + (pos - centre) / scale - shift, 0, size - 1)


@pytest.mark.parametrize('flip', [0.0, 1.0])
def test_warp_moves_pixels_to_the_expected_source_coordinates(records, flip):
  photo, sketch = _batch(records, 2)
  params = np.array([[flip, 3.0, -5.0, 1.0], [flip, -2.5, 1.75, 1.04]],
                    np.float32)
  spec = DataSpec('standard', 'unit')
  out = preprocess.preprocess_batch(photo, sketch, spec, params)
  valid = preprocess.crop_to_valid(out['photo'], spec) * 255
  y, x = np.arange(250.0), np.arange(200.0)
  for i, (_, dy, dx, s) in enumerate(params):
    want_y = _expected_source(y, 124.5, s, dy, 250)
    xs = 199 - x if flip else x
    want_x = _expected_source(xs, 99.5, s, dx, 200)
    np.testing.assert_allclose(valid[i, :, 7, 0], want_y, atol=2e-3)
    np.testing.assert_allclose(valid[i, 7, :, 1], want_x, atol=2e-3)
    np.testing.assert_allclose(valid[i, ..., 2], i, atol=1e-4)


def test_integer_shift_and_flip_are_exact(records):
  photo, sketch = _batch(records, 1)
  both = np.concatenate([photo, sketch], axis=-1)
  shifted = preprocess.warp(both, np.array([[0, 4, -3, 1]], np.float32),
                            (0, 0, 250, 200))
  np.testing.assert_array_equal(shifted[0, 4:, :197], both[0, :-4, 3:])
  flipped = preprocess.warp(both, np.array([[1, 0, 0, 1]], np.float32),
                            (0, 0, 250, 200))
  np.testing.assert_array_equal(flipped[0], both[0, :, ::-1])


def test_augmentation_is_identical_on_photo_and_sketch(records):
  photo, sketch = _batch(records, 8)
  spec = DataSpec('casq', 'symmetric', augment=True, flip=True, max_shift=8,
                  max_scale=0.05)
  rng = np.random.default_rng(1)
  params = np.stack([preprocess.sample_augmentation(rng, spec)
                     for _ in range(8)])
  out = preprocess.preprocess_batch(photo, sketch, spec, params)
  plain = preprocess.preprocess_batch(photo, sketch, spec)
  for c in range(3):
    np.testing.assert_array_equal(out['sketch'][..., c], out['photo'][..., 0])
  assert not np.allclose(out['photo'], plain['photo'])


def test_sample_augmentation_ranges():
  spec = DataSpec('casq', 'unit', augment=True, flip=True, max_shift=6,
                  max_scale=0.1)
  rng = np.random.default_rng(0)
  p = np.stack([preprocess.sample_augmentation(rng, spec) for _ in range(200)])
  assert set(np.unique(p[:, 0])) == {0.0, 1.0}
  assert np.abs(p[:, 1:3]).max() <= 6 and np.abs(p[:, 1:3]).max() > 4
  assert p[:, 3].min() >= 0.9 and p[:, 3].max() <= 1.1
  no_flip = DataSpec('casq', 'unit', augment=True, flip=False)
  q = np.stack([preprocess.sample_augmentation(rng, no_flip) for _ in range(20)])
  np.testing.assert_array_equal(q, np.tile([0, 0, 0, 1], (20, 1)))


def test_bad_config_and_records_raise():
  with pytest.raises(ValueError, match="protocol='cusq'"):
    DataSpec('cusq', 'unit')
  with pytest.raises(KeyError, match='config.data.value_range is missing'):
    preprocess.spec_from_config(ml_collections.ConfigDict(
        {'protocol': 'casq', 'augment': False}))
  record = {'photo': np.zeros((200, 200, 3), np.uint8),
            'sketch': np.zeros((250, 200, 1), np.uint8), 'name': b'x'}
  with pytest.raises(ValueError, match=r"record\['photo'\].*\(200, 200, 3\)"):
    preprocess.check_record(record)
