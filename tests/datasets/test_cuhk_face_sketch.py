"""CUHK builder: real build (counts, pairing, CASQ split) and bad layouts."""

import os
import pathlib
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

import f2s.datasets

SPLIT_SIZES = {'train': 88, 'test': 100, 'casq_train': 150, 'casq_test': 38}
REAL_DIR = pathlib.Path(f2s.datasets.default_cuhk_dir())
needs_real = pytest.mark.skipif(
    not (REAL_DIR / 'CUHK_testing_cropped_photos').is_dir(),
    reason=f'CUHK data not at {REAL_DIR}',
)


def _build(manual_dir, data_dir) -> tfds.core.DatasetBuilder:
  builder = tfds.builder('cuhk_face_sketch', data_dir=str(data_dir))
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir))
  )
  return builder


def _names(source) -> list[str]:
  return [source[i]['name'].decode() for i in range(len(source))]


@pytest.fixture(scope='session')
def real_sources(tmp_path_factory):
  if not (REAL_DIR / 'CUHK_testing_cropped_photos').is_dir():
    pytest.skip(f'CUHK data not at {REAL_DIR}')
  data_dir = tmp_path_factory.mktemp('tfds_cuhk')
  return {
      split: f2s.datasets.load_source(
          'cuhk_face_sketch', split, data_dir=str(data_dir), manual_dir=str(REAL_DIR)
      )
      for split in SPLIT_SIZES
  }


@needs_real
def test_real_counts_shapes_dtypes(real_sources):
  for split, size in SPLIT_SIZES.items():
    source = real_sources[split]
    assert len(source) == size, split
    for i in (0, size - 1):
      record = source[i]
      assert record['photo'].shape == (250, 200, 3)
      assert record['photo'].dtype == np.uint8
      assert record['sketch'].shape == (250, 200, 1)
      assert record['sketch'].dtype == np.uint8


@needs_real
@pytest.mark.parametrize('split,photos,sketches', [
    ('train', 'CUHK_training_cropped_photos', 'CUHK_training_cropped_sketches'),
    ('test', 'CUHK_testing_cropped_photos', 'CUHK_testing_cropped_sketches'),
])
def test_real_records_pair_photo_and_sketch_files(real_sources, split, photos, sketches):
  source = real_sources[split]
  sketch_files = sorted(os.listdir(REAL_DIR / sketches))
  for i in (0, 37, len(source) - 1):
    record = source[i]
    name = record['name'].decode()
    photo = np.asarray(Image.open(REAL_DIR / photos / f'{name}.jpg').convert('RGB'))
    np.testing.assert_array_equal(record['photo'], photo)
    # The README's rule, spelled out here independently of cuhk_layout.
    [sketch_file] = [
        f for f in sketch_files
        if f.lower().replace('-sz1', '').replace('f2-', 'f-').replace('m2-', 'm-')
        == f'{name}.jpg'
    ]
    sketch = np.asarray(Image.open(REAL_DIR / sketches / sketch_file).convert('L'))
    np.testing.assert_array_equal(record['sketch'][..., 0], sketch)


@needs_real
def test_real_casq_test_matches_study_rule(real_sources):
  def stems(folder):
    return [f.rsplit('.', 1)[0] for f in sorted(os.listdir(REAL_DIR / folder))]

  pool = stems('CUHK_testing_cropped_photos') + stems('CUHK_training_cropped_photos')
  positions = np.random.RandomState(3).permutation(188)[:38]
  expected_test = [pool[i] for i in positions]
  assert _names(real_sources['casq_test']) == expected_test
  assert sorted(_names(real_sources['casq_train'])) == sorted(
      set(pool) - set(expected_test)
  )


@needs_real
def test_real_each_protocol_covers_all_pairs_once(real_sources):
  standard = _names(real_sources['train']) + _names(real_sources['test'])
  casq = _names(real_sources['casq_train']) + _names(real_sources['casq_test'])
  assert len(set(standard)) == len(standard) == 188
  assert len(set(casq)) == len(casq) == 188
  assert set(standard) == set(casq)


def _assert_pairs_match(source):
  """Fake pairs carry one grey level in both images: pairing is right."""
  for i in range(len(source)):
    record = source[i]
    assert record['sketch'].shape == (250, 200, 1)
    assert abs(float(record['photo'].mean()) - float(record['sketch'].mean())) < 2


