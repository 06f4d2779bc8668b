"""TFDS builders of face photo / sketch pairs; importing registers them.

- `cuhk_face_sketch`: the CUHK student pairs (manual download).
- `cufsf_face_sketch`: CUFSF's FERET pairs, aligned; for measuring only
  (manual download).
- `synthetic_face_sketch`: procedural demo faces (no download).
"""

import os
import pathlib
from collections.abc import Sequence
from typing import Any

import tensorflow_datasets as tfds

from f2s.datasets import cufsf_face_sketch
from f2s.datasets.cufsf_face_sketch import CufsfFaceSketch
from f2s.datasets.cuhk_face_sketch import CuhkFaceSketch
from f2s.datasets.cuhk_face_sketch import MANUAL_DOWNLOAD_INSTRUCTIONS
from f2s.datasets.synthetic_face_sketch import SyntheticFaceSketch

__all__ = [
    'CufsfFaceSketch',
    'CuhkFaceSketch',
    'SyntheticFaceSketch',
    'default_cufsf_dir',
    'default_cuhk_dir',
    'load_source',
]

CUHK_DIR_ENV = 'F2S_CUHK_DIR'
CUFSF_DIR_ENV = 'F2S_CUFSF_DIR'


def _default_dir(env: str, folder: str) -> str:
  """$<env>, else `<repo root>/../shared/data/<folder>`."""
  from_env = os.environ.get(env)
  if from_env:
    return from_env
  repo_root = pathlib.Path(__file__).resolve().parents[2]
  return str(repo_root.parent / 'shared' / 'data' / folder)


def default_cuhk_dir() -> str:
  """$F2S_CUHK_DIR, else `<repo root>/../shared/data/cuhk`."""
  return _default_dir(CUHK_DIR_ENV, 'cuhk')


def default_cufsf_dir() -> str:
  """$F2S_CUFSF_DIR, else `<repo root>/../shared/data/cufsf_dev`."""
  return _default_dir(CUFSF_DIR_ENV, 'cufsf_dev')


_DEMO_HINT = (
    'Without the CUHK data, use the procedural demo data instead:'
    " dataset 'synthetic_face_sketch' (builder_config 'default' or 'tiny')."
)


def _missing_cuhk_message(manual_dir: str) -> str:
  return (
      f'CUHK data not found: manual directory {manual_dir!r} is missing or'
      f' empty (set manual_dir, config.data.manual_dir or ${CUHK_DIR_ENV}).\n'
      f'{MANUAL_DOWNLOAD_INSTRUCTIONS}\n{_DEMO_HINT}'
  )


def load_source(
    name: str,
    split: str,
    *,
    data_dir: str | None = None,
    builder_config: str | None = None,
    manual_dir: str | None = None,
) -> Sequence[dict[str, Any]]:
  """Random-access source of one split, building the dataset first if needed.

  Each record is a dict: `photo` uint8 (250, 200, 3), `sketch` uint8
  (250, 200, 1), `name` (bytes or str). For `cuhk_face_sketch`, `manual_dir`
  defaults to `default_cuhk_dir()`, for `cufsf_face_sketch` to
  `default_cufsf_dir()`.
  """
  kwargs = {'data_dir': data_dir}
  if builder_config is not None:
    kwargs['config'] = builder_config
  builder = tfds.builder(name, **kwargs)
  if name == CufsfFaceSketch.name:
    manual_dir = manual_dir or default_cufsf_dir()
    if not os.path.isdir(manual_dir):
      raise FileNotFoundError(
          f'CUFSF data not found: manual directory {manual_dir!r} is missing '
          f'(set config.eval.manual_dir or ${CUFSF_DIR_ENV}).\n'
          f'{cufsf_face_sketch.MANUAL_DOWNLOAD_INSTRUCTIONS}')
  if not builder.is_prepared():
    if name == CuhkFaceSketch.name:
      manual_dir = manual_dir or default_cuhk_dir()
      path = pathlib.Path(manual_dir)
      if not path.is_dir() or not any(path.iterdir()):
        raise FileNotFoundError(_missing_cuhk_message(manual_dir))
    try:
      builder.download_and_prepare(
          file_format='array_record',
          download_config=tfds.download.DownloadConfig(manual_dir=manual_dir),
      )
    except FileNotFoundError as e:
      if name != CuhkFaceSketch.name:
        raise
      # A folder of the manual download is missing (its message has the
      # instructions): point to the demo data too.
      raise FileNotFoundError(f'{e}\n{_DEMO_HINT}') from e
  check_prepared(builder, split)
  if name == CufsfFaceSketch.name:
    cufsf_face_sketch.check_source(builder, manual_dir)
  return builder.as_data_source(split)


def code_version(name: str) -> str:
  """The version of `name`'s builder code, e.g. '1.1.0': what an evaluation
  on it records, so that scores from older data are told apart."""
  return str(tfds.builder_cls(name).VERSION)


def check_prepared(builder: tfds.core.DatasetBuilder, split: str) -> None:
  """Raises ValueError naming the first file of the prepared `split` that
  does not read back with the record count TFDS recorded for it (e.g. one
  truncated by a full disk or a copy cut short), and how to rebuild it."""
  if builder.info.file_format != tfds.core.FileFormat.ARRAY_RECORD:
    return  # prepared by other means: as_data_source says what it needs
  # Imported here: only array_record files are checked.
  from array_record.python import array_record_module
  # File instructions, not filepaths/shard_lengths: they pair each shard with
  # its own record count for any split spec ('train+test', 'test[:10]').
  shards = {f.filename: f.examples_in_shard
            for f in builder.info.splits[split].file_instructions}
  for path, expected in shards.items():
    try:
      reader = array_record_module.ArrayRecordReader(str(path))
      try:
        count = reader.num_records()
      finally:
        reader.close()  # where a damaged footer is read
      problem = (None if count == expected
                 else f'{count} records, {expected} expected')
    except (RuntimeError, OSError, ValueError) as e:
      problem = ' '.join(str(e).split())
    if problem is not None:
      raise ValueError(
          f'{path}: the prepared data set is damaged ({problem}); rebuild '
          f'it: remove {builder.data_dir} and run again, which prepares it '
          'anew')
