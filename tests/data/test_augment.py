"""JAX augmentation: the same warp and parameter distribution as the numpy
preprocessing, and photo and sketch moving together; photometric changes of
the photo alone, alike in numpy and JAX."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from f2s import sharding
from f2s.data import augment, device_data, photometric, preprocess

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


# Photometric augmentation (f2s.data.photometric): the photo alone, the same
# numbers in numpy and in JAX.
PHOTO = photometric.PhotometricSpec(brightness=0.2, contrast=0.3, gamma=0.5,
                                    shadow=0.6, grey=0.5, blur=1.5)
PHOTO_SPEC = preprocess.DataSpec('standard', 'symmetric', augment=True,
                                 flip=True, max_shift=8.0, max_scale=0.05,
                                 photometric=PHOTO)


CAST = dataclasses.replace(PHOTO, cast_shadow=0.7)
GAMMA = dataclasses.replace(CAST, local_gamma=0.8)


def _photometric_params(n: int, seed: int = 0, spec=PHOTO) -> np.ndarray:
  rng = np.random.default_rng(seed)
  return np.stack([photometric.sample(rng, spec) for _ in range(n)])


@pytest.mark.parametrize('photo_spec', [PHOTO, CAST, GAMMA])
def test_photometric_numpy_and_jax_agree_and_leave_the_sketch(photo_spec):
  spec = dataclasses.replace(PHOTO_SPEC, photometric=photo_spec)
  rng = np.random.default_rng(0)
  pixels = rng.integers(0, 256, (4, H, W, 4), dtype=np.uint8)
  geometric = np.stack([preprocess.sample_augmentation(rng, spec)
                        for _ in range(4)])
  params = _photometric_params(4, spec=photo_spec)
  expected = preprocess.preprocess_pixels(pixels, spec, geometric, params)
  got = jax.device_get(jax.jit(
      lambda p, g, q: device_data.preprocess_pixels(p, spec, g, q))(
          pixels, geometric, params))
  plain = preprocess.preprocess_pixels(pixels, spec, geometric)
  # 1e-4 of the 0..255 scale, as the warp: pow/exp may round apart by an ulp.
  np.testing.assert_allclose(got['photo'], expected['photo'], rtol=0,
                             atol=1e-4 * 2 / 255 * 255)
  np.testing.assert_array_equal(expected['sketch'], plain['sketch'])
  assert not np.allclose(expected['photo'], plain['photo'])
  assert expected['photo'].min() >= -1 and expected['photo'].max() <= 1


def test_photometric_params_are_jax_and_numpy_alike_and_in_range():
  u = np.random.default_rng(0).random((2000, photometric.NUM_PARAMS),
                                      dtype=np.float32)
  p_np = photometric.params(u, PHOTO, np)
  p_jax = np.asarray(jax.jit(lambda u: photometric.params(u, PHOTO, jnp))(u))
  np.testing.assert_allclose(p_jax, p_np, rtol=1e-6)
  brightness, contrast, gamma, shadow, angle, grey, blur = p_np.T
  assert np.abs(brightness).max() <= 0.2 and np.abs(contrast - 1).max() <= 0.3
  assert gamma.min() >= 1 / 1.5 - 1e-6 and gamma.max() <= 1.5 + 1e-6
  assert shadow.min() >= 0 and shadow.max() <= 0.6
  assert angle.min() >= 0 and angle.max() <= 2 * np.pi
  assert set(grey) == {0.0, 1.0} and abs(grey.mean() - 0.5) < 0.05
  assert blur.min() >= 0 and blur.max() <= 1.5


def _params_after(spec, before):
  """(uniforms, params) of 2000 examples of `spec`, checked alike in numpy
  and JAX, and their first columns equal to those of the spec `before`
  (whose stream a new knob must leave unchanged)."""
  u = np.random.default_rng(0).random((2000, spec.num_params),
                                      dtype=np.float32)
  p_np = photometric.params(u, spec, np)
  p_jax = np.asarray(jax.jit(lambda u: photometric.params(u, spec, jnp))(u))
  np.testing.assert_allclose(p_jax, p_np, rtol=1e-6)
  n = before.num_params
  np.testing.assert_array_equal(p_np[:, :n],
                                photometric.params(u[:, :n], before, np))
  return u, p_np


def test_cast_shadow_params_are_drawn_after_the_others_and_in_range():
  # Without the knob the draws are the 7 of before, so other specs' streams
  # are unchanged; with it, 4 more.
  assert PHOTO.num_params == photometric.NUM_PARAMS == 7
  assert CAST.num_params == 11
  _, p = _params_after(CAST, PHOTO)
  cx, cy, radius, depth = p[:, 7:].T
  assert np.abs(cx).max() <= 1 and np.abs(cy).max() <= 1
  assert radius.min() >= 0.2 and radius.max() <= 0.6
  assert depth.min() >= 0 and depth.max() <= 0.7


def test_local_gamma_params_are_drawn_last_and_in_range():
  # 9 log-exponents after the cast shadow's draws (or after the first 7
  # without it): every other spec's stream is unchanged.
  alone = dataclasses.replace(GAMMA, cast_shadow=0.0)
  assert GAMMA.num_params == 20 and alone.num_params == 16
  for spec, before in ((GAMMA, CAST), (alone, PHOTO)):
    u, p = _params_after(spec, before)
    first = before.num_params
    np.testing.assert_allclose(p[:, first:], (2 * u[:, first:] - 1) * 0.8,
                               rtol=1e-6)
    assert np.abs(p[:, first:]).max() <= 0.8


def test_the_local_gamma_is_bilinear_between_its_nodes():
  flat = np.full((1, 21, 31, 3), 100.0, np.float32)
  log_gammas = np.array([-0.5, 0.0, 0.3, 0.1, 0.2, -0.1, 0.0, 0.4, -0.3],
                        np.float32)
  p = np.concatenate([[0, 1, 1, 0, 0, 0, 0], log_gammas])[None].astype(
      np.float32)
  spec = photometric.PhotometricSpec(local_gamma=1.0)
  grid = log_gammas.reshape(3, 3)

  def expected(log_gamma):
    return (100 / 255) ** np.exp(log_gamma) * 255

  for xp in (np, jnp):
    out = np.asarray(photometric.apply(flat, p, spec, xp))[0, ..., 0]
    # The nodes: corners, edge midpoints (row 10, column 15) and centre.
    for (i, j), (r, c) in {(0, 0): (0, 0), (0, 2): (0, 30), (2, 1): (20, 15),
                           (1, 1): (10, 15), (1, 2): (10, 30)}.items():
      np.testing.assert_allclose(out[r, c], expected(grid[i, j]), rtol=1e-5)
    # Column 7 of 0..30 lies 7/15 of the way from the first node to the
    # second: its log-exponent is their weighted mean.
    np.testing.assert_allclose(
        out[0, 7], expected((grid[0, 0] * 8 + grid[0, 1] * 7) / 15),
        rtol=1e-5)


def test_each_photometric_op_does_what_it_says():
  rng = np.random.default_rng(1)
  photo = rng.uniform(40, 200, (1, 20, 30, 3)).astype(np.float32)

  def one(knob: str, **values):
    spec = photometric.PhotometricSpec(**{knob: 1.0})
    p = np.array([[0, 1, 1, 0, 0, 0, 0]], np.float32)
    for i, value in values.items():
      p[0, int(i[1:])] = value
    return photometric.apply(photo, p, spec, np)

  np.testing.assert_allclose(photometric.apply(
      photo, _photometric_params(1), photometric.PhotometricSpec(), np), photo,
      rtol=1e-6)  # all off: only the 1/255 and 255 scalings round
  grey = one('grey', p5=1.0)
  np.testing.assert_allclose(grey[..., 0], grey[..., 2], atol=1e-4)
  np.testing.assert_allclose(one('grey', p5=0.0), photo, atol=1e-4)
  np.testing.assert_allclose(one('brightness', p0=0.1), photo + 25.5,
                             atol=1e-3)
  np.testing.assert_allclose(one('gamma', p2=2.0), (photo / 255) ** 2 * 255,
                             rtol=1e-5)
  np.testing.assert_allclose(one('contrast', p1=0.5).mean(), photo.mean(),
                             rtol=1e-5)
  # A shadow at angle 0: the left column as it was, the right one darkened.
  shadow = one('shadow', p3=0.5, p4=0.0)
  np.testing.assert_allclose(shadow[:, :, 0], photo[:, :, 0], rtol=1e-5)
  np.testing.assert_allclose(shadow[:, :, -1], photo[:, :, -1] * 0.5,
                             rtol=1e-5)
  blurred = one('blur', p6=1.0)
  np.testing.assert_allclose(blurred.mean(), photo.mean(), rtol=1e-2)
  assert blurred.std() < 0.7 * photo.std()
  np.testing.assert_allclose(one('blur', p6=0.0), photo, atol=1e-3)
  # A cast shadow at the centre, radius 0.2 half-widths, depth 0.5: the
  # middle pixels darkened by ~half, the corners untouched.
  flat = np.full((1, 21, 31, 3), 100.0, np.float32)
  p = np.array([[0, 1, 1, 0, 0, 0, 0, 0.0, 0.0, 0.2, 0.5]], np.float32)
  cast = photometric.apply(flat, p, photometric.PhotometricSpec(cast_shadow=1.0), np)
  np.testing.assert_allclose(cast[0, 10, 15], 50.0, rtol=1e-5)
  np.testing.assert_allclose(cast[0, 0, 0], 100.0, rtol=1e-5)
  assert (cast <= flat + 1e-4).all()


def test_photometric_draws_leave_the_geometric_stream_unchanged(records):
  mesh = sharding.make_mesh(jax.devices()[:1])
  spec = dataclasses.replace(PHOTO_SPEC, protocol='casq', value_range='unit')
  split = device_data.place(records[:8], mesh, seed=0, global_batch_size=4)
  on, off = (jax.device_get(device_data.global_batches(s, mesh, 4)(
      jnp.int32(3), split)) for s in (spec, dataclasses.replace(
          spec, photometric=photometric.PhotometricSpec())))
  np.testing.assert_array_equal(on['sketch'], off['sketch'])
  assert not np.allclose(on['photo'], off['photo'])


def test_photometric_config_errors_name_the_knob(make_config):
  with pytest.raises(ValueError, match=r'photometric\.shadow=1\.5'):
    photometric.PhotometricSpec(shadow=1.5)
  with pytest.raises(ValueError, match=r'photometric\.grey=True'):
    photometric.PhotometricSpec(grey=True)
  with pytest.raises(TypeError, match='jpeg'):
    photometric.spec_from_config({'jpeg': 0.5})
  with pytest.raises(ValueError, match='augment is false'):
    preprocess.spec_from_config(make_config(
        augment=False, photometric={'brightness': 0.1}).data)
