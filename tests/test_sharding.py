"""Data parallelism on two CPU devices: the mesh, replicated state, sharded
global batches and the jit(shard_map) wrapper; which layers import it."""
import ast
import pathlib

import jax
import numpy as np
import pytest
from jax import lax
from jax.sharding import PartitionSpec as P

from f2s import sharding


def test_mesh_spans_all_devices_by_default():
  mesh = sharding.make_mesh()
  assert mesh.axis_names == (sharding.AXIS,)
  assert list(mesh.devices) == jax.devices() and mesh.size == 2
  one = sharding.make_mesh(jax.devices()[1:], axis_name='d')
  assert one.axis_names == ('d',) and list(one.devices) == jax.devices()[1:]


def test_replicate_puts_a_full_copy_on_every_device():
  mesh = sharding.make_mesh()
  tree = sharding.replicate({'w': np.arange(6.0).reshape(2, 3)}, mesh)
  w = tree['w']
  assert w.sharding.is_fully_replicated
  assert {s.device for s in w.addressable_shards} == set(jax.devices())
  for shard in w.addressable_shards:
    np.testing.assert_array_equal(shard.data, np.arange(6.0).reshape(2, 3))


def test_global_batch_shards_rows_and_takes_only_keys():
  mesh = sharding.make_mesh()
  photo = np.arange(8.0).reshape(4, 2)
  batch = sharding.global_batch({'photo': photo, 'name': ['a', 'b']}, mesh,
                                ('photo',))
  assert set(batch) == {'photo'}
  shards = sorted(batch['photo'].addressable_shards,
                  key=lambda s: s.index[0].start)
  assert [s.device for s in shards] == jax.devices()
  np.testing.assert_array_equal(shards[0].data, photo[:2])
  np.testing.assert_array_equal(shards[1].data, photo[2:])


def test_global_batch_checks_keys():
  mesh = sharding.make_mesh(jax.devices()[:1])
  with pytest.raises(KeyError, match='sketch'):
    sharding.global_batch({'photo': np.zeros((2, 4, 4, 3))}, mesh,
                          ('photo', 'sketch'))


def test_global_batch_must_divide_local_devices():
  with pytest.raises(ValueError, match="3 \\(key 'photo'\\).*2 devices"):
    sharding.global_batch({'photo': np.zeros((3, 2))}, sharding.make_mesh(),
                          ('photo',))


@pytest.mark.parametrize('donate', [True, False])
def test_data_parallel_gives_each_device_its_rows(donate):
  mesh = sharding.make_mesh()

  def per_device(state, rows):  # state + the psum of each device's row sums
    total = lax.psum(rows.sum(), sharding.AXIS)
    return state + total, rows * lax.axis_index(sharding.AXIS)

  fn = sharding.data_parallel(per_device, mesh,
                              out_specs=(P(), P(sharding.AXIS)), donate=donate)
  state = sharding.replicate(np.zeros(2, np.float32), mesh)
  rows = sharding.global_batch({'x': np.arange(4.0, dtype=np.float32)}, mesh,
                               ('x',))['x']
  new_state, scaled = fn(state, rows)
  np.testing.assert_array_equal(new_state, [6.0, 6.0])
  np.testing.assert_array_equal(scaled, [0.0, 0.0, 2.0, 3.0])
  assert state.is_deleted() == donate


def _f2s_imports(path: pathlib.Path) -> set[str]:
  """The f2s modules a source file imports, as dotted names."""
  names = set()
  for node in ast.walk(ast.parse(path.read_text(), str(path))):
    if isinstance(node, ast.Import):
      names.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      names.update(f'{node.module}.{a.name}' for a in node.names)
  return {n for n in names if n.startswith('f2s.')}


@pytest.mark.parametrize('lower', ['data', 'datasets', 'models'])
def test_lower_layers_never_import_training(lower):
  # The mesh and sharding helpers live above both layers, in f2s.sharding.
  package = pathlib.Path(sharding.__file__).parent / lower
  offending = {
      f'{path.name}: {name}' for path in sorted(package.glob('*.py'))
      for name in _f2s_imports(path) if name.startswith('f2s.training')}
  assert not offending
  assert list(package.glob('*.py'))
