"""Face alignment: the similarity maths, the warp's pixel convention, reading
photos (EXIF rotation, modes, reduced JPEG decoding) and real faces."""
import glob
import math
import os

import numpy as np
import pytest
from PIL import Image

from f2s import align
from f2s.datasets import faces as procedural

CUHK_DIR = os.environ.get('F2S_CUHK_DIR', os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
        __file__)))), 'shared', 'data', 'cuhk'))


def cuhk_photos(folder: str) -> list[str]:
  paths = sorted(glob.glob(os.path.join(CUHK_DIR, folder, '*.jpg')))
  if not paths:
    pytest.skip(f'no CUHK photos in {CUHK_DIR}/{folder} (set F2S_CUHK_DIR)')
  return paths


def turn(scale: float, degrees: float, shift: tuple[float, float]
         ) -> np.ndarray:
  """A similarity transform: scale, turn by `degrees`, then shift."""
  a = scale * complex(math.cos(math.radians(degrees)),
                      math.sin(math.radians(degrees)))
  return np.array([[a.real, -a.imag, shift[0]], [a.imag, a.real, shift[1]]])


def blobs(size: tuple[int, int], centres: np.ndarray, sigma: float
          ) -> np.ndarray:
  """uint8 (H, W, 3): white Gaussian spots at continuous `centres` on black."""
  w, h = size
  y, x = np.mgrid[0:h, 0:w] + 0.5  # pixel centres
  spots = sum(np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma ** 2))
              for cx, cy in centres)
  return np.repeat((np.clip(spots, 0, 1) * 255).astype(np.uint8)[..., None],
                   3, axis=-1)


def centroids(image: np.ndarray, near: np.ndarray, radius: float
              ) -> np.ndarray:
  """Intensity centroids (x, y) of the spots of `image` near each point."""
  grey = image[..., 0].astype(np.float64)
  y, x = np.mgrid[0:grey.shape[0], 0:grey.shape[1]] + 0.5
  found = []
  for cx, cy in near:
    weight = grey * ((x - cx) ** 2 + (y - cy) ** 2 < radius ** 2)
    found.append([(weight * x).sum() / weight.sum(),
                  (weight * y).sum() / weight.sum()])
  return np.array(found)


@pytest.mark.parametrize('seed', range(5))
def test_eye_alignment_maps_eyes_exactly_onto_the_template(seed):
  rng = np.random.default_rng(seed)
  eyes = rng.uniform(0, 4000, (2, 2))
  m = align.eye_alignment(eyes)
  np.testing.assert_allclose(align.apply(m, eyes), align.TEMPLATE,
                             atol=1e-9)
  # A similarity: [[a, -b], [b, a]], so angles and length ratios are kept.
  assert m[0, 0] == pytest.approx(m[1, 1])
  assert m[0, 1] == pytest.approx(-m[1, 0])
  scale = np.linalg.norm(align.TEMPLATE[1] - align.TEMPLATE[0]) / (
      np.linalg.norm(eyes[1] - eyes[0]))
  assert align.linear_scale(m) == pytest.approx(scale)
  back = align.compose(align.invert(m), m)
  np.testing.assert_allclose(back, [[1, 0, 0], [0, 1, 0]], atol=1e-9)


def test_similarity_recovers_a_known_transform():
  truth = turn(2.5, 30, (40, -7))
  src = np.array([[10.0, 20.0], [50.0, 35.0]])
  np.testing.assert_allclose(align.similarity(src, align.apply(truth, src)),
                             truth, atol=1e-12)
  with pytest.raises(ValueError, match='coincide'):
    align.similarity([[1, 1], [1, 1]], [[0, 0], [1, 0]])


