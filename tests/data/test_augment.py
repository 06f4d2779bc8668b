"""JAX augmentation: the same warp and parameter distribution as the numpy
preprocessing, and photo and sketch moving together."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from f2s.data import augment, preprocess

H, W = preprocess.RECORD_SHAPE
SPEC = preprocess.DataSpec('casq', 'unit', augment=True, flip=True,
                           max_shift=8.0, max_scale=0.05)
WINDOWS = {'casq': preprocess.output_window(SPEC),
           'standard': preprocess.output_window(
               preprocess.DataSpec('standard', 'unit'))}


def _coordinate_images(n: int) -> np.ndarray:
  """uint8 (n, H, W, 4): channel 0 the row, 1 the column, 2 the image id, 3
  (the 'sketch') the row again."""
  y, x = np.mgrid[:H, :W]
  return np.stack([np.stack([y, x, np.full_like(y, i), y], axis=-1)
                   for i in range(n)]).astype(np.uint8)


def _numpy_params(n: int, seed: int = 0) -> np.ndarray:
  rng = np.random.default_rng(seed)
  params = [preprocess.sample_augmentation(rng, SPEC) for _ in range(n)]
  # Beyond the usual range too: large shifts (clamped border), zoom in/out.
  params += [np.array([1, 40.5, -130.25, 0.5], np.float32),
             np.array([0, -300, 300, 1.7], np.float32)]
  return np.stack(params)


@pytest.mark.parametrize('window', sorted(WINDOWS))
def test_warp_matches_numpy_warp(window):
  pixels = np.random.default_rng(1).integers(
      0, 256, (6, H, W, 4), dtype=np.uint8)
  params = _numpy_params(4)
  expected = preprocess.warp(pixels, params, WINDOWS[window])
  got = np.asarray(jax.jit(augment.warp, static_argnums=2)(
      pixels, params, WINDOWS[window]))
  assert got.dtype == np.float32 and got.shape == expected.shape
  np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_warp_moves_photo_and_sketch_together_to_the_source_coordinates():
  pixels = _coordinate_images(6)
  params = _numpy_params(4, seed=2)
  top, left, h, w = window = WINDOWS['casq']
  out = np.asarray(augment.warp(jnp.asarray(pixels), jnp.asarray(params),
                                window))
  np.testing.assert_array_equal(out[..., 3], out[..., 0])
  np.testing.assert_array_equal(out[..., 2],
                                np.arange(6)[:, None, None] + 0 * out[..., 2])
  for b, (flip, shift_y, shift_x, scale) in enumerate(params):
    # Bilinear interpolation reproduces linear images: each pixel holds the
    # (clamped) source coordinate it was read from.
    rows = np.arange(top, top + h, dtype=np.float64)
    cols = np.arange(left, left + w, dtype=np.float64)
    cols = W - 1 - cols if flip else cols
    src_y = np.clip((H - 1) / 2 + (rows - (H - 1) / 2) / scale - shift_y,
                    0, H - 1)
    src_x = np.clip((W - 1) / 2 + (cols - (W - 1) / 2) / scale - shift_x,
                    0, W - 1)
    np.testing.assert_allclose(out[b, :, :, 0],
                               np.broadcast_to(src_y[:, None], (h, w)),
                               atol=2e-3)
    np.testing.assert_allclose(out[b, :, :, 1],
                               np.broadcast_to(src_x[None, :], (h, w)),
                               atol=2e-3)


@pytest.mark.parametrize('flip', [True, False])
def test_sample_params_follow_the_numpy_distribution(flip):
  spec = preprocess.DataSpec('casq', 'unit', augment=True, flip=flip,
                             max_shift=8.0, max_scale=0.05)
  keys = jax.random.split(jax.random.PRNGKey(0), 4000)
  params = np.asarray(jax.vmap(lambda k: augment.sample_params(k, spec))(keys))
  rng = np.random.default_rng(0)
  reference = np.stack([preprocess.sample_augmentation(rng, spec)
                        for _ in range(4000)])
  assert params.shape == (4000, 4) and params.dtype == np.float32
  assert set(np.unique(params[:, 0])) == ({0.0, 1.0} if flip else {0.0})
  for p in (params, reference):
    assert np.all(np.abs(p[:, 1:3]) <= 8)
    assert np.all(np.abs(p[:, 3] - 1) <= 0.05)
  # Same distribution: means and spreads agree within sampling error.
  np.testing.assert_allclose(params.mean(0), reference.mean(0), atol=0.03 * 8)
  np.testing.assert_allclose(params.std(0), reference.std(0), rtol=0.06,
                             atol=1e-6)


def test_warp_rejects_mismatched_params():
  with pytest.raises(ValueError, match=r'params \(B, 4\)'):
    augment.warp(jnp.zeros((2, H, W, 4), jnp.uint8), jnp.zeros((3, 4)),
                 WINDOWS['casq'])
