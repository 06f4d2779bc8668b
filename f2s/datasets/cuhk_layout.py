"""Pure rules of the CUHK student face-sketch layout: folders, pairing, splits.

The builder in `cuhk_face_sketch.py` applies these to a manual download; they
take and return plain names so they can be tested without any files.
"""

from collections.abc import Iterable, Sequence

import numpy as np

from f2s.data import preprocess

TRAIN_PHOTOS = 'CUHK_training_cropped_photos'
TRAIN_SKETCHES = 'CUHK_training_cropped_sketches'
TEST_PHOTOS = 'CUHK_testing_cropped_photos'
TEST_SKETCHES = 'CUHK_testing_cropped_sketches'
FOLDERS = (TRAIN_PHOTOS, TRAIN_SKETCHES, TEST_PHOTOS, TEST_SKETCHES)

NUM_PAIRS = 188
CASQ_NUM_TEST = 38
CASQ_SEED = 3

# (height, width) of every CUHK image: the records' shape.
IMAGE_HW = preprocess.RECORD_SHAPE
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')


def _stem(file_name: str) -> str:
  return file_name.rsplit('.', 1)[0]


def photo_stem_for_sketch(sketch_file: str) -> str:
  """Photo stem paired with a sketch file (`F2-005-01-sz1.jpg` -> `f-005-01`).

  Rule of the distribution: drop `-sz1`, lower-case, map the `f2`/`m2`
  prefixes of the training sketches to `f`/`m`.
  """
  stem = _stem(sketch_file)
  if not stem.lower().endswith('-sz1'):
    raise ValueError(
        f'sketch file {sketch_file!r}: expected a name ending in "-sz1" before'
        ' the extension (e.g. "F2-005-01-sz1.jpg")'
    )
  stem = stem[: -len('-sz1')].lower()
  for prefix, replacement in (('f2-', 'f-'), ('m2-', 'm-')):
    if stem.startswith(prefix):
      stem = replacement + stem[len(prefix) :]
  return stem


def pair_files(
    photo_files: Iterable[str],
    sketch_files: Iterable[str],
    *,
    photo_dir: str,
    sketch_dir: str,
) -> list[tuple[str, str]]:
  """(photo file, sketch file) pairs sorted by photo file name.

  Raises ValueError naming the folders and files when a photo has no sketch, a
  sketch has no photo, two sketches map to the same photo or two photos share
  a name stem.
  """
  by_stem: dict[str, str] = {}
  for sketch in sorted(sketch_files):
    stem = photo_stem_for_sketch(sketch)
    if stem in by_stem:
      raise ValueError(
          f'{sketch_dir}: sketches {by_stem[stem]!r} and {sketch!r} both pair'
          f' with photo stem {stem!r}; expected one sketch per photo'
      )
    by_stem[stem] = sketch
  photos = sorted(photo_files)
  photo_stems: dict[str, str] = {}
  for photo in photos:
    if _stem(photo) in photo_stems:
      raise ValueError(
          f'{photo_dir}: photos {photo_stems[_stem(photo)]!r} and {photo!r}'
          f' have the same name stem {_stem(photo)!r}; expected one photo per'
          ' name')
    photo_stems[_stem(photo)] = photo
  lonely_photos = [p for p in photos if _stem(p) not in by_stem]
  lonely_sketches = [s for t, s in sorted(by_stem.items()) if t not in photo_stems]
  if lonely_photos:
    raise ValueError(
        f'{photo_dir}: photos without a sketch in {sketch_dir}:'
        f' {lonely_photos}; expected each photo to have a sketch named'
        ' <photo stem>-sz1 (training: F2-/M2- prefix)'
    )
  if lonely_sketches:
    raise ValueError(
        f'{sketch_dir}: sketches without a photo in {photo_dir}:'
        f' {lonely_sketches}; expected each sketch to pair with a photo'
    )
  return [(p, by_stem[_stem(p)]) for p in photos]


def casq_test_positions(num_pairs: int = NUM_PAIRS) -> np.ndarray:
  """Positions in the pooled order that the CASQ study used as its test set."""
  return np.random.RandomState(CASQ_SEED).permutation(num_pairs)[:CASQ_NUM_TEST]


def casq_split(
    test_folder_stems: Sequence[str], train_folder_stems: Sequence[str]
) -> tuple[list[str], list[str]]:
  """(casq_train, casq_test) photo stems of the CASQ study's split.

  The pool is the testing folder then the training folder, each sorted by
  name; casq_test takes the pool positions of `casq_test_positions`, in that
  order; casq_train keeps the pool order.
  """
  pool = sorted(test_folder_stems) + sorted(train_folder_stems)
  if len(pool) != NUM_PAIRS or len(set(pool)) != NUM_PAIRS:
    raise ValueError(
        f'CASQ split needs {NUM_PAIRS} distinct pairs, got {len(pool)}'
        f' ({len(set(pool))} distinct)'
    )
  positions = casq_test_positions(NUM_PAIRS).tolist()
  test_positions = set(positions)
  test = [pool[i] for i in positions]
  train = [s for i, s in enumerate(pool) if i not in test_positions]
  return train, test