@pytest.mark.parametrize('scale, degrees', [(0.6, 0), (2.0, 25), (9.0, -40)])
def test_warp_puts_the_eyes_on_the_template(scale, degrees):
  """Spots drawn where the "eyes" are land on the template in the crop, to
  a fraction of a pixel: the pixel convention of the maths and PIL agree,
  also when the crop shrinks the image (the antialiasing path)."""
  to_image = turn(scale, degrees, (300, 200))  # crop frame -> image
  eyes = align.apply(to_image, align.TEMPLATE)
  size = (int(eyes[:, 0].max() + 200 * scale), int(eyes[:, 1].max() + 200
                                                     * scale))
  image = Image.fromarray(blobs(size, eyes, sigma=4 * scale))
  crop = align.warp(image, align.eye_alignment(eyes))
  assert crop.shape == (250, 200, 3) and crop.dtype == np.uint8
  np.testing.assert_allclose(centroids(crop, align.TEMPLATE, 15),
                             align.TEMPLATE, atol=0.25)


def test_warp_outside_the_image_repeats_its_nearest_edge_pixel():
  # Red grows along x, green along y: each outside pixel names its source.
  x, y = np.meshgrid(np.arange(50), np.arange(40))
  pixels = np.stack([50 + 4 * x, 30 + 5 * y, np.full_like(x, 7)], -1)
  image = Image.fromarray(pixels.astype(np.uint8))
  to_crop = align.eye_alignment(np.array([[10, 10], [20, 10.]]))
  crop = align.warp(image, to_crop).astype(int)
  rows, cols = np.mgrid[:250, :200]
  centres = np.stack([cols.ravel() + 0.5, rows.ravel() + 0.5], -1)
  source = align.apply(align.invert(to_crop), centres).reshape(250, 200, 2)
  # Bicubic taps reach 2 pixels: farther out, every tap is one edge pixel.
  far_x = (source[..., 0] < -2) | (source[..., 0] > 52)
  far_y = (source[..., 1] < -2) | (source[..., 1] > 42)
  outside = far_x | far_y
  assert 1000 < outside.sum() < outside.size - 1000
  nearest_x = np.clip(np.floor(source[..., 0]), 0, 49)
  nearest_y = np.clip(np.floor(source[..., 1]), 0, 39)
  # One PIL rounding step of error at most.
  np.testing.assert_allclose(crop[far_x, 0], 50 + 4 * nearest_x[far_x],
                             atol=1)
  np.testing.assert_allclose(crop[far_y, 1], 30 + 5 * nearest_y[far_y],
                             atol=1)
  assert np.all(crop[outside, 2] == 7)
  # Wholly outside: the nearest corner everywhere.
  far = align.eye_alignment(np.array([[1e4, 1e4], [1e4 + 300, 1e4]]))
  corner = align.warp(image, far).astype(int)
  np.testing.assert_allclose(corner.reshape(-1, 3) - pixels[-1, -1], 0,
                             atol=1)


def write_exif_rotated(path: str, image: Image.Image, orientation: int):
  exif = Image.Exif()
  exif[0x0112] = orientation
  image.save(path, exif=exif.tobytes(), quality=95)


def test_exif_rotation_is_applied(tmp_path):
  # Stored 40 wide x 20 high, left half red, right half blue; orientation 6
  # means "turn 90 degrees clockwise to view": the red half ends on top.
  stored = np.zeros((20, 40, 3), np.uint8)
  stored[:, :20] = (255, 0, 0)
  stored[:, 20:] = (0, 0, 255)
  path = str(tmp_path / 'turned.jpg')
  write_exif_rotated(path, Image.fromarray(stored), 6)
  photo = align.Photo(path)
  assert photo.size == (20, 40)
  image, scale = photo.image()
  pixels = np.asarray(image).astype(int)
  assert image.size == (20, 40) and scale == 1.0
  assert pixels[5, 10, 0] > 200 and pixels[5, 10, 2] < 60  # red on top
  assert pixels[35, 10, 2] > 200 and pixels[35, 10, 0] < 60