def test_fake_layout_builds_with_zips(fake_layout, zip_folder, tmp_path):
  zip_folder(fake_layout / 'CUHK_training_cropped_photos', top_folder=True)
  zip_folder(fake_layout / 'CUHK_testing_cropped_sketches', top_folder=False)
  builder = _build(fake_layout, tmp_path / 'tfds')
  for split, size in SPLIT_SIZES.items():
    source = builder.as_data_source(split)
    assert len(source) == size
    _assert_pairs_match(source)


def _assert_not_prepared(data_dir):
  builder = tfds.builder('cuhk_face_sketch', data_dir=str(data_dir))
  assert not builder.is_prepared()
  with pytest.raises(KeyError, match='not been generated'):
    builder.as_data_source('train')


def _break_missing_folder(root):
  os.rename(root / 'CUHK_testing_cropped_sketches', root / 'elsewhere')
  return 'CUHK_testing_cropped_sketches', 'found'


def _break_photo_without_sketch(root):
  (root / 'CUHK_training_cropped_sketches' / 'M2-007-01-sz1.jpg').unlink()
  return 'm-007-01.jpg', 'without a sketch'


def _break_sketch_without_photo(root):
  (root / 'CUHK_testing_cropped_photos' / 'm1-050-01.jpg').unlink()
  return 'm1-050-01-sz1.jpg', 'without a photo'


def _break_undecodable(root):
  (root / 'CUHK_training_cropped_photos' / 'f-003-01.jpg').write_bytes(b'not a jpeg')
  return 'f-003-01.jpg', 'cannot decode'


def _break_size(root):
  path = root / 'CUHK_training_cropped_sketches' / 'F2-010-01-sz1.jpg'
  Image.new('L', (250, 200), 128).save(path)
  return 'F2-010-01-sz1.jpg', '250 wide x 200 high; expected 200 wide x 250 high'


def _break_empty_folder(root):
  for path in (root / 'CUHK_testing_cropped_photos').iterdir():
    path.unlink()
  return 'CUHK_testing_cropped_photos', 'no images'


def _break_zip(root):
  shutil.rmtree(root / 'CUHK_training_cropped_photos')
  (root / 'CUHK_training_cropped_photos.zip').write_bytes(b'not a zip')
  return 'CUHK_training_cropped_photos.zip', 'not a readable zip file'


@pytest.mark.parametrize('break_layout', [
    _break_missing_folder, _break_photo_without_sketch, _break_sketch_without_photo,
    _break_undecodable, _break_size, _break_empty_folder, _break_zip,
])
def test_bad_layout_stops_build_naming_the_path(fake_layout, tmp_path, break_layout):
  where, expected = break_layout(fake_layout)
  with pytest.raises((ValueError, FileNotFoundError)) as error:
    _build(fake_layout, tmp_path / 'tfds')
  assert where in str(error.value) and expected in str(error.value)
  _assert_not_prepared(tmp_path / 'tfds')


def test_failed_build_leaves_nothing_then_corrected_build_succeeds(
    fake_layout, fake_layout_template, tmp_path
):
  # The last pair of the first split: its file is nearly written when the build stops.
  bad = fake_layout / 'CUHK_training_cropped_photos' / 'm-044-01.jpg'
  bad.write_bytes(b'\xff\xd8 truncated')
  data_dir = tmp_path / 'tfds'
  with pytest.raises(ValueError, match=f'{bad}: cannot decode'):
    _build(fake_layout, data_dir)
  _assert_not_prepared(data_dir)
  assert not list(data_dir.rglob('*.array_record*'))
  bad.write_bytes((fake_layout_template / bad.relative_to(fake_layout)).read_bytes())
  source = _build(fake_layout, data_dir).as_data_source('train')
  assert len(source) == 88


@pytest.mark.parametrize('make_dir', [False, True])
def test_missing_or_empty_manual_dir(tmp_path, make_dir):
  manual = tmp_path / 'cuhk'
  if make_dir:
    manual.mkdir()
  with pytest.raises(AssertionError, match=str(manual)):
    _build(manual, tmp_path / 'tfds')
  _assert_not_prepared(tmp_path / 'tfds')
