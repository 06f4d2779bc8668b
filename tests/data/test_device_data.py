"""Device-resident training data: the numpy preprocessing on device, the
stream (epochs, seeds, positions), augmentation moving photo and sketch
together, and batches and training independent of the device count."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import linen as nn

from f2s import sharding
from f2s.data import device_data, preprocess
from f2s.training import state as state_lib, step as step_lib

H, W = preprocess.RECORD_SHAPE


def _spec(protocol='casq', value_range='unit', augment=False):
  return preprocess.DataSpec(protocol, value_range, augment=augment,
                             flip=True, max_shift=8.0, max_scale=0.05)


def _coordinate_records(n: int) -> list[dict]:
  """Photo channel 0 is the row, 1 the column, 2 the record id; the sketch is
  the row again. Bilinear warps keep such linear images exact."""
  y, x = np.mgrid[:H, :W]
  return [{'photo': np.stack([y, x, np.full_like(y, i)], -1).astype(np.uint8),
           'sketch': y[..., None].astype(np.uint8)} for i in range(n)]


def _mesh(count: int):
  if jax.device_count() < count:
    pytest.skip(f'needs {count} devices')
  return sharding.make_mesh(jax.devices()[:count])


def _batches(records, spec, *, devices=1, batch=4, seed=0, steps=range(3)):
  mesh = _mesh(devices)
  split = device_data.place(records, mesh, seed=seed, global_batch_size=batch)
  fn = device_data.global_batches(spec, mesh, batch)
  return [jax.device_get(fn(jnp.int32(s), split)) for s in steps]


def _ids(batch):
  return np.rint(batch['photo'][:, 0, 0, 2] * 255).astype(int)


@pytest.mark.parametrize('protocol,value_range', [('casq', 'unit'),
                                                  ('standard', 'symmetric')])
@pytest.mark.parametrize('augmented', [False, True])
def test_preprocessing_equals_the_numpy_preprocessing(protocol, value_range,
                                                      augmented):
  spec = _spec(protocol, value_range, augment=augmented)
  rng = np.random.default_rng(0)
  pixels = rng.integers(0, 256, (3, H, W, 4), dtype=np.uint8)
  params = np.stack([preprocess.sample_augmentation(rng, spec)
                     for _ in range(3)]) if augmented else None
  expected = preprocess.preprocess_pixels(pixels, spec, params)
  got = jax.device_get(jax.jit(
      lambda p, a: device_data.preprocess_pixels(p, spec, a))(pixels, params))
  for key in ('photo', 'sketch'):
    assert got[key].shape == expected[key].shape
    assert got[key].dtype == np.float32
    np.testing.assert_allclose(got[key], expected[key], rtol=0, atol=1e-6)


def test_epochs_visit_each_record_once_and_reshuffle():
  records = _coordinate_records(10)  # batches of 4 run across epoch ends
  batches = _batches(records, _spec(), steps=range(5))
  stream = np.concatenate([_ids(b) for b in batches])
  first, second = stream[:10], stream[10:]
  np.testing.assert_array_equal(np.sort(first), np.arange(10))
  np.testing.assert_array_equal(np.sort(second), np.arange(10))
  assert not np.array_equal(first, second)
  assert not np.array_equal(first, np.arange(10))


def test_same_seed_same_batches_and_any_step_is_reproducible():
  records = _coordinate_records(10)
  spec = _spec(augment=True)
  first = _batches(records, spec, steps=[0, 1, 7])
  again = _batches(records, spec, steps=[7])  # straight to step 7: resume
  other = _batches(records, spec, seed=1, steps=[0, 1, 7])
  for key in ('photo', 'sketch'):
    np.testing.assert_array_equal(again[0][key], first[2][key])
    assert not any(np.array_equal(a[key], b[key])
                   for a, b in zip(first, other))
  assert not np.array_equal(first[0]['photo'], first[1]['photo'])


def test_augmentation_moves_photo_and_sketch_together():
  records = _coordinate_records(8)
  augmented, = _batches(records, _spec(augment=True), batch=8, steps=[0])
  plain, = _batches(records, _spec(), batch=8, steps=[0])
  np.testing.assert_array_equal(_ids(augmented), _ids(plain))
  for c in range(3):
    np.testing.assert_array_equal(augmented['sketch'][..., c],
                                  augmented['photo'][..., 0])
  np.testing.assert_array_equal(  # each example stays one record
      augmented['photo'][..., 2],
      np.broadcast_to(augmented['photo'][:, :1, :1, 2], (8, 200, 200)))
  assert all(not np.allclose(a, p) for a, p in
             zip(augmented['photo'], plain['photo']))
  # Some examples are flipped: the column channel decreases along x.
  slopes = np.sign(augmented['photo'][:, 100, 101, 1]
                   - augmented['photo'][:, 100, 99, 1])
  assert set(slopes) == {-1.0, 1.0}


def test_global_batch_does_not_depend_on_the_device_count():
  records = _coordinate_records(10)
  spec = _spec('standard', 'symmetric', augment=True)
  one = _batches(records, spec, devices=1, steps=[0, 3])
  two = _batches(records, spec, devices=2, steps=[0, 3])
  for a, b in zip(one, two):
    for key in ('photo', 'sketch'):
      np.testing.assert_allclose(a[key], b[key], rtol=0, atol=1e-6)


class _TinyNet(nn.Module):
  @nn.compact
  def __call__(self, photo, *, train: bool = False):
    return nn.Conv(3, (3, 3))(photo), {}


def _train(as_float64, devices: int, steps: int = 3):
  mesh = _mesh(devices)
  model = _TinyNet()
  tx = state_lib.make_optimizer(ml_collections.ConfigDict(dict(
      learning_rate=1e-2, lr_schedule='constant', warmup_steps=0,
      num_steps=steps, b1=0.9, b2=0.999, weight_decay=0.0,
      grad_clip_norm=1.0)))
  spec = _spec(augment=True)
  # Made in float32, then cast: float64 parameters make the step compute in
  # float64 on the (float32, exactly equal) batches.
  state = sharding.replicate(as_float64(jax.device_get(
      state_lib.create_train_state(model, tx, (1, 200, 200, 3), seed=0))),
      mesh)
  per_device = step_lib.make_train_step(
      model, tx, terms={'bce': 1.0}, kl_weight=0.0, value_range='unit')
  fn = sharding.data_parallel(device_data.with_device_batch(
      per_device, device_data.make_device_batch(spec, mesh, 4)), mesh)
  split = device_data.place(_coordinate_records(6), mesh, seed=0,
                            global_batch_size=4)
  for _ in range(steps):
    state, metrics = fn(state, split)
  return jax.device_get(state), jax.device_get(metrics)


def test_training_on_one_and_two_devices_agrees(as_float64):
  """In float64: one and two devices sum the weight gradient's 160,000
  products per step in other orders, and Adam scales such rounding noise up
  towards the learning rate; in float32 that is ~1e-6 here and could pass
  1e-5 on another CPU. float64's unit roundoff is 2^29 ~ 5e8 times smaller,
  so the same growth stays far below 1e-9, while two devices that trained on
  other batches or other augmentations would differ by more than 1e-3."""
  with jax.enable_x64(True):
    (one, m1), (two, m2) = _train(as_float64, 1), _train(as_float64, 2)
  assert int(one.step) == int(two.step) == 3
  assert one.params['Conv_0']['kernel'].dtype == np.float64
  for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(two)):
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)
  np.testing.assert_allclose(m1['loss'], m2['loss'], rtol=0, atol=1e-9)


def test_mode_chooses_by_size_and_rejects_unknown_modes():
  fits = device_data.MAX_BYTES_PER_DEVICE // device_data.RECORD_BYTES
  assert device_data.use_device_data('auto', fits, 1)
  assert not device_data.use_device_data('auto', fits + 1, 1)
  assert device_data.use_device_data('auto', 2 * fits, 2)  # a shard each
  assert device_data.use_device_data('always', 10 * fits, 1)
  assert not device_data.use_device_data('never', 1, 1)
  with pytest.raises(ValueError, match="device_resident='sometimes'"):
    device_data.use_device_data('sometimes', 1, 1)


def test_place_rejects_a_split_smaller_than_a_batch():
  with pytest.raises(ValueError, match='3 records, fewer than one global '
                     'batch'):
    device_data.place(_coordinate_records(3), _mesh(1), seed=0,
                      global_batch_size=4)
