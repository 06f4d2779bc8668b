"""Sketch your own photos: `python -m f2s.sketch INPUT...` (or `f2s-sketch`).

  python -m f2s.sketch photo.jpg                 # -> sketches/photo.png
  python -m f2s.sketch photos/ more.png --out=out --side-by-side
  python -m f2s.sketch photo.jpg --workdir=runs/casq_cuhk   # one's own run
  python -m f2s.sketch face.png --no-align       # a face already cropped
  python -m f2s.sketch photo.jpg --runtime=onnx --model=sketch.onnx  # no JAX

Every face found (`f2s.align`: offline detection, eyes aligned to the CUHK
template, the 200x250 CUHK frame) is sketched by the model shipped in the
package (`f2s.pretrained`), or by the best checkpoint of a training run:
`DIR/<stem>.png` for the largest face, `DIR/<stem>_<k>.png` for the k-th
further one (k = 1, 2, ...). The sketch has the size of the model's output
under its protocol (200x200 for 'casq', 250x200 for 'standard').
`--side-by-side` writes the aligned photo (the CUHK frame) | the sketch in
that frame instead.

`--runtime=onnx --model=FILE.onnx` runs a model exported by `f2s.export`
with onnxruntime instead of JAX (the same alignment and output files); that
path imports neither JAX nor Flax, so a deployment needs only onnxruntime,
numpy, Pillow and the face detector.

The model is loaded and compiled once, and a photo's faces run as one batch.
A bad input gets one line `error: FILE: problem` and the other files are
still processed; the exit code is 1 if any failed.
"""
import argparse
import json
import os
import sys
import tempfile
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from f2s import align
from f2s.data import preprocess

if TYPE_CHECKING:  # imported where used: the onnx runtime goes without JAX
  from f2s import pretrained

# The file types a folder is searched for (a file named on the command line
# is read whatever its name).
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.jpe', '.jfif', '.png', '.webp', '.bmp')
DEFAULT_OUT = 'sketches'
# The largest image read (width x height, from its header, before decoding),
# in megapixels: 200-megapixel phone photos pass; a 250-megapixel PNG decodes
# to ~0.75 GB of RGB, while a 40000x40000 one (1.6 MB on disk) would take
# 8 GB. --max-megapixels changes it; it replaces PIL's decompression-bomb
# check, whose error names neither the limit nor how to raise it.
MAX_MEGAPIXELS = 250.0
RUNTIMES = ('jax', 'onnx')
# The key of the run's config in an exported ONNX file's metadata
# (f2s.export.METADATA_CONFIG; that module imports JAX).
ONNX_CONFIG_KEY = 'f2s.config'


class OutputError(ValueError):
  """A sketch that cannot be written; the message is the problem."""


class LoadError(ValueError):
  """A model that cannot be loaded; the message says which and why."""


