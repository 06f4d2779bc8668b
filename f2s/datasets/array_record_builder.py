"""The base of f2s's TFDS builders."""
import sys

import tensorflow_datasets as tfds
from etils import epath


class ArrayRecordBuilder(tfds.core.GeneratorBasedBuilder,
                         skip_registration=True):
  """A GeneratorBasedBuilder writing array_record files by default (the only
  format readable here without TensorFlow), its code path set."""

  def __init_subclass__(cls, **kwargs):
    # TFDS 4.9.10 derives the code path through `importlib_resources`, which
    # is not installed on Python >= 3.9 (its own requirement stops there).
    cls.code_path = epath.Path(sys.modules[cls.__module__].__file__)
    super().__init_subclass__(**kwargs)

  def __init__(self, *, file_format: str | None = None, **kwargs):
    super().__init__(file_format=file_format or 'array_record', **kwargs)
