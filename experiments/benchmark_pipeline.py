"""Input-pipeline throughput: images/s of the training loader.

CASQ protocol with augmentation (flip, 8 px shift, 5 % scale), batch 16, on
the TFDS source (building it in --data_dir if needed), for each worker count.
Example:

  cd /work/main && /work/venv/bin/python experiments/benchmark_pipeline.py \
      --data_dir=/tmp/f2s_tfds --workers=0,1,2
  # CUHK (manual dir from $F2S_CUHK_DIR or ../shared/data/cuhk):
  ... experiments/benchmark_pipeline.py --dataset=cuhk_face_sketch
"""

import itertools
import time

from absl import app
from absl import flags

from f2s import datasets
from f2s.data import pipeline, preprocess

_DATASET = flags.DEFINE_enum(
    'dataset', 'synthetic_face_sketch',
    ['synthetic_face_sketch', 'cuhk_face_sketch'], 'TFDS data set.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data dir.')
_BATCH = flags.DEFINE_integer('batch_size', 16, 'Global batch size.')
_WARMUP = flags.DEFINE_integer('warmup', 5, 'Batches before timing.')
_STEPS = flags.DEFINE_integer('steps', 40, 'Timed batches.')
_WORKERS = flags.DEFINE_list('workers', ['0'], 'grain worker counts to time.')
_AUGMENT = flags.DEFINE_bool('augment', True, 'Augment (flip/shift/scale).')
_PROTOCOL = flags.DEFINE_enum('protocol', 'casq', ['casq', 'standard'],
                              'Preprocessing protocol.')


def _spec() -> preprocess.DataSpec:
  return preprocess.DataSpec(
      protocol=_PROTOCOL.value, value_range='unit', pad_to=(256, 208),
      augment=_AUGMENT.value, flip=True, max_shift=8, max_scale=0.05)


def _images_per_second(source, workers: int) -> float:
  loader = pipeline.train_loader(source, _spec(), seed=0,
                                 global_batch_size=_BATCH.value,
                                 num_workers=workers)
  iterator = iter(loader)
  for _ in range(_WARMUP.value):
    next(iterator)
  start = time.perf_counter()
  for batch in itertools.islice(iterator, _STEPS.value):
    assert batch['photo'].shape[0] == _BATCH.value
  return _STEPS.value * _BATCH.value / (time.perf_counter() - start)


def main(argv):
  del argv
  if _DATASET.value == 'cuhk_face_sketch':
    source = datasets.load_source(
        'cuhk_face_sketch', 'casq_train', data_dir=_DATA_DIR.value,
        manual_dir=datasets.default_cuhk_dir())
  else:
    source = datasets.load_source(
        'synthetic_face_sketch', 'train', data_dir=_DATA_DIR.value,
        builder_config='default')
  start = time.perf_counter()
  for i in range(min(len(source), 100)):
    source[i]  # pylint: disable=pointless-statement
  read_rate = min(len(source), 100) / (time.perf_counter() - start)
  print(f'{_DATASET.value}: {len(source)} records; reading alone '
        f'{read_rate:.0f} records/s')
  for workers in map(int, _WORKERS.value):
    rate = _images_per_second(source, workers)
    print(f'protocol={_PROTOCOL.value} augment={_AUGMENT.value} '
          f'batch={_BATCH.value} workers={workers}: {rate:.0f} images/s')


if __name__ == '__main__':
  app.run(main)
