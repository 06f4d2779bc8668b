"""Value ranges: uint8 -> range -> [0, 1] round trips, unknown names."""
import jax.numpy as jnp
import numpy as np
import pytest

from f2s import value_range


@pytest.mark.parametrize('name,low,high', [('unit', 0.0, 1.0),
                                           ('symmetric', -1.0, 1.0)])
def test_uint8_maps_onto_the_range_and_back_to_unit(name, low, high):
  x = np.array([0, 51, 255], np.uint8)
  scaled = value_range.from_uint8(x, name)
  assert scaled.dtype == np.float32
  np.testing.assert_allclose(scaled[[0, 2]], [low, high], atol=1e-6)
  np.testing.assert_allclose(value_range.to_unit(jnp.asarray(scaled), name),
                             x / 255, atol=1e-6)
  np.testing.assert_allclose(value_range.from_unit(x / 255, name), scaled,
                             atol=1e-6)


def test_in_place_reuses_the_buffer():
  x = np.array([0.0, 255.0], np.float32)
  out = value_range.from_uint8(x, 'symmetric', in_place=True)
  assert out is x and x.tolist() == [-1.0, 1.0]


def test_unknown_range_is_named():
  with pytest.raises(ValueError, match="value_range='bytes'"):
    value_range.to_unit(np.zeros(2), 'bytes')
  with pytest.raises(ValueError, match="value_range='bytes'"):
    value_range.from_uint8(np.zeros(2, np.uint8), 'bytes')
  with pytest.raises(ValueError, match="value_range='bytes'"):
    value_range.from_unit(np.zeros(2), 'bytes')
