"""Pure pairing and split rules of the CUHK layout."""

import numpy as np
import pytest

from f2s.datasets import cuhk_layout


@pytest.mark.parametrize('sketch,photo', [
    ('F2-005-01-sz1.jpg', 'f-005-01'),
    ('M2-062-01-sz1.jpg', 'm-062-01'),
    ('m1-003-01-sz1.jpg', 'm1-003-01'),
    ('f1-015-01-sz1.jpg', 'f1-015-01'),
    ('f-039-01-sz1.jpg', 'f-039-01'),
])
def test_photo_stem_for_sketch(sketch, photo):
  assert cuhk_layout.photo_stem_for_sketch(sketch) == photo


def test_sketch_name_without_suffix_is_rejected():
  with pytest.raises(ValueError, match="'f-005-01.jpg'.*-sz1"):
    cuhk_layout.photo_stem_for_sketch('f-005-01.jpg')


def test_pair_files_sorted_by_photo():
  pairs = cuhk_layout.pair_files(
      ['m-008-01.jpg', 'f-005-01.jpg'], ['M2-008-01-sz1.jpg', 'F2-005-01-sz1.jpg'],
      photo_dir='P', sketch_dir='S',
  )
  assert pairs == [('f-005-01.jpg', 'F2-005-01-sz1.jpg'), ('m-008-01.jpg', 'M2-008-01-sz1.jpg')]


def test_pair_files_errors_name_folder_and_file():
  with pytest.raises(ValueError, match=r"P: photos without a sketch in S: \['m-008-01.jpg'\]"):
    cuhk_layout.pair_files(['f-005-01.jpg', 'm-008-01.jpg'], ['F2-005-01-sz1.jpg'],
                           photo_dir='P', sketch_dir='S')
  with pytest.raises(ValueError, match=r"S: sketches without a photo in P: \['M2-008-01-sz1.jpg'\]"):
    cuhk_layout.pair_files(['f-005-01.jpg'], ['F2-005-01-sz1.jpg', 'M2-008-01-sz1.jpg'],
                           photo_dir='P', sketch_dir='S')
  with pytest.raises(ValueError, match='both pair'):
    cuhk_layout.pair_files(['f-005-01.jpg'], ['F2-005-01-sz1.jpg', 'f-005-01-sz1.jpg'],
                           photo_dir='P', sketch_dir='S')


def test_casq_split_partitions_the_pool():
  test_stems = [f't{i:03d}' for i in range(100)]
  train_stems = [f'a{i:03d}' for i in range(88)]
  casq_train, casq_test = cuhk_layout.casq_split(test_stems[::-1], train_stems)
  pool = test_stems + train_stems  # testing folder first, each sorted
  assert casq_test == [pool[i] for i in np.random.RandomState(3).permutation(188)[:38]]
  assert len(casq_train) == 150 and set(casq_train) | set(casq_test) == set(pool)
  with pytest.raises(ValueError, match='188 distinct pairs, got 187'):
    cuhk_layout.casq_split(test_stems[:-1], train_stems)
