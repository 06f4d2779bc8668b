"""grain pipeline: batches, reproducibility, resume, sharding, eval coverage."""

import itertools

import jax
import numpy as np
import pytest

from f2s.data import pipeline
from f2s.data import preprocess


def _take(loader_or_iterator, n):
  return list(itertools.islice(iter(loader_or_iterator), n))


def _ids(batch, value_range='unit'):
  """Record ids (photo channel 2) of a batch."""
  scale = 255 if value_range == 'unit' else 127.5
  offset = 0 if value_range == 'unit' else 1
  return np.rint((batch['photo'][:, 0, 0, 2] + offset) * scale).astype(int)


@pytest.mark.parametrize('protocol,value_range,shape,channels', [
    ('casq', 'unit', (200, 200), 3),
    ('standard', 'symmetric', (256, 208), 1)])
def test_train_batches_shapes_and_ranges(records, make_spec, protocol,
                                         value_range, shape, channels):
  spec = make_spec(protocol, value_range, augment=True)
  batch, = _take(pipeline.train_loader(records, spec, seed=0,
                                       global_batch_size=8), 1)
  assert set(batch) == {'photo', 'sketch'}
  assert batch['photo'].shape == (8, *shape, 3)
  assert batch['sketch'].shape == (8, *shape, channels)
  low = 0.0 if value_range == 'unit' else -1.0
  for x in batch.values():
    assert x.dtype == np.float32 and x.min() >= low and x.max() <= 1.0


def test_epoch_visits_each_record_once_and_reshuffles(records, make_spec):
  spec = make_spec()
  batches = _take(pipeline.train_loader(records, spec, seed=3,
                                        global_batch_size=8), 6)
  epoch1 = np.concatenate([_ids(b) for b in batches[:3]])
  epoch2 = np.concatenate([_ids(b) for b in batches[3:]])
  np.testing.assert_array_equal(np.sort(epoch1), np.arange(24))
  np.testing.assert_array_equal(np.sort(epoch2), np.arange(24))
  assert not np.array_equal(epoch1, epoch2)
  assert not np.array_equal(epoch1, np.arange(24))


def test_seed_reproducibility_and_resume(records, make_spec):
  spec = make_spec(augment=True)

  def loader(seed):
    return pipeline.train_loader(records, spec, seed=seed,
                                 global_batch_size=4)

  first = _take(loader(0), 5)
  again = _take(loader(0), 5)
  other = _take(loader(1), 5)
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a['photo'], b['photo'])
    np.testing.assert_array_equal(a['sketch'], b['sketch'])
  assert not all(np.array_equal(a['photo'], b['photo'])
                 for a, b in zip(first, other))

  iterator = iter(loader(0))
  _take(iterator, 2)
  state = iterator.get_state()
  expected = _take(iterator, 3)
  resumed = iter(loader(0))
  resumed.set_state(state)
  for a, b in zip(expected, _take(resumed, 3)):
    np.testing.assert_array_equal(a['photo'], b['photo'])
    np.testing.assert_array_equal(a['sketch'], b['sketch'])
  np.testing.assert_array_equal(expected[0]['photo'], first[2]['photo'])


def test_augmentation_same_on_photo_and_sketch_and_varies(records, make_spec):
  spec = make_spec(augment=True)
  augmented, = _take(pipeline.train_loader(records, spec, seed=0,
                                           global_batch_size=16), 1)
  plain, = _take(pipeline.train_loader(records, make_spec(), seed=0,
                                       global_batch_size=16), 1)
  np.testing.assert_array_equal(_ids(augmented), _ids(plain))
  for c in range(3):
    np.testing.assert_array_equal(augmented['sketch'][..., c],
                                  augmented['photo'][..., 0])
  changed = [not np.allclose(a, p) for a, p in
             zip(augmented['photo'], plain['photo'])]
  assert all(changed)
  # Some examples are flipped: the column channel decreases along x.
  slopes = np.sign(augmented['photo'][:, 100, 101, 1]
                   - augmented['photo'][:, 100, 99, 1])
  assert set(slopes) == {-1.0, 1.0}


def test_process_shards_are_disjoint(records):
  spec = preprocess.DataSpec('casq', 'unit')
  shards = [
      np.concatenate([_ids(b) for b in _take(pipeline.make_train_loader(
          records, spec, seed=0, host_batch=4, shard_index=i, shard_count=2), 3)])
      for i in range(2)]
  assert set(shards[0]).isdisjoint(shards[1])
  np.testing.assert_array_equal(np.sort(np.concatenate(shards)), np.arange(24))


def test_batch_size_must_divide_devices_and_processes():
  assert pipeline.host_batch_size(16, process_count=2,
                                  local_device_count=4) == 8
  with pytest.raises(ValueError, match=r'global batch size 12 .* device count '
                     r'8 \(2 process\(es\) x 4 local device'):
    pipeline.host_batch_size(12, process_count=2, local_device_count=4)
  with pytest.raises(ValueError, match='global batch size 3 .* device count 2'):
    pipeline.host_batch_size(3, process_count=2, local_device_count=1)


def test_train_loader_rejects_batch_not_dividing_local_devices():
  assert jax.local_device_count() == 2
  spec = preprocess.DataSpec('casq', 'unit')
  records = [{'photo': np.zeros((250, 200, 3), np.uint8),
              'sketch': np.zeros((250, 200, 1), np.uint8)}] * 8
  assert len(next(iter(pipeline.train_loader(
      records, spec, seed=0, global_batch_size=4)))['photo']) == 4
  with pytest.raises(ValueError, match=r'global batch size 3 .*'
                     r'2 local device\(s\)'):
    pipeline.train_loader(records, spec, seed=0, global_batch_size=3)


def test_eval_covers_split_once_with_mask(records, make_spec):
  spec = make_spec('standard', augment=True)
  source = records[:10]
  batches = list(pipeline.eval_batches(source, spec, batch_size=4))
  assert len(batches) == 3
  np.testing.assert_array_equal(
      np.concatenate([b['mask'] for b in batches]), [1] * 10 + [0, 0])
  ids = np.concatenate([_ids(b) for b in batches])  # channel 2 is constant
  np.testing.assert_array_equal(ids[:10], np.arange(10))
  # No augmentation in eval: the valid region is the record itself.
  valid = preprocess.crop_to_valid(batches[0]['photo'], spec)
  np.testing.assert_allclose(valid * 255, [r['photo'] for r in source[:4]],
                             atol=1e-4)
  again = list(pipeline.eval_batches(source, spec, batch_size=4))
  for a, b in zip(batches, again):
    np.testing.assert_array_equal(a['photo'], b['photo'])
  assert batches[-1]['sketch'].shape == (4, 256, 208, 1)


def test_eval_splits_global_batches_across_processes(records, make_spec):
  spec = make_spec()
  source = records[:10]
  per_process = [list(pipeline.eval_batches(
      source, spec, batch_size=4, process_index=p, process_count=2))
      for p in range(2)]
  assert len(per_process[0]) == len(per_process[1]) == 3
  ids, masks = [], []
  for p in range(2):
    for b in per_process[p]:
      assert b['photo'].shape == (2, 200, 200, 3)
      masks.append(b['mask'])
      ids.append(_ids(b)[b['mask'] > 0])
  assert sum(m.sum() for m in masks) == 10
  np.testing.assert_array_equal(np.sort(np.concatenate(ids)), np.arange(10))