class FrameSketcher:
  """What both runtimes share: a protocol's input and the sketch's place
  in the 250x200 frame (`spec`, `shape`, `model_input`, `window`)."""

  def __init__(self, spec: preprocess.DataSpec):
    self.spec = spec
    valid = preprocess.crop_to_valid(
        np.zeros((1, *self.spec.image_shape, 1), np.uint8), self.spec)
    self.shape = tuple(valid.shape[1:3])  # (H, W) of a sketch

  def model_input(self, crops: np.ndarray) -> np.ndarray:
    """The protocol's float32 model input for uint8 (N, 250, 200, 3) crops."""
    no_sketch = np.zeros((*crops.shape[:3], 1), np.uint8)
    return preprocess.preprocess_batch(crops, no_sketch, self.spec)['photo']

  def window(self) -> tuple[int, int]:
    """(top, left) of the sketch's region in the 250x200 frame: the
    protocols centre it."""
    return ((preprocess.RECORD_SHAPE[0] - self.shape[0]) // 2,
            (preprocess.RECORD_SHAPE[1] - self.shape[1]) // 2)


class Sketcher(FrameSketcher):
  """A trained model, loaded and compiled once: CUHK-frame crops -> sketches.

  `sketcher(crops)` maps uint8 (N, 250, 200, 3) crops to float32 sketches
  (N, H, W, C) in [0, 1], with the protocol's preprocessing
  (`f2s.data.preprocess`) before the model and `crop_to_valid` after it.
  """

  # A batch runs in chunks of these sizes (7 faces as 4 + 2 + 1): each size
  # compiles once and no compute is spent on padding.
  CHUNKS = (8, 4, 2, 1)

  def __init__(self, trained: 'pretrained.TrainedModel'):
    import jax
    from f2s import models
    super().__init__(preprocess.spec_from_config(trained.config.data))
    self.trained = trained
    model = trained.build()
    # The fixed keys evaluation uses; with train=False nothing is sampled.
    rngs = {models.SAMPLE_RNG: jax.random.PRNGKey(0),
            models.CODEBOOK_RNG: jax.random.PRNGKey(1)}

    def predict(variables, photo):
      logits, _ = model.apply(variables, photo, train=False, rngs=rngs)
      return jax.nn.sigmoid(logits)

    self._predict = jax.jit(predict)
    self._variables = jax.device_put(trained.variables)

  def __call__(self, crops: np.ndarray) -> np.ndarray:
    photo = self.model_input(crops)
    outputs, start = [], 0
    while start < len(photo):
      size = next(c for c in self.CHUNKS if c <= len(photo) - start)
      outputs.append(self._predict(self._variables, photo[start:start + size]))
      start += size
    prediction = np.concatenate([np.asarray(o) for o in outputs])
    return np.asarray(preprocess.crop_to_valid(prediction, self.spec))


class OnnxSketcher(FrameSketcher):
  """An ONNX file written by `f2s.export`, run by onnxruntime: the same
  `sketcher(crops)` as `Sketcher`, without JAX. The graph applies the
  sigmoid and the crop; its metadata hold the run's config."""

  def __init__(self, path: str):
    try:
      import onnxruntime
    except ImportError:
      raise LoadError('--runtime=onnx needs onnxruntime (pip install '
                      "onnxruntime, or pip install -e '.[export]')") from None
    if not os.path.isfile(path):
      raise LoadError(f'{path}: no such file (export one with python -m '
                      'f2s.export --out FILE.onnx)')
    try:
      self.session = onnxruntime.InferenceSession(
          path, providers=['CPUExecutionProvider'])
    # onnxruntime's errors (InvalidProtobuf, Fail, InvalidGraph, ...) derive
    # from Exception directly, with no common base of their own.
    except Exception as e:
      raise LoadError(f'{path}: not an ONNX model onnxruntime can load '
                      f'({str(e).splitlines()[0]})') from None
    config = self.session.get_modelmeta().custom_metadata_map.get(
        ONNX_CONFIG_KEY)
    if config is None:
      raise LoadError(f'{path}: no f2s metadata ({ONNX_CONFIG_KEY}); '
                      'export the model with python -m f2s.export')
    super().__init__(preprocess.spec_from_config(json.loads(config)['data']))
    self._input = self.session.get_inputs()[0].name

  def __call__(self, crops: np.ndarray) -> np.ndarray:
    return self.session.run(None, {self._input: self.model_input(crops)})[0]


def to_uint8(sketch: np.ndarray) -> np.ndarray:
  """[0, 1] -> uint8, rounded as evaluation scores and writes predictions."""
  return np.round(np.clip(sketch, 0.0, 1.0) * 255).astype(np.uint8)


def whole_image_crop(photo: align.Photo, sketcher: FrameSketcher
                     ) -> np.ndarray:
  """uint8 (250, 200, 3): the whole image resized into the sketch's window
  of the frame (the rest, which the model does not see, black)."""
  h, w = sketcher.shape
  image, _ = photo.image(max(w / photo.size[0], h / photo.size[1]))
  resized = image.resize((w, h), Image.Resampling.BICUBIC, reducing_gap=3.0)
  crop = np.zeros((*preprocess.RECORD_SHAPE, 3), np.uint8)
  top, left = sketcher.window()
  crop[top:top + h, left:left + w] = np.asarray(resized)
  return crop


def side_by_side(crop: np.ndarray, sketch: np.ndarray,
                 sketcher: FrameSketcher, whole_frame: bool) -> np.ndarray:
  """photo | sketch, uint8 RGB: the whole frame, the sketch on white around
  its window (`whole_frame`), or the window only."""
  sketch = np.broadcast_to(sketch, (*sketch.shape[:2], 3))
  top, left = sketcher.window()
  h, w = sketcher.shape
  if not whole_frame:
    return np.concatenate([crop[top:top + h, left:left + w], sketch], axis=1)
  paper = np.full_like(crop, 255)
  paper[top:top + h, left:left + w] = sketch
  return np.concatenate([crop, paper], axis=1)


def write_png(path: str, image: np.ndarray) -> None:
  """Writes uint8 (H, W, 1 or 3) atomically: no half-written file is left."""
  image = image[..., 0] if image.shape[-1] == 1 else image
  tmp = os.path.join(os.path.dirname(path),
                     f'.{os.path.basename(path)}.{os.getpid()}.tmp')
  try:
    Image.fromarray(image).save(tmp, format='PNG')
    os.replace(tmp, path)
  except OSError as e:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise OutputError(f'cannot write {path} ({e.strerror or e})') from None


def check_size(path: str, max_megapixels: float) -> None:
  """Raises align.ImageError for an image over `max_megapixels`, from its
  header alone: before align.Photo, which for a PNG decodes the whole image
  to look for EXIF after the pixels."""
  try:
    with Image.open(path) as image:
      width, height = image.size
  except (OSError, SyntaxError, ValueError, EOFError):
    return  # not an image at all: align.Photo names the problem
  if width * height > max_megapixels * 1e6:
    raise align.ImageError(
        f'{width}x{height} pixels ({width * height / 1e6:.0f} megapixels) is '
        f'over the limit of {max_megapixels:g} megapixels; not decoded '
        '(raise the limit with --max-megapixels=N)')


def sketch_file(path: str, sketcher: FrameSketcher, out_dir: str, *,
                align_faces: bool = True, side: bool = False,
                protected: frozenset[str] = frozenset(),
                max_megapixels: float = MAX_MEGAPIXELS) -> list[str]:
  """Sketches every face of one photo (or the whole image); returns the
  files written. Raises align.ImageError or OutputError with the problem.

  `protected`: real paths never written over (the inputs).
  """
  check_size(path, max_megapixels)
  photo = align.Photo(path)
  if align_faces:
    faces = align.find_faces(photo)
    if not faces:
      raise align.ImageError(
          'no upright, frontal face found (turn the photo upright, or use '
          '--no-align to sketch the whole image)')
    crops = np.stack([face.pixels for face in align.align(photo, faces)])
  else:
    crops = whole_image_crop(photo, sketcher)[None]
  sketches = to_uint8(sketcher(crops))
  stem = os.path.splitext(os.path.basename(path))[0]
  targets = [os.path.join(out_dir, f'{stem}_{k}.png' if k else f'{stem}.png')
             for k in range(len(crops))]
  for target in targets:
    if os.path.realpath(target) in protected:
      raise OutputError(f'its sketch would overwrite the input {target}; '
                        'choose another --out')
  for target, crop, sketch in zip(targets, crops, sketches):
    write_png(target, side_by_side(crop, sketch, sketcher, align_faces)
              if side else sketch)
  return targets


def expand_inputs(inputs: list[str]) -> tuple[list[str], list[str]]:
  """(image files, error lines): folders become their image files, sorted."""
  files, errors = [], []
  for given in inputs:
    if not os.path.isdir(given):
      files.append(given)  # a missing file is reported when it is read
      continue
    found = sorted(
        os.path.join(given, name) for name in os.listdir(given)
        if name.lower().endswith(IMAGE_EXTENSIONS)
        and os.path.isfile(os.path.join(given, name)))
    if not found:
      errors.append(f'error: {given}: no image files (JPEG, PNG, WebP, BMP) '
                    'in this folder')
    files += found
  return files, errors


def prepare_out_dir(out_dir: str) -> None:
  """Creates `out_dir` and checks that a file can be written there."""
  try:
    os.makedirs(out_dir, exist_ok=True)
    # A real write: access() says yes to root on a read-only mount.
    with tempfile.TemporaryFile(dir=out_dir):
      pass
  except FileExistsError:
    raise OutputError(f'{out_dir}: not a directory') from None
  except OSError as e:
    raise OutputError(f'{out_dir}: cannot write the output directory '
                      f'({e.strerror or e})') from None


def load_model(model: str | None, workdir: str | None
               ) -> 'pretrained.TrainedModel':
  from f2s import pretrained
  if workdir is not None:
    return pretrained.load_run(workdir)[0]
  return pretrained.load(model or pretrained.DEFAULT)


def load_sketcher(runtime: str, model: str | None, workdir: str | None
                  ) -> FrameSketcher:
  """The runtime's sketcher; raises LoadError with the problem."""
  if runtime == 'onnx':
    return OnnxSketcher(model)
  if model is not None and model.endswith('.onnx'):
    raise LoadError(f'{model}: an ONNX file; run it with --runtime=onnx')
  from f2s import pretrained
  try:
    return Sketcher(load_model(model, workdir))
  except pretrained.ModelError as e:
    raise LoadError(str(e)) from None


class _ShippedModels:
  """--model's help: the shipped models, looked up only when the help is
  printed (f2s.pretrained imports JAX, which the onnx runtime goes
  without)."""

  def __str__(self) -> str:
    from f2s import pretrained
    return (f'default: {pretrained.DEFAULT}; shipped: '
            f'{", ".join(pretrained.available()) or "none"}')


def add_model_source(parser: argparse.ArgumentParser, *, workdir_help: str,
                     model_also: str = '') -> None:
  """The mutually exclusive `--model NAME` (a shipped model or an exported
  folder, then `model_also`) and `--workdir RUN`."""
  source = parser.add_mutually_exclusive_group()
  model = source.add_argument(
      '--model', metavar='NAME',
      help='a model shipped in f2s/pretrained (%(shipped)s), or a folder '
      f'written by experiments/export_pretrained.py{model_also}')
  model.shipped = _ShippedModels()  # argparse formats help with vars(action)
  source.add_argument('--workdir', metavar='RUN', help=workdir_help)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      prog='python -m f2s.sketch',
      description='Sketch the faces in photos with a trained f2s model.',
      epilog='Writes DIR/<stem>.png for the largest face of each photo and '
      'DIR/<stem>_<k>.png for the k-th further one. Exit code 1 if any '
      'input failed (each failure gets one "error: FILE: problem" line). '
      "A shipped model's scores are in its MODEL_CARD.md "
      '(f2s/pretrained/<name>/): on CUHK, where it was trained, and on CUFSF '
      'faces it never saw, beside two baselines (the grey photo itself, the '
      'mean artist sketch). FSIM and SSIM (higher is better) reward matching '
      'tones and local structure, so a soft average scores well; LPIPS '
      '(lower is better) compares deep features, rewarding lines and '
      "texture; a metric a model trained on is no evidence of its quality. "
      "The README's 'Beyond CUHK' has the numbers.")
  parser.add_argument('inputs', nargs='+', metavar='INPUT',
                      help='image files (JPEG, PNG, WebP, BMP) or folders '
                      'of them')
  parser.add_argument('--out', default=DEFAULT_OUT, metavar='DIR',
                      help=f'output folder (default: {DEFAULT_OUT})')
  add_model_source(parser,
                   workdir_help='use the best checkpoint of this training run',
                   model_also='; with --runtime=onnx, an ONNX file written by '
                   'python -m f2s.export')
  parser.add_argument('--runtime', choices=RUNTIMES, default='jax',
                      help='run the model with JAX (default) or, for an '
                      'exported --model FILE.onnx, with onnxruntime')
  parser.add_argument('--no-align', action='store_true',
                      help="sketch the whole image, resized to the model's "
                      'input, without face detection')
  parser.add_argument('--side-by-side', action='store_true',
                      help='write aligned photo | sketch')
  parser.add_argument('--max-megapixels', type=float, default=MAX_MEGAPIXELS,
                      metavar='N',
                      help='skip (with an error line) images of more than N '
                      'megapixels, checked before decoding (default: '
                      f'{MAX_MEGAPIXELS:g}; decoding takes ~3 bytes a pixel)')
  args = parser.parse_args(argv)
  if args.max_megapixels <= 0:
    parser.error(f'--max-megapixels={args.max_megapixels:g}: expected a '
                 'positive number')
  if args.runtime == 'onnx' and args.model is None:
    parser.error('--runtime=onnx needs --model FILE.onnx (written by python '
                 '-m f2s.export)')
  return args