def test_a_sideways_face_stored_with_exif_rotation_is_found(tmp_path):
  photo = procedural.render_pair(0, 0)[0]
  canvas = Image.new('RGB', (400, 500), (90, 120, 150))
  canvas.paste(Image.fromarray(photo), (100, 120))
  path = str(tmp_path / 'phone.jpg')
  # Stored turned 90 degrees counter-clockwise, as a phone held sideways
  # writes it; orientation 6 turns it upright for viewing.
  write_exif_rotated(path, canvas.transpose(Image.Transpose.ROTATE_90), 6)
  faces = align.find_faces(align.Photo(path))
  assert len(faces) == 1
  eyes = faces[0].eyes
  assert abs(eyes[0, 1] - eyes[1, 1]) < 10 < eyes[1, 0] - eyes[0, 0]


def test_reduced_jpeg_decoding_keeps_coordinates(tmp_path):
  """A JPEG decoded at 1/4 scale: points scale by exactly 1/4."""
  eyes = np.array([[1003.0, 1201.0], [1403.0, 1251.0]])
  path = str(tmp_path / 'big.jpg')
  Image.fromarray(blobs((2400, 2000), eyes, sigma=16)).save(path, quality=95)
  photo = align.Photo(path)
  image, scale = photo.image(0.2)
  assert scale == 0.25 and image.size == (600, 500)
  assert photo.image(0.1) == (image, scale)  # decoded once
  crop = align.warp(image, align.compose(align.eye_alignment(eyes),
                                         align.scaling(1 / scale, 1 / scale)))
  np.testing.assert_allclose(centroids(crop, align.TEMPLATE, 15),
                             align.TEMPLATE, atol=0.3)


def test_a_small_face_in_a_big_jpeg_is_cropped_from_full_resolution(
    tmp_path):
  """Detection reads a big JPEG reduced; a face that needs more detail than
  that is cropped from the photo decoded again, in full."""
  eyes = np.array([[2000.0, 1500.0], [2060.0, 1502.0]])  # 60 px apart
  path = str(tmp_path / 'group.jpg')
  Image.fromarray(blobs((4000, 3000), eyes, sigma=4)).save(path, quality=95)
  photo = align.Photo(path)
  assert photo.image(0.1)[1] == 0.125
  face = align.Face(np.array([1950.0, 1450, 160, 200]), eyes, 1.0)
  (aligned,) = align.align(photo, [face])
  assert photo.image(0)[1] == 1.0  # decoded again, in full
  np.testing.assert_allclose(centroids(aligned.pixels, align.TEMPLATE, 15),
                             align.TEMPLATE, atol=0.3)


def test_image_modes_become_rgb(tmp_path):
  grey16 = np.full((8, 8), 32896, np.uint16)  # 0.502 of 16 bits -> 128
  rgba = np.zeros((8, 8, 4), np.uint8)  # transparent: white paper
  cases = {
      'grey.png': (Image.new('L', (8, 8), 77), (77, 77, 77)),
      'grey16.png': (Image.fromarray(grey16), (128, 128, 128)),
      'alpha.png': (Image.fromarray(rgba), (255, 255, 255)),
      'palette.bmp': (Image.new('RGB', (8, 8), (0, 0, 255)).convert('P'),
                      (0, 0, 255)),
      'cmyk.jpg': (Image.new('CMYK', (8, 8), (0, 255, 255, 0)), (255, 0, 0)),
      'photo.webp': (Image.new('RGB', (8, 8), (0, 200, 0)), (0, 200, 0)),
  }
  for name, (image, expected) in cases.items():
    path = str(tmp_path / name)
    image.save(path, **({'lossless': True} if name.endswith('webp') else {}))
    rgb, _ = align.Photo(path).image()
    assert rgb.mode == 'RGB', name
    np.testing.assert_allclose(np.asarray(rgb)[4, 4], expected, atol=3,
                               err_msg=name)


