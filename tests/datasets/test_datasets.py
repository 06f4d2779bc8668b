"""load_source and default_cuhk_dir: registered builders, the CUHK
directory default, and errors that point to the manual download and the
demo data."""

import pathlib

import pytest
import tensorflow_datasets as tfds

import f2s.datasets
from f2s.datasets import cuhk_face_sketch


def _assert_not_prepared(data_dir):
  assert not tfds.builder('cuhk_face_sketch',
                          data_dir=str(data_dir)).is_prepared()


def _assert_points_to_download_and_demo(message):
  assert cuhk_face_sketch.MANUAL_DOWNLOAD_INSTRUCTIONS in message
  assert 'synthetic_face_sketch' in message


def test_importing_registers_both_builders():
  assert tfds.builder_cls('cuhk_face_sketch') is f2s.datasets.CuhkFaceSketch
  assert (tfds.builder_cls('synthetic_face_sketch')
          is f2s.datasets.SyntheticFaceSketch)


@pytest.mark.parametrize('make_dir', [False, True])
def test_missing_or_empty_manual_dir(tmp_path, make_dir):
  manual = tmp_path / 'cuhk'
  if make_dir:
    manual.mkdir()
  with pytest.raises(FileNotFoundError) as error:
    f2s.datasets.load_source(
        'cuhk_face_sketch', 'train', data_dir=str(tmp_path / 'tfds'),
        manual_dir=str(manual),
    )
  message = str(error.value)
  assert str(manual) in message
  _assert_points_to_download_and_demo(message)
  _assert_not_prepared(tmp_path / 'tfds')


def test_manual_dir_defaults_to_the_environment(tmp_path, monkeypatch):
  empty = tmp_path / 'from_env'
  empty.mkdir()
  monkeypatch.setenv(f2s.datasets.CUHK_DIR_ENV, str(empty))
  with pytest.raises(FileNotFoundError, match=str(empty)):
    f2s.datasets.load_source('cuhk_face_sketch', 'test',
                             data_dir=str(tmp_path / 'tfds'))


def test_load_source_missing_folder_hints_demo_data(fake_layout, tmp_path):
  (fake_layout / 'CUHK_testing_cropped_sketches').rename(
      fake_layout / 'elsewhere')
  with pytest.raises(FileNotFoundError) as error:
    f2s.datasets.load_source(
        'cuhk_face_sketch', 'train', data_dir=str(tmp_path / 'tfds'),
        manual_dir=str(fake_layout),
    )
  message = str(error.value)
  assert 'CUHK_testing_cropped_sketches' in message
  _assert_points_to_download_and_demo(message)


def test_unknown_dataset_is_named(tmp_path):
  with pytest.raises(tfds.core.registered.DatasetNotFoundError,
                     match='sketchy_faces'):
    f2s.datasets.load_source('sketchy_faces', 'train',
                             data_dir=str(tmp_path))


def test_default_cuhk_dir(monkeypatch):
  monkeypatch.delenv('F2S_CUHK_DIR', raising=False)
  repo = pathlib.Path(f2s.datasets.__file__).resolve().parents[2]
  assert f2s.datasets.default_cuhk_dir() == str(repo.parent / 'shared' / 'data' / 'cuhk')
  monkeypatch.setenv('F2S_CUHK_DIR', '/somewhere/cuhk')
  assert f2s.datasets.default_cuhk_dir() == '/somewhere/cuhk'
