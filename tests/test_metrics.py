"""SSIM / MSE / PSNR against scikit-image and basic identities."""

import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image
from skimage.metrics import structural_similarity

from f2s import metrics

_REPO = pathlib.Path(__file__).resolve().parents[1]


def _cuhk_dir() -> pathlib.Path:
  return pathlib.Path(
      os.environ.get('F2S_CUHK_DIR', _REPO.parent / 'shared' / 'data' / 'cuhk'))


def _reference_ssim(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
  return structural_similarity(
      a.astype(np.float64), b.astype(np.float64), gaussian_weights=True,
      sigma=1.5, use_sample_covariance=False, data_range=data_range,
      channel_axis=-1)


@pytest.fixture(scope='module')
def random_pairs() -> tuple[np.ndarray, np.ndarray]:
  rng = np.random.default_rng(0)
  a = rng.uniform(size=(3, 40, 33, 3)).astype(np.float32)
  # Correlated second image, so SSIM is far from both 0 and 1.
  b = np.clip(a + 0.2 * rng.normal(size=a.shape), 0, 1).astype(np.float32)
  return a, b


@pytest.fixture(scope='module')
def real_pairs() -> tuple[np.ndarray, np.ndarray]:
  """Three CUHK photo/sketch pairs, as greyscale [0, 255] floats."""
  root = _cuhk_dir()
  photo_dir = root / 'CUHK_testing_cropped_photos'
  if not photo_dir.is_dir():
    pytest.skip(f'CUHK data not found at {root} (set F2S_CUHK_DIR)')
  photos = sorted(photo_dir.glob('*.jpg'))[:3]
  sketch_dir = root / 'CUHK_testing_cropped_sketches'

  def read(path):
    return np.asarray(Image.open(path).convert('L'), np.float32)[..., None]

  a = np.stack([read(p) for p in photos])
  b = np.stack([read(sketch_dir / f'{p.stem}-sz1.jpg') for p in photos])
  return a, b


def test_ssim_matches_skimage_on_random_images(random_pairs):
  a, b = random_pairs
  got = np.asarray(metrics.ssim(jnp.asarray(a), jnp.asarray(b), data_range=1.0))
  want = np.array([_reference_ssim(x, y, 1.0) for x, y in zip(a, b)])
  assert got.shape == (3,)
  assert 0.2 < want.min() and want.max() < 0.9
  np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_ssim_matches_skimage_on_symmetric_range(random_pairs):
  a, b = random_pairs
  a, b = 2 * a - 1, 2 * b - 1
  got = np.asarray(metrics.ssim(a, b, data_range=2.0))
  want = np.array([_reference_ssim(x, y, 2.0) for x, y in zip(a, b)])
  np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_ssim_matches_skimage_on_real_images(real_pairs):
  a, b = real_pairs
  got = np.asarray(metrics.ssim(a, b, data_range=255.0))
  want = np.array([_reference_ssim(x, y, 255.0) for x, y in zip(a, b)])
  np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
  # Photo vs sketch, and an image vs a blurred copy of itself.
  blurred = (a + np.roll(a, 1, axis=1) + np.roll(a, 1, axis=2)) / 3
  got = np.asarray(metrics.ssim(a, blurred, data_range=255.0))
  want = np.array([_reference_ssim(x, y, 255.0) for x, y in zip(a, blurred)])
  np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_identities(random_pairs):
  a, b = random_pairs
  np.testing.assert_allclose(metrics.ssim(a, a, data_range=1.0), 1.0, atol=1e-6)
  np.testing.assert_array_equal(metrics.mse(a, a), 0.0)
  assert np.all(np.isinf(metrics.psnr(a, a, data_range=1.0)))
  np.testing.assert_allclose(
      metrics.mse(a, b), ((a.astype(np.float64) - b) ** 2).mean(axis=(1, 2, 3)),
      rtol=1e-5)
  np.testing.assert_allclose(
      metrics.psnr(a, b, data_range=1.0),
      10 * np.log10(1.0 / ((a.astype(np.float64) - b) ** 2).mean(axis=(1, 2, 3))),
      rtol=1e-5)


def test_batched_equals_per_image_and_jit(random_pairs):
  a, b = random_pairs
  for fn in (lambda x, y: metrics.ssim(x, y, data_range=1.0), metrics.mse,
             lambda x, y: metrics.psnr(x, y, data_range=1.0)):
    batched = np.asarray(jax.jit(fn)(a, b))
    single = np.array([fn(x, y) for x, y in zip(a, b)])
    assert batched.shape == (3,)
    np.testing.assert_allclose(batched, single, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize('fn', [
    lambda x, y: metrics.ssim(x, y, data_range=1.0), metrics.mse,
    lambda x, y: metrics.psnr(x, y, data_range=1.0)])
def test_shape_mismatch_raises(fn):
  with pytest.raises(ValueError, match='same shape'):
    fn(jnp.zeros((2, 16, 16, 3)), jnp.zeros((2, 16, 16, 1)))


def test_ssim_rejects_images_smaller_than_window():
  with pytest.raises(ValueError, match='smaller than the 11x11 window'):
    metrics.ssim(jnp.zeros((1, 8, 20, 1)), jnp.zeros((1, 8, 20, 1)),
                 data_range=1.0)
