"""Fixtures for the input-pipeline tests: in-memory records like the TFDS ones.

Photo channel 0 holds the row index y, channel 1 the column index x, channel 2
the record id; the sketch is channel 0 again. Bilinear warps reproduce linear
functions exactly, so after augmentation channels 0/1 give the source
coordinate each pixel was read from and channel 2 names the record.
"""

import ml_collections
import numpy as np
import pytest

from f2s.data import preprocess

H, W = 250, 200


def _coordinate_records(n: int) -> list[dict]:
  y, x = np.mgrid[:H, :W]
  records = []
  for i in range(n):
    photo = np.stack([y, x, np.full_like(y, i)], axis=-1).astype(np.uint8)
    records.append({'photo': photo, 'sketch': photo[..., :1].copy(),
                    'name': f'record-{i}'.encode()})
  return records


@pytest.fixture(scope='session')
def records() -> list[dict]:
  """24 coordinate-pattern records."""
  return _coordinate_records(24)


@pytest.fixture
def make_config():
  """Builds an experiment ConfigDict with only the `data` block."""

  def make(protocol='casq', value_range='unit', augment=False, **overrides):
    data = dict(protocol=protocol, value_range=value_range, pad_to=(256, 208),
                augment=augment, flip=True, max_shift=8, max_scale=0.05,
                num_workers=0)
    data.update(overrides)
    return ml_collections.ConfigDict({'data': data})

  return make


@pytest.fixture
def make_spec(make_config):
  """Like `make_config`, but the DataSpec the pipeline takes."""

  def make(*args, **kwargs):
    return preprocess.spec_from_config(make_config(*args, **kwargs).data)

  return make