def main(argv: list[str] | None = None) -> int:
  """The command (and the `f2s-sketch` console script); returns its exit
  code."""
  args = parse_args(argv)
  from absl import logging  # keep Orbax's INFO lines quiet
  logging.set_verbosity(logging.WARNING)
  Image.MAX_IMAGE_PIXELS = None  # check_size is the limit
  try:  # problems that no file would get past
    if not args.no_align:
      align.check_detector()
    prepare_out_dir(args.out)
    sketcher = load_sketcher(args.runtime, args.model, args.workdir)
  except (align.ImageError, OutputError, LoadError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  files, errors = expand_inputs(args.inputs)
  for line in errors:
    print(line, file=sys.stderr)
  failed = len(errors)
  protected = frozenset(os.path.realpath(f) for f in files)
  stems: dict[str, str] = {}
  for path in files:
    stem = os.path.splitext(os.path.basename(path))[0]
    try:
      if stems.setdefault(stem, path) != path:
        raise OutputError(
            f'its sketch would overwrite that of {stems[stem]} (both named '
            f'{stem}.png); sketch it separately with another --out')
      written = sketch_file(path, sketcher, args.out,
                            align_faces=not args.no_align,
                            side=args.side_by_side, protected=protected,
                            max_megapixels=args.max_megapixels)
    except (align.ImageError, OutputError) as e:
      print(f'error: {path}: {e}', file=sys.stderr)
      failed += 1
      continue
    print(f'{path} -> {", ".join(written)}', flush=True)
  return 1 if failed else 0


if __name__ == '__main__':
  sys.exit(main())