@pytest.mark.parametrize('content, problem', [
    (b'just some text\n', 'not an image'),
    (None, 'no such file'),
])
def test_bad_files_raise_one_line_errors(tmp_path, content, problem):
  path = tmp_path / 'photo.jpg'
  if content is not None:
    path.write_bytes(content)
  with pytest.raises(align.ImageError, match=problem):
    align.Photo(str(path))


def test_a_truncated_file_is_unreadable(tmp_path):
  buffer = tmp_path / 'full.png'
  Image.fromarray(procedural.render_pair(0, 1)[0]).save(buffer)
  path = tmp_path / 'cut.png'
  path.write_bytes(buffer.read_bytes()[:2000])
  with pytest.raises(align.ImageError, match='unreadable image'):
    align.Photo(str(path)).image()


def test_no_face_in_a_plain_image(tmp_path):
  path = str(tmp_path / 'wall.png')
  Image.new('RGB', (300, 200), (180, 170, 160)).save(path)
  assert align.find_faces(align.Photo(path)) == []


def test_measured_template_is_the_hard_coded_one():
  paths = cuhk_photos('CUHK_training_cropped_photos')
  median, found, total = align.measure_template(os.path.dirname(paths[0]))
  assert (found, total) == (88, 88)
  np.testing.assert_array_equal(median, align.TEMPLATE)


def test_real_faces_scaled_and_turned_align_like_the_cuhk_photos(tmp_path):
  """CUHK test photos put on a larger canvas, scaled and turned, come back
  in the CUHK frame: the detector finds their eyes on the template, and the
  crop lines up with the original photo aligned by its own eyes."""
  paths = cuhk_photos('CUHK_testing_cropped_photos')
  for i, (scale, degrees) in enumerate([(1.5, 15), (3.0, -20), (5.0, 5)]):
    original = Image.open(paths[7 * i]).convert('RGB')
    to_canvas = turn(scale, degrees, (350, 300))
    canvas = Image.fromarray(align.warp(original, to_canvas, (1600, 1400)))
    path = str(tmp_path / f'canvas{i}.jpg')
    canvas.save(path, quality=92)
    photo = align.Photo(path)
    faces = align.find_faces(photo)
    assert len(faces) == 1
    (aligned,) = align.align(photo, faces)
    eyes = align.detect(aligned.pixels)[0].eyes
    assert np.abs(eyes - align.TEMPLATE).max() <= 4, (path, eyes)
    own = align.eye_alignment(align.detect(np.asarray(original))[0].eyes)
    # Where the original's eyes and mouth land in the crop, against where
    # its own detected eyes put them: a few pixels (the detector's jitter).
    face = np.array([[75, 125], [125, 125], [100, 180]])
    ours = align.apply(align.compose(aligned.to_crop, to_canvas), face)
    np.testing.assert_allclose(ours, align.apply(own, face), atol=8)


@pytest.mark.parametrize('quarter_turns', [1, 2, 3])
def test_a_sideways_photo_has_no_face_but_upright_it_has_one(
    tmp_path, quarter_turns):
  """Turned without an EXIF tag, skimage's astronaut still gets detections
  (score 0.84-0.85) whose landmarks are no face: they are rejected, and the
  same photo upright is found."""
  skimage_data = pytest.importorskip('skimage.data')
  upright = skimage_data.astronaut()
  path = str(tmp_path / 'sideways.png')
  Image.fromarray(np.ascontiguousarray(np.rot90(upright, quarter_turns))).save(
      path)
  assert align.detect(np.asarray(Image.open(path)), min_score=0.3) == []
  assert align.find_faces(align.Photo(path)) == []
  (face,) = align.detect(upright)
  assert face.score > 0.9


def test_every_cuhk_photo_has_an_upright_frontal_face():
  """The plausibility bounds were measured on these photos: none is lost."""
  paths = (cuhk_photos('CUHK_training_cropped_photos')
           + cuhk_photos('CUHK_testing_cropped_photos'))
  missing = [p for p in paths
             if not align.detect(np.asarray(Image.open(p).convert('RGB')))]
  assert not missing
