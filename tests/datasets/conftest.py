"""Fixtures: small generated CUHK-like layouts (never the real images)."""

import io
import pathlib
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image

TEST_PHOTOS = 'CUHK_testing_cropped_photos'
TEST_SKETCHES = 'CUHK_testing_cropped_sketches'
TRAIN_PHOTOS = 'CUHK_training_cropped_photos'
TRAIN_SKETCHES = 'CUHK_training_cropped_sketches'


def fake_names() -> list[tuple[str, str, str, str]]:
  """(photo folder, photo file, sketch folder, sketch file) for 188 pairs."""
  names = [
      (TEST_PHOTOS, f'm1-{i:03d}-01.jpg', TEST_SKETCHES, f'm1-{i:03d}-01-sz1.jpg')
      for i in range(1, 101)
  ]
  for prefix in ('f', 'm'):
    names += [
        (TRAIN_PHOTOS, f'{prefix}-{i:03d}-01.jpg',
         TRAIN_SKETCHES, f'{prefix.upper()}2-{i:03d}-01-sz1.jpg')
        for i in range(1, 45)
    ]
  return names


def jpeg(value: int, mode: str, size=(200, 250)) -> bytes:
  """A flat JPEG whose grey level tags the pair it belongs to."""
  channels = 3 if mode == 'RGB' else 1
  array = np.full((size[1], size[0], channels), value, np.uint8)
  buffer = io.BytesIO()
  Image.fromarray(array[..., 0] if channels == 1 else array, mode).save(
      buffer, format='JPEG', quality=95
  )
  return buffer.getvalue()


def pair_value(index: int) -> int:
  return 30 + index


def write_layout(root: pathlib.Path) -> pathlib.Path:
  """Writes 188 flat-colour pairs in the CUFS layout under `root`.

  Testing sketches are RGB (as in the distribution), training ones greyscale.
  """
  for folder in (TEST_PHOTOS, TEST_SKETCHES, TRAIN_PHOTOS, TRAIN_SKETCHES):
    (root / folder).mkdir(parents=True)
  for index, (pdir, photo, sdir, sketch) in enumerate(fake_names()):
    value = pair_value(index)
    (root / pdir / photo).write_bytes(jpeg(value, 'RGB'))
    sketch_mode = 'RGB' if sdir == TEST_SKETCHES else 'L'
    (root / sdir / sketch).write_bytes(jpeg(value, sketch_mode))
  return root


@pytest.fixture(scope='session')
def fake_layout_template(tmp_path_factory) -> pathlib.Path:
  return write_layout(tmp_path_factory.mktemp('fake_cuhk') / 'cuhk')


@pytest.fixture
def fake_layout(fake_layout_template, tmp_path) -> pathlib.Path:
  """A fresh copy of the fake layout that a test may break."""
  return pathlib.Path(shutil.copytree(fake_layout_template, tmp_path / 'cuhk'))


def _zip_folder(folder: pathlib.Path, *, top_folder: bool) -> pathlib.Path:
  """Replaces `folder` by `folder.zip` (jpgs at the top or in a top folder)."""
  archive = folder.with_suffix('.zip')
  with zipfile.ZipFile(archive, 'w') as out:
    for path in sorted(folder.iterdir()):
      out.write(path, f'{folder.name}/{path.name}' if top_folder else path.name)
  shutil.rmtree(folder)
  return archive


@pytest.fixture
def zip_folder():
  return _zip_folder
