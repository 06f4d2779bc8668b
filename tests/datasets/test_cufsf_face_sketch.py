"""The CUFSF builder: pairing, alignment as f2s.sketch aligns, skipped pairs
recorded, a stale build refused, and the dev slice when it is present."""
import pathlib

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image
from skimage import data as skimage_data

from f2s import align
from f2s.datasets import cufsf_face_sketch, default_cufsf_dir, load_source

NAME = 'cufsf_face_sketch'


def _layout(root: pathlib.Path) -> pathlib.Path:
  """astronaut: photo and its grey copy as the sketch; blank: no face."""
  (root / 'photos').mkdir(parents=True)
  (root / 'sketches').mkdir()
  astronaut = Image.fromarray(skimage_data.astronaut())
  astronaut.save(root / 'photos' / 'astronaut.jpg', quality=95)
  astronaut.convert('L').save(root / 'sketches' / 'astronaut.png')
  blank = Image.new('RGB', (300, 400), (128, 128, 128))
  blank.save(root / 'photos' / 'blank.jpg')
  blank.save(root / 'sketches' / 'blank.jpg')
  return root


def test_pairs_are_aligned_as_users_photos_and_failures_recorded(tmp_path):
  manual = _layout(tmp_path / 'cufsf')
  source = load_source(NAME, 'test', data_dir=str(tmp_path / 'tfds'),
                       manual_dir=str(manual))
  assert len(source) == 1
  record = source[0]
  assert record['name'] in ('astronaut', b'astronaut')
  assert record['photo'].shape == (250, 200, 3)
  assert record['sketch'].shape == (250, 200, 1)
  photo = align.Photo(str(manual / 'photos' / 'astronaut.jpg'))
  expected = align.align(photo, align.find_faces(photo)[:1])[0].pixels
  np.testing.assert_array_equal(record['photo'], expected)
  # The eyes of the aligned sketch lie on the template, as the photo's do:
  # within the 4 pixels f2s.align measured for re-detection on its crops
  # (its REFINE_STEPS note).
  eyes = align.refine(np.repeat(record['sketch'], 3, axis=-1))
  assert eyes is not None
  assert np.abs(eyes - align.TEMPLATE).max() <= 4
  info = tfds.builder(NAME, data_dir=str(tmp_path / 'tfds')).info
  assert info.metadata['skipped'] == [
      {'name': 'blank', 'reason': 'no upright, frontal face found in the photo'}]
  assert info.metadata['source']['pairs'] == 2


def test_a_build_from_other_files_is_refused(tmp_path):
  manual = _layout(tmp_path / 'cufsf')
  kwargs = dict(data_dir=str(tmp_path / 'tfds'), manual_dir=str(manual))
  load_source(NAME, 'test', **kwargs)
  other = _layout(tmp_path / 'other')
  with pytest.raises(ValueError, match='was built from .*cufsf.*remove'):
    load_source(NAME, 'test', data_dir=kwargs['data_dir'],
                manual_dir=str(other))
  Image.new('RGB', (8, 8)).save(manual / 'photos' / 'new.jpg')
  Image.new('RGB', (8, 8)).save(manual / 'sketches' / 'new.jpg')
  with pytest.raises(ValueError, match='before the files there changed'):
    load_source(NAME, 'test', **kwargs)


def test_bad_layouts_are_named(tmp_path):
  manual = _layout(tmp_path / 'cufsf')
  (manual / 'sketches' / 'blank.jpg').unlink()
  with pytest.raises(ValueError, match=r'photos/blank.jpg has no partner in '
                     r'sketches/'):
    cufsf_face_sketch.find_pairs(manual)
  (manual / 'photos' / 'astronaut.png').write_bytes(b'')
  with pytest.raises(ValueError, match='astronaut.jpg and astronaut.png'):
    cufsf_face_sketch.find_pairs(manual)
  with pytest.raises(FileNotFoundError, match='no such folder'):
    cufsf_face_sketch.find_pairs(tmp_path / 'missing')
  with pytest.raises(FileNotFoundError, match='CUFSF data not found'):
    load_source(NAME, 'test', data_dir=str(tmp_path / 'tfds'),
                manual_dir=str(tmp_path / 'missing'))
  text = tmp_path / 'text'
  (text / 'photos').mkdir(parents=True)
  (text / 'sketches').mkdir()
  (text / 'photos' / 'a.jpg').write_text('not an image')
  (text / 'sketches' / 'a.jpg').write_text('not an image')
  with pytest.raises(ValueError, match=r'photos/a.jpg: not an image'):
    load_source(NAME, 'test', data_dir=str(tmp_path / 'tfds2'),
                manual_dir=str(text))


@pytest.mark.skipif(not pathlib.Path(default_cufsf_dir()).is_dir(),
                    reason='the CUFSF dev slice (../shared/data/cufsf_dev) '
                    'is not on this machine')
def test_dev_slice_builds_with_every_face_found(tmp_path):
  source = load_source(NAME, 'test', data_dir=str(tmp_path))
  assert len(source) == 85
  info = tfds.builder(NAME, data_dir=str(tmp_path)).info
  assert info.metadata['skipped'] == []
  sketches = np.stack([source[i]['sketch'] for i in range(len(source))])
  # Artist sketches: light paper around dark lines, not photos.
  assert np.median(sketches) > 180
