"""TFDS builder for the CUHK student face-sketch pairs (CUFS, student part).

Manual download. Written as array_record and read with `as_data_source`, so it
builds and reads without TensorFlow: images are validated and encoded to PNG
bytes here (TFDS would call TensorFlow to encode a numpy array).
"""

import dataclasses
import io
import os
import pathlib
import zipfile
from collections.abc import Iterator

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from f2s.datasets import cuhk_layout
from f2s.datasets.array_record_builder import ArrayRecordBuilder

_HEIGHT, _WIDTH = cuhk_layout.IMAGE_HW

MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Get the CUHK Face Sketch database (CUFS), student part ("CUHK student
database"), from the MMLab CUHK site
(http://mmlab.ie.cuhk.edu.hk/archive/facesketch.html; research use only).
Put its four folders (or the same four as .zip files) directly in the manual
directory:
  {cuhk_layout.TEST_PHOTOS}/    (100 photos, e.g. f-039-01.jpg)
  {cuhk_layout.TEST_SKETCHES}/  (100 sketches, e.g. f-039-01-sz1.jpg)
  {cuhk_layout.TRAIN_PHOTOS}/   (88 photos, e.g. f-005-01.jpg)
  {cuhk_layout.TRAIN_SKETCHES}/ (88 sketches, e.g. F2-005-01-sz1.jpg)
or {cuhk_layout.TRAIN_PHOTOS}.zip etc. (the jpgs at the top or inside a top
folder of the same name). Every image is 200 wide x 250 high.
The manual directory is the `manual_dir` argument of
f2s.datasets.load_source (default: $F2S_CUHK_DIR, else <repo>/../shared/data/cuhk).
"""


@dataclasses.dataclass(frozen=True)
class _Folder:
  """One of the four image folders, as a directory or a zip file."""

  path: pathlib.Path
  # file name -> path inside the directory or member name inside the zip
  files: dict[str, str]

  @property
  def is_zip(self) -> bool:
    return self.path.suffix == '.zip'

  def where(self, file_name: str) -> str:
    """A readable location of `file_name` for error messages."""
    if self.is_zip:
      return f'{self.path}::{self.files[file_name]}'
    return str(self.path / file_name)

  def read(self, file_name: str) -> bytes:
    if self.is_zip:
      with zipfile.ZipFile(self.path) as archive:
        return archive.read(self.files[file_name])
    return (self.path / file_name).read_bytes()


def _is_image_name(name: str) -> bool:
  return not name.startswith('.') and name.lower().endswith(
      cuhk_layout.IMAGE_EXTENSIONS
  )


def _zip_files(path: pathlib.Path) -> dict[str, str]:
  try:
    with zipfile.ZipFile(path) as archive:
      members = archive.namelist()
  except zipfile.BadZipFile as e:
    raise ValueError(f'{path}: not a readable zip file ({e})') from e
  files: dict[str, str] = {}
  for member in members:
    parts = member.split('/')
    if '__MACOSX' in parts or not _is_image_name(parts[-1]):
      continue
    if parts[-1] in files:
      raise ValueError(
          f'{path}: {files[parts[-1]]!r} and {member!r} have the same file'
          ' name; expected one image per name'
      )
    files[parts[-1]] = member
  return files


def find_folder(manual_dir: pathlib.Path, name: str) -> _Folder:
  """The folder `name` under `manual_dir`, as a directory or `<name>.zip`."""
  directory, archive = manual_dir / name, manual_dir / f'{name}.zip'
  if directory.is_dir():
    folder = _Folder(
        directory,
        {p.name: p.name for p in directory.iterdir() if _is_image_name(p.name)},
    )
  elif archive.is_file():
    folder = _Folder(archive, _zip_files(archive))
  else:
    raise FileNotFoundError(
        f'{manual_dir}: neither {name}/ nor {name}.zip found; expected the'
        f' four CUFS student folders there.\n{MANUAL_DOWNLOAD_INSTRUCTIONS}'
    )
  if not folder.files:
    raise ValueError(
        f'{folder.path}: contains no images; expected'
        f' {"/".join(cuhk_layout.IMAGE_EXTENSIONS)} files'
    )
  return folder


def decode_image(data: bytes, where: str, mode: str) -> np.ndarray:
  """Decodes to uint8 (250, 200, C) in PIL `mode` ('RGB' or 'L').

  Raises ValueError naming `where` when the bytes are not an image or the
  image is not 200 wide x 250 high.
  """
  try:
    with Image.open(io.BytesIO(data)) as image:
      image.load()
      converted = image.convert(mode)
  except (OSError, SyntaxError, ValueError) as e:
    raise ValueError(
        f'{where}: cannot decode as an image ({e}); expected a'
        f' {_WIDTH}x{_HEIGHT} JPEG'
    ) from e
  if converted.size != (_WIDTH, _HEIGHT):
    width, height = converted.size
    raise ValueError(
        f'{where}: image is {width} wide x {height} high; expected'
        f' {_WIDTH} wide x {_HEIGHT} high'
    )
  array = np.asarray(converted, dtype=np.uint8)
  return array if array.ndim == 3 else array[..., None]


def encode_png(array: np.ndarray) -> bytes:
  """PNG bytes of a uint8 (H, W, 1 or 3) array (TFDS would need TF for this)."""
  image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
  buffer = io.BytesIO()
  # Low compression: the build is CPU bound and the data is small.
  image.save(buffer, format='PNG', compress_level=1)
  return buffer.getvalue()


def image_features() -> tfds.features.FeaturesDict:
  """Features shared by the CUHK and synthetic builders."""
  return tfds.features.FeaturesDict({
      'photo': tfds.features.Image(shape=(_HEIGHT, _WIDTH, 3)),
      'sketch': tfds.features.Image(shape=(_HEIGHT, _WIDTH, 1)),
      'name': tfds.features.Text(),
  })


@dataclasses.dataclass(frozen=True)
class _Pair:
  name: str
  photo_folder: _Folder
  photo_file: str
  sketch_folder: _Folder
  sketch_file: str


def _folder_pairs(photos: _Folder, sketches: _Folder) -> list[_Pair]:
  pairs = cuhk_layout.pair_files(
      photos.files,
      sketches.files,
      photo_dir=str(photos.path),
      sketch_dir=str(sketches.path),
  )
  return [
      _Pair(p.rsplit('.', 1)[0], photos, p, sketches, s) for p, s in pairs
  ]


class CuhkFaceSketch(ArrayRecordBuilder):
  """CUHK student face photos and their artists' sketches (188 pairs)."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Standard (88/100) and CASQ (150/38) splits.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=(
            'CUHK student face photos (RGB) and sketches (grey), 250x200.'
            ' Splits: train/test are the distribution folders; casq_train/'
            'casq_test the CASQ study split of the pooled 188 pairs.'
        ),
        features=image_features(),
        homepage='http://mmlab.ie.cuhk.edu.hk/archive/facesketch.html',
        # Keep generation order: sorted names, CASQ test in permutation order.
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    manual_dir = pathlib.Path(os.fspath(dl_manager.manual_dir))
    folders = {
        name: find_folder(manual_dir, name) for name in cuhk_layout.FOLDERS
    }
    train = _folder_pairs(
        folders[cuhk_layout.TRAIN_PHOTOS], folders[cuhk_layout.TRAIN_SKETCHES]
    )
    test = _folder_pairs(
        folders[cuhk_layout.TEST_PHOTOS], folders[cuhk_layout.TEST_SKETCHES]
    )
    shared = sorted({p.name for p in train} & {p.name for p in test})
    if shared:
      raise ValueError(
          f'{manual_dir}: photo name(s) {shared} occur in both'
          f' {cuhk_layout.TRAIN_PHOTOS} and {cuhk_layout.TEST_PHOTOS};'
          ' expected distinct names'
      )
    by_name = {pair.name: pair for pair in train + test}
    try:
      casq_train, casq_test = cuhk_layout.casq_split(
          [p.name for p in test], [p.name for p in train]
      )
    except ValueError as e:
      raise ValueError(f'{manual_dir}: {e}') from e
    return {
        'train': self._generate_examples(train),
        'test': self._generate_examples(test),
        'casq_train': self._generate_examples([by_name[n] for n in casq_train]),
        'casq_test': self._generate_examples([by_name[n] for n in casq_test]),
    }

  def _generate_examples(self, pairs: list[_Pair]) -> Iterator[tuple[str, dict]]:
    for pair in pairs:
      photo = decode_image(
          pair.photo_folder.read(pair.photo_file),
          pair.photo_folder.where(pair.photo_file),
          'RGB',
      )
      # Some testing sketches are stored as RGB though grey.
      sketch = decode_image(
          pair.sketch_folder.read(pair.sketch_file),
          pair.sketch_folder.where(pair.sketch_file),
          'L',
      )
      yield pair.name, {
          'photo': encode_png(photo),
          'sketch': encode_png(sketch),
          'name': pair.name,
      }
