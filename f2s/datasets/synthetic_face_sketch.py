"""TFDS builder of procedural face photo / pencil sketch pairs (no download).

Demo data with the CUHK shapes and features (see `faces.py`); the README's
first training command uses it.
"""

import dataclasses
from collections.abc import Iterator

import tensorflow_datasets as tfds

from f2s.datasets import faces
from f2s.datasets.array_record_builder import ArrayRecordBuilder
from f2s.datasets.cuhk_face_sketch import encode_png, image_features

# Example i of a split comes from Generator([seed, split id, i]), so the two
# splits never share a face and example i does not depend on the counts.
_SPLIT_IDS = {'train': 0, 'test': 1}


@dataclasses.dataclass
class SyntheticConfig(tfds.core.BuilderConfig):
  """Counts per split and the seed of the face distribution."""

  num_train: int = 300
  num_test: int = 100
  seed: int = 0


def render_example(seed: int, split: str, index: int) -> dict:
  """The features of example `index` of `split` (arrays, not yet encoded)."""
  photo, sketch = faces.render_pair(seed * len(_SPLIT_IDS) + _SPLIT_IDS[split], index)
  return {'photo': photo, 'sketch': sketch, 'name': f'{split}-{index:05d}'}


class SyntheticFaceSketch(ArrayRecordBuilder):
  """Procedural faces: colour photos and matching pencil sketches, 250x200."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Procedural faces, default and tiny configs.'}
  BUILDER_CONFIGS = [
      SyntheticConfig(name='default', num_train=300, num_test=100, seed=0),
      SyntheticConfig(name='tiny', num_train=24, num_test=8, seed=0),
  ]
  DEFAULT_CONFIG_NAME = 'default'

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=(
            'Procedural face photos (colour, lit, textured) and pencil'
            ' sketches of the same geometry, CUHK sizes.'
        ),
        features=image_features(),
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # nothing to download
    return {
        'train': self._generate_examples('train', self.builder_config.num_train),
        'test': self._generate_examples('test', self.builder_config.num_test),
    }

  def _generate_examples(self, split: str, count: int) -> Iterator[tuple[str, dict]]:
    for index in range(count):
      example = render_example(self.builder_config.seed, split, index)
      example['photo'] = encode_png(example['photo'])
      example['sketch'] = encode_png(example['sketch'])
      yield example['name'], example
