"""TFDS builder for CUFSF (CUHK Face Sketch FERET): photos and sketches
aligned into the CUHK frame, for measuring only.

Manual download in its original layout: `photos/` and `sketches/`, one pair
per file name (the same stem in both; any of `IMAGE_EXTENSIONS`). Neither is
aligned, so both the photo and the artist's sketch are brought into the
CUHK frame (200x250, eyes on the template) with `f2s.align`, the alignment
users' photos get in `f2s.sketch`: the largest face of each. A pair whose
photo or sketch has no face the detector accepts is left out, and recorded
with the reason in the data set's metadata (`skipped`). One split, `test`:
CUFSF is never trained on here; it tells how a model trained on CUHK's
students draws FERET's faces, under other lighting and cameras.

The prepared data remembers where it was built from (`source`: the manual
directory and a digest of its file names and sizes): loading it for
another folder is refused (`check_source`), so scores never silently come
from other pairs.
"""

import dataclasses
import hashlib
import os
import pathlib
from collections.abc import Iterator

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from f2s import align
from f2s.datasets import cuhk_face_sketch
from f2s.datasets.array_record_builder import ArrayRecordBuilder

PHOTOS = 'photos'
SKETCHES = 'sketches'
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.tif', '.tiff')

MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
Get the CUHK Face Sketch FERET database (CUFSF) from the MMLab CUHK site
(http://mmlab.ie.cuhk.edu.hk/archive/cufsf/; research use only; the photos
are FERET's, from NIST) and put its photos and sketches in two folders of
the manual directory, a pair sharing its file name (extension aside):
  {PHOTOS}/    e.g. 00002_930831_fa.jpg
  {SKETCHES}/  e.g. 00002_930831_fa.jpg
The manual directory is `--config.eval.manual_dir` (default: $F2S_CUFSF_DIR,
else <repo>/../shared/data/cufsf_dev, a slice of 85 pairs).
"""


@dataclasses.dataclass(frozen=True)
class Pair:
  name: str
  photo: pathlib.Path
  sketch: pathlib.Path


def _image_files(folder: pathlib.Path) -> dict[str, pathlib.Path]:
  """stem -> path of the folder's images; ValueError on a repeated stem."""
  if not folder.is_dir():
    raise FileNotFoundError(
        f'{folder}: no such folder; expected {PHOTOS}/ and {SKETCHES}/ in the '
        f'manual directory.\n{MANUAL_DOWNLOAD_INSTRUCTIONS}')
  files: dict[str, pathlib.Path] = {}
  for path in sorted(folder.iterdir()):
    if path.name.startswith('.') or not path.name.lower().endswith(
        IMAGE_EXTENSIONS):
      continue
    if path.stem in files:
      raise ValueError(f'{folder}: {files[path.stem].name} and {path.name} '
                       'have the same name; expected one image per pair')
    files[path.stem] = path
  if not files:
    raise ValueError(f'{folder}: contains no images; expected '
                     f'{"/".join(IMAGE_EXTENSIONS)} files')
  return files


def find_pairs(manual_dir: pathlib.Path) -> list[Pair]:
  """The photo/sketch pairs, sorted by name; ValueError naming a file
  without its partner."""
  photos = _image_files(manual_dir / PHOTOS)
  sketches = _image_files(manual_dir / SKETCHES)
  for have, lack, where in ((photos, sketches, SKETCHES),
                            (sketches, photos, PHOTOS)):
    alone = sorted(set(have) - set(lack))
    if alone:
      raise ValueError(
          f'{manual_dir}: {have[alone[0]]} has no partner in {where}/ '
          f'({len(alone)} such file(s)); expected the same file name in '
          f'{PHOTOS}/ and {SKETCHES}/')
  return [Pair(name, photos[name], sketches[name]) for name in sorted(photos)]


def source_digest(pairs: list[Pair]) -> str:
  """A digest of the pairs' file names and sizes."""
  h = hashlib.sha256()
  for pair in pairs:
    for path in (pair.photo, pair.sketch):
      h.update(f'{path.parent.name}/{path.name}:{path.stat().st_size}\n'
               .encode())
  return h.hexdigest()[:16]


def aligned_face(path: pathlib.Path) -> np.ndarray | None:
  """uint8 (250, 200, 3): the image's largest face in the CUHK frame, as
  `f2s.sketch` aligns it; None when there is none. ValueError naming the
  file when it is no readable image."""
  try:
    photo = align.Photo(str(path))
    faces = align.find_faces(photo)
  except align.ImageError as e:
    raise ValueError(f'{path}: {e}') from e
  if not faces:
    return None
  return align.align(photo, faces[:1])[0].pixels


def align_pair(pair: Pair) -> tuple[dict[str, np.ndarray] | None, str]:
  """({'photo': RGB crop, 'sketch': grey crop}, '') or (None, the reason)."""
  photo = aligned_face(pair.photo)
  sketch = aligned_face(pair.sketch)
  if photo is None or sketch is None:
    where = 'photo' if photo is None else 'sketch'
    return None, f'no upright, frontal face found in the {where}'
  grey = np.asarray(Image.fromarray(sketch).convert('L'))[..., None]
  return {'photo': photo, 'sketch': grey}, ''


class CufsfFaceSketch(ArrayRecordBuilder):
  """CUFSF photo / artist sketch pairs, both aligned to the CUHK frame."""

  VERSION = tfds.core.Version('1.1.0')
  RELEASE_NOTES = {
      '1.0.0': 'One test split, aligned with f2s.align.',
      '1.1.0': 'Crop pixels beyond the photo repeat its edge, not black.',
  }
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=(
            'CUFSF (FERET) photos (RGB) and artist sketches (grey), both '
            'aligned to the CUHK frame (250x200) by f2s.align. Split: test.'),
        features=cuhk_face_sketch.image_features(),
        homepage='http://mmlab.ie.cuhk.edu.hk/archive/cufsf/',
        metadata=tfds.core.MetadataDict(),
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    manual_dir = pathlib.Path(os.fspath(dl_manager.manual_dir)).resolve()
    pairs = find_pairs(manual_dir)
    # Aligned here, not while writing, so the metadata (saved with the data
    # set) holds every skipped pair.
    examples, skipped = [], []
    for pair in pairs:
      images, reason = align_pair(pair)
      if images is None:
        skipped.append({'name': pair.name, 'reason': reason})
      else:
        examples.append((pair.name, images))
    if not examples:
      raise ValueError(f'{manual_dir}: no face found in any of the '
                       f'{len(pairs)} pairs')
    self.info.metadata['skipped'] = skipped
    self.info.metadata['source'] = {'manual_dir': str(manual_dir),
                                    'digest': source_digest(pairs),
                                    'pairs': len(pairs)}
    return {'test': self._generate_examples(examples)}

  def _generate_examples(self, examples: list[tuple[str, dict]]
                         ) -> Iterator[tuple[str, dict]]:
    for name, images in examples:
      yield name, {'photo': cuhk_face_sketch.encode_png(images['photo']),
                   'sketch': cuhk_face_sketch.encode_png(images['sketch']),
                   'name': name}


def check_source(builder: tfds.core.DatasetBuilder, manual_dir: str) -> None:
  """Raises ValueError when the prepared data set was built from another
  folder, or the folder's files changed since."""
  source = builder.info.metadata.get('source', {})
  wanted = pathlib.Path(manual_dir).resolve()
  built_from = source.get('manual_dir')
  if built_from == str(wanted) and source.get('digest') == source_digest(
      find_pairs(wanted)):
    return
  why = (f'was built from {built_from}' if built_from != str(wanted)
         else 'was built before the files there changed')
  raise ValueError(
      f'the prepared CUFSF data in {builder.data_dir} {why}, not from '
      f'{wanted} as asked; remove {builder.data_dir} to rebuild it, or give '
      'another --config.data.data_dir')
