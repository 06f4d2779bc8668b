"""A damaged prepared data set is named, file and remedy, in one error."""
import glob
import os
import shutil

import pytest

from f2s.datasets import load_source

LOAD = dict(builder_config='tiny')


@pytest.fixture(scope='module')
def prepared(tmp_path_factory):
  """A data_dir holding the prepared tiny demo data set."""
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  load_source('synthetic_face_sketch', 'test', data_dir=data_dir, **LOAD)
  return data_dir


@pytest.fixture
def data_dir(prepared, tmp_path):
  copy = str(tmp_path / 'tfds')
  shutil.copytree(prepared, copy)
  return copy


def _train_file(data_dir):
  (path,) = glob.glob(os.path.join(data_dir, 'synthetic_face_sketch', 'tiny',
                                   '*', '*-train.array_record-*'))
  return path


def _damage(path, how):
  if how == 'truncate':
    os.truncate(path, os.path.getsize(path) // 2)
  else:
    os.remove(path)


@pytest.mark.parametrize('how', ['truncate', 'remove'])
def test_a_damaged_split_file_is_named_with_the_remedy(data_dir, how):
  path = _train_file(data_dir)
  _damage(path, how)
  with pytest.raises(ValueError) as e:
    load_source('synthetic_face_sketch', 'train', data_dir=data_dir, **LOAD)
  message = str(e.value)
  assert message.startswith(f'{path}: the prepared data set is damaged (')
  assert f'remove {os.path.dirname(path)} and run again' in message
  assert '\n' not in message


def test_the_remedy_rebuilds_it(data_dir):
  path = _train_file(data_dir)
  _damage(path, 'truncate')
  shutil.rmtree(os.path.dirname(path))
  assert len(load_source('synthetic_face_sketch', 'train', data_dir=data_dir,
                         **LOAD)) == 24


def test_a_combined_split_loads_both_parts(prepared):
  parts = [len(load_source('synthetic_face_sketch', s, data_dir=prepared,
                           **LOAD)) for s in ('train', 'test')]
  assert len(load_source('synthetic_face_sketch', 'test+train',
                         data_dir=prepared, **LOAD)) == sum(parts)
  assert len(load_source('synthetic_face_sketch', 'train[:5]',
                         data_dir=prepared, **LOAD)) == 5


def test_damage_in_any_part_of_a_combined_split_is_named(data_dir):
  path = _train_file(data_dir)
  _damage(path, 'truncate')
  with pytest.raises(ValueError, match='the prepared data set is damaged'):
    load_source('synthetic_face_sketch', 'test+train', data_dir=data_dir,
                **LOAD)
