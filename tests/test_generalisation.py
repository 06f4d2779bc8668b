"""The generalisation table's baselines and shipped-model rows, and the
scoring of 8-bit images they share, against independent computations."""
import numpy as np
import pytest
from skimage.metrics import structural_similarity

from f2s import generalisation, metrics, pretrained, sketch
from f2s.training import evaluate


@pytest.fixture(scope='module')
def pairs():
  rng = np.random.default_rng(0)
  photos = rng.integers(0, 256, (5, 250, 200, 3), dtype=np.uint8)
  sketches = rng.integers(100, 256, (5, 250, 200, 1), dtype=np.uint8)
  return photos, sketches


def test_grey_photo_is_the_luma_of_the_photo(pairs):
  photos, _ = pairs
  grey = generalisation.baseline('grey_photo', photos, None)
  luma = photos.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
  assert grey.shape == (5, 250, 200, 1) and grey.dtype == np.uint8
  assert np.abs(grey[..., 0] - luma).max() <= 1


def test_mean_sketch_ignores_the_photo(pairs):
  photos, sketches = pairs
  mean = generalisation.baseline('mean_sketch', photos, sketches)
  assert mean.shape == sketches.shape
  np.testing.assert_array_equal(mean[0], mean[4])
  assert np.abs(mean[0].astype(np.float64) - sketches.mean(0)).max() <= 0.5
  with pytest.raises(ValueError, match="unknown baseline 'median'"):
    generalisation.baseline('median', photos, sketches)


def test_score_images_is_the_mean_of_per_image_scores(pairs):
  _, sketches = pairs
  pred = np.roll(sketches, 1, axis=0)
  scores = evaluate.score_images(pred, sketches, ('alex',), chunk=2)
  assert set(scores) == {'ssim', 'fsim', 'mse', 'psnr', 'lpips_alex'}
  a, b = pred / 255.0, sketches / 255.0
  ssim = np.mean([structural_similarity(
      x, y, data_range=1.0, gaussian_weights=True, sigma=1.5,
      use_sample_covariance=False, channel_axis=-1) for x, y in zip(a, b)])
  assert scores['ssim'] == pytest.approx(ssim, abs=1e-4)
  assert scores['mse'] == pytest.approx(np.mean((a - b) ** 2), rel=1e-5)
  lpips = metrics.lpips(a.astype(np.float32), b.astype(np.float32),
                        net='alex', data_range=1.0)
  assert scores['lpips_alex'] == pytest.approx(float(np.mean(lpips)),
                                               abs=1e-4)
  # The padded last chunk leaves the result alone: with one chunk size
  # (one compiled shape, rows computed independently) the 5 images score as
  # their first 4 and their last one do apart, up to the float64 sums'
  # rounding (a few 2^-53, asserted at 1e-12).
  five = evaluate.score_images(pred, sketches, ('alex',), chunk=4)
  four = evaluate.score_images(pred[:4], sketches[:4], ('alex',), chunk=4)
  last = evaluate.score_images(pred[4:], sketches[4:], ('alex',), chunk=4)
  for key, value in five.items():
    assert value == pytest.approx((4 * four[key] + last[key]) / 5,
                                  rel=1e-12), key
  with pytest.raises(ValueError, match='expected uint8 arrays of one shape'):
    evaluate.score_images(pred[:2], sketches, ())


def test_shipped_model_is_scored_as_f2s_sketch_draws(pairs):
  photos, sketches = pairs
  trained = pretrained.load(pretrained.DEFAULT)
  scores = generalisation.score_model(trained, photos[:2], sketches[:2], ())
  drawn = sketch.to_uint8(sketch.Sketcher(trained)(photos[:2]))
  expected = evaluate.score_images(drawn, sketches[:2], ())
  assert scores == pytest.approx(expected)
