"""A web page for sketching one's own photos: `python -m f2s.demo`.

  pip install -e '.[demo]'
  python -m f2s.demo                          # http://127.0.0.1:7860
  python -m f2s.demo --workdir=runs/casq_cuhk --port=8080

Drop, paste or take (webcam) a photo: the page shows it with the faces
found boxed (`f2s.align`, as `python -m f2s.sketch` finds them) and, for
each face, its aligned crop beside its sketch, with the sketches as PNG
downloads; "Whole image" sketches the photo without face detection (as
`--no-align`). A sketch equals, pixel for pixel, the file that
`python -m f2s.sketch` writes for the same photo and model.

The same sketch is one API call, `/sketch` (an image file in, the largest
face's sketch out as PNG), with the model the server started with:

  from gradio_client import Client, handle_file
  client = Client('http://127.0.0.1:7860/', analytics_enabled=False,
                  ssl_verify=False)  # http: no certificate to check
  png = client.predict(handle_file('photo.jpg'), api_name='/sketch')

Each model is loaded and compiled once, on first use (the starting one
before the page is served), and shared by all requests, which queue (at
most --queue-size waiting) and run one at a time. Uploads and outputs live
in a temporary folder, removed when the server stops (Ctrl-C or SIGTERM);
nothing is written into the working directory. Gradio's analytics are off.
"""
import argparse
import dataclasses
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw

from f2s import align, pretrained, sketch
from f2s.data import preprocess

if TYPE_CHECKING:  # imported by build_page, once GRADIO_TEMP_DIR is set
  import gradio

# A server's defaults: 50 megapixels decode to ~150 MB of RGB, and a 25 MB
# upload holds any phone's JPEG.
MAX_MEGAPIXELS = 50.0
MAX_FILE_MB = 25
QUEUE_SIZE = 16
# The boxed photo is shown at most this many pixels on its longer side.
DISPLAY_SIDE = 1024
BOX_COLOUR = (255, 48, 48)
# A request's download files are removed by the next request after this
# long (gradio has copied them into its cache by then).
OUTPUT_LIFETIME_S = 60
RUN_PREFIX = 'run: '  # the --workdir run's name in the model choice
NO_PHOTO = 'Upload, drop, paste or take a photo.'
NO_FACE = ('no upright, frontal face found: turn the photo upright, or tick '
           '"Whole image" to sketch it without face detection')


@dataclasses.dataclass(frozen=True)
class Sketched:
  """One photo's result: its faces (largest first; none for the whole
  image), their uint8 (250, 200, 3) crops and uint8 (H, W, C) sketches."""
  photo: align.Photo
  faces: list[align.Face]
  crops: np.ndarray
  sketches: np.ndarray


def sketch_photo(path: str, sketcher: sketch.Sketcher, *, align_faces: bool,
                 max_megapixels: float) -> Sketched:
  """Every face of the photo at `path` sketched as `python -m f2s.sketch`
  does (all faces in one batch); raises align.ImageError with the problem."""
  sketch.check_size(path, max_megapixels)
  photo = align.Photo(path)
  if align_faces:
    faces = align.find_faces(photo)
    if not faces:
      raise align.ImageError(NO_FACE)
    crops = np.stack([face.pixels for face in align.align(photo, faces)])
  else:
    faces, crops = [], sketch.whole_image_crop(photo, sketcher)[None]
  return Sketched(photo, faces, crops, sketch.to_uint8(sketcher(crops)))


def boxed_photo(photo: align.Photo, faces: list[align.Face],
                max_side: int = DISPLAY_SIDE) -> np.ndarray:
  """uint8 RGB: the photo at most `max_side` pixels on its longer side, each
  face boxed and numbered (1 = the largest)."""
  scale = min(1.0, max_side / max(photo.size))
  size = (max(1, round(photo.size[0] * scale)),
          max(1, round(photo.size[1] * scale)))
  image, _ = photo.image(scale)
  # A new image: the decoded photo is the one the crops were sampled from.
  image = image.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
  draw = ImageDraw.Draw(image)
  line = max(2, round(max(size) / 300))
  for number, face in enumerate(faces, 1):
    x, y, w, h = face.box * (size[0] / photo.size[0])
    draw.rectangle((x, y, x + w, y + h), outline=BOX_COLOUR, width=line)
    text = max(16, round(h / 4))  # the number above the box's corner
    draw.text((x, max(0, y - text - 2 * line)), str(number),
              fill=BOX_COLOUR, font_size=text)
  return np.asarray(image)


def crop_window(crop: np.ndarray, sketcher: sketch.Sketcher) -> np.ndarray:
  """The part of a 250x200 crop that the sketch covers."""
  top, left = sketcher.window()
  h, w = sketcher.shape
  return crop[top:top + h, left:left + w]


def remove_older(folder: str, age_s: float) -> None:
  """Removes the entries of `folder` last changed over `age_s` ago."""
  now = time.time()
  for entry in os.scandir(folder):
    if now - entry.stat().st_mtime > age_s:
      shutil.rmtree(entry.path, ignore_errors=True)


def sketch_names(stem: str, count: int) -> list[str]:
  """The file names `python -m f2s.sketch` gives a photo's sketches."""
  return [f'{stem}_{k}.png' if k else f'{stem}.png' for k in range(count)]


class Models:
  """The models to choose from, by name: each loaded and compiled once, on
  first use, and shared by every request."""

  def __init__(self, loaders: dict[str, Callable[[], pretrained.TrainedModel]]):
    self.loaders = loaders
    self._sketchers: dict[str, sketch.Sketcher] = {}
    self._lock = threading.Lock()

  @property
  def names(self) -> list[str]:
    return list(self.loaders)

  def get(self, name: str) -> sketch.Sketcher:
    """The sketcher `name`; raises pretrained.ModelError."""
    if name not in self.loaders:
      raise pretrained.ModelError(f'no model {name!r} (choose one of '
                                  f'{", ".join(self.loaders)})')
    with self._lock:  # two first requests load it once
      if name not in self._sketchers:
        sketcher = sketch.Sketcher(self.loaders[name]())
        # Compiles the one-face batch before a request waits for it.
        sketcher(np.zeros((1, *preprocess.RECORD_SHAPE, 3), np.uint8))
        self._sketchers[name] = sketcher
      return self._sketchers[name]


def model_loaders(model: str | None, workdir: str | None
                  ) -> dict[str, Callable[[], pretrained.TrainedModel]]:
  """The choice: the starting model first (--workdir's run, --model, or
  f2s.sketch's default), then the other shipped models."""
  loaders = {}
  if workdir is not None:
    loaders[RUN_PREFIX + workdir] = lambda: sketch.load_model(None, workdir)
  else:
    loaders[model or pretrained.DEFAULT] = lambda: sketch.load_model(model,
                                                                     None)
  for name in pretrained.available():
    loaders.setdefault(name, lambda name=name: pretrained.load(name))
  return loaders


def write_examples(folder: str) -> list[str]:
  """Example photos, none from a face database: two of f2s's procedural
  faces on a backdrop and, with scikit-image, its astronaut (NASA, public
  domain). Returns their paths."""
  from f2s.datasets import faces as procedural
  os.makedirs(folder, exist_ok=True)
  paths = []
  for index in (0, 3):
    face = Image.fromarray(procedural.render_pair(0, index)[0])
    canvas = Image.new('RGB', (480, 560), (70, 110, 150))
    canvas.paste(face.resize((320, 400), Image.Resampling.BICUBIC), (80, 80))
    paths.append(os.path.join(folder, f'procedural_face_{index}.png'))
    canvas.save(paths[-1])
  try:
    import skimage.data
  except ImportError:
    return paths
  paths.append(os.path.join(folder, 'astronaut.png'))
  Image.fromarray(skimage.data.astronaut()).save(paths[-1])
  return paths


def raw_upload(image: 'gradio.Image') -> 'gradio.Image':
  """A gradio.Image that hands over the uploaded file untouched: its own
  preprocessing decodes it with PIL first, which loses JPEG's reduced
  decoding (and so equality with `f2s.sketch`) and fails on a bad file
  before a readable error can be given. (Not a subclass: gradio writes a
  .pyi file beside the module of every component class.)"""
  preprocess = image.preprocess

  def passthrough(payload):
    if payload is not None and payload.path is not None:
      return payload.path
    return preprocess(payload)  # none, or a pasted data: URL saved as PNG

  image.preprocess = passthrough
  return image


class DemoError(ValueError):
  """A request that gets no sketch; the message is the one line shown."""


class Demo:
  """The page's and the API's work: a photo file -> sketches."""

  def __init__(self, models: Models, outputs: str, max_megapixels: float):
    self.models = models
    self.outputs = outputs  # a folder of one folder a request
    self.max_megapixels = max_megapixels

  def run(self, path: str | None, name: str, align_faces: bool
          ) -> tuple[Sketched, sketch.Sketcher]:
    """Raises DemoError with one line: the file's name and its problem."""
    if not path:
      raise DemoError('no photo')
    try:
      sketcher = self.models.get(name)
      return sketch_photo(path, sketcher, align_faces=align_faces,
                          max_megapixels=self.max_megapixels), sketcher
    except align.ImageError as e:
      raise DemoError(f'{os.path.basename(path)}: {e}') from None
    except pretrained.ModelError as e:
      raise DemoError(str(e)) from None

  def new_folder(self) -> str:
    """A folder for one request's output files. Those of requests over
    OUTPUT_LIFETIME_S old are removed: gradio has its copies.

    Outputs are files, not arrays: gradio writes an array's PNG in place at
    a path named by its content, which another request for the same photo
    may be sending (a truncated download, seen with 8 concurrent calls); a
    file is copied into its cache atomically."""
    remove_older(self.outputs, OUTPUT_LIFETIME_S)
    return tempfile.mkdtemp(dir=self.outputs)

  def page(self, path: str | None, name: str, whole_image: bool
           ) -> tuple[str, str | None, list[tuple[str, str]], list[str] | None]:
    """(status line, boxed photo, [(crop, caption), (sketch, caption)...],
    sketches) for the page; images as PNG files (of the sketches, the ones
    `python -m f2s.sketch` writes)."""
    if not path:  # none yet, or removed
      return NO_PHOTO, None, [], None
    start = time.perf_counter()
    try:
      result, sketcher = self.run(path, name, not whole_image)
    except DemoError as e:
      return f'**error:** {e}', None, [], None
    folder = self.new_folder()
    stem = os.path.splitext(os.path.basename(path))[0]
    sketches, gallery = [], []
    for number, (crop, pixels, file) in enumerate(
        zip(result.crops, result.sketches,
            sketch_names(stem, len(result.crops))), 1):
      sketches.append(os.path.join(folder, file))
      sketch.write_png(sketches[-1], pixels)
      aligned = os.path.join(folder, f'{file[:-4]}_aligned.png')
      sketch.write_png(aligned, crop_window(crop, sketcher))
      what = f'face {number}' if result.faces else 'whole image'
      gallery += [(aligned, f'{what}: aligned' if result.faces else what),
                  (sketches[-1], f'{what}: sketch')]
    boxed = os.path.join(folder, f'{stem}_faces.png')
    sketch.write_png(boxed, boxed_photo(result.photo, result.faces))
    found = ('the whole image' if whole_image else
             f'{len(result.faces)} face{"s" * (len(result.faces) > 1)}')
    status = (f'{found} sketched by {name} in '
              f'{time.perf_counter() - start:.2f} s')
    return status, boxed, gallery, sketches

  def api(self, path: str | None) -> str:
    """The PNG file of the largest face's sketch, by the starting model."""
    result, _ = self.run(path, self.models.names[0], True)
    stem = os.path.splitext(os.path.basename(path))[0]
    file = os.path.join(self.new_folder(), f'{stem}.png')
    sketch.write_png(file, result.sketches[0])
    return file


def build_page(demo: Demo, examples: list[str]) -> 'gradio.Blocks':
  """The page. Imports gradio: GRADIO_TEMP_DIR must be set before, gradio
  reads it on import."""
  import gradio as gr

  def api(path: str | None) -> str:
    try:
      return demo.api(path)
    except DemoError as e:
      raise gr.Error(str(e)) from None

  # Files over an hour old are deleted while serving.
  with gr.Blocks(title='f2s: face photo to pencil sketch',
                 analytics_enabled=False, delete_cache=(600, 3600)) as page:
    gr.Markdown('# f2s: face photo → pencil sketch\nUpload, drop, paste or '
                'take a photo; each face found is aligned and sketched.')
    with gr.Row():
      with gr.Column():
        photo = raw_upload(gr.Image(
            label='Photo', type='filepath', image_mode=None, format='png',
            sources=['upload', 'clipboard', 'webcam'], elem_id='photo'))
        model = gr.Dropdown(demo.models.names, value=demo.models.names[0],
                            label='Model', elem_id='model')
        whole = gr.Checkbox(label='Whole image (no face detection)',
                            elem_id='whole')
        button = gr.Button('Sketch', variant='primary', elem_id='run')
        gr.Examples(examples, inputs=photo, label='Examples')
      with gr.Column():
        status = gr.Markdown(elem_id='status')
        boxed = gr.Image(label='Faces found', format='png',
                         interactive=False, elem_id='boxed')
    gallery = gr.Gallery(label='Each face: aligned | sketch', format='png',
                         columns=4, object_fit='contain', interactive=False,
                         elem_id='faces')
    files = gr.File(label='Sketches (PNG)', file_count='multiple',
                    interactive=False, elem_id='downloads')
    # One model at a time, whichever event asks (page or API).
    shared = dict(concurrency_limit=1, concurrency_id='model')
    # A new photo (uploaded, pasted, taken, an example) is sketched at once.
    for trigger in (button.click, photo.change):
      trigger(demo.page, [photo, model, whole], [status, boxed, gallery, files],
              api_visibility='private', **shared)
    api_in = raw_upload(gr.Image(type='filepath', image_mode=None,
                                 visible=False))
    api_out = gr.Image(type='filepath', format='png', visible=False)
    gr.Button(visible=False).click(api, api_in, api_out,
                                   api_name='sketch', **shared)
  return page


def start_subprocess(flags: list[str], **popen: Any
                     ) -> tuple[subprocess.Popen, str]:
  """`python -m f2s.demo FLAGS` on a free port of 127.0.0.1, for tests and
  benchmarks: (its process, its URL). `popen`: subprocess.Popen's options."""
  with socket.socket() as s:  # free now; the demo binds it a moment later
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
  server = subprocess.Popen([sys.executable, '-m', 'f2s.demo', '--host',
                             '127.0.0.1', f'--port={port}', *flags], **popen)
  return server, f'http://127.0.0.1:{port}/'


def wait_until_serving(url: str, server: subprocess.Popen,
                       timeout_s: float) -> None:
  """Returns once `url` answers; raises RuntimeError if `server` exits or
  `timeout_s` pass first."""
  deadline = time.monotonic() + timeout_s
  while time.monotonic() < deadline:
    if server.poll() is not None:
      raise RuntimeError(f'the demo exited with {server.returncode} before '
                         f'serving {url}')
    try:
      with urllib.request.urlopen(url, timeout=5):
        return
    except (urllib.error.URLError, ConnectionError, TimeoutError):
      time.sleep(0.5)
  raise RuntimeError(f'the demo did not serve {url} within {timeout_s:g} s')


def parse_args(argv: list[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      prog='python -m f2s.demo',
      description='Serve a web page that sketches the faces in photos.')
  sketch.add_model_source(
      parser, workdir_help='start with the best checkpoint of this run',
      model_also=' (the starting model)')
  parser.add_argument('--host', default='127.0.0.1',
                      help='address to serve on (default: 127.0.0.1, this '
                      'machine only)')
  parser.add_argument('--port', type=int, default=7860)
  parser.add_argument('--max-megapixels', type=float, default=MAX_MEGAPIXELS,
                      metavar='N', help='refuse images of more than N '
                      f'megapixels (default: {MAX_MEGAPIXELS:g})')
  parser.add_argument('--max-file-mb', type=float, default=MAX_FILE_MB,
                      metavar='MB', help='refuse uploads of more than MB '
                      f'megabytes (default: {MAX_FILE_MB:g})')
  parser.add_argument('--queue-size', type=int, default=QUEUE_SIZE,
                      metavar='N', help='requests waiting at most; more are '
                      f'refused (default: {QUEUE_SIZE})')
  args = parser.parse_args(argv)
  for flag in ('max_megapixels', 'max_file_mb', 'queue_size'):
    if getattr(args, flag) <= 0:
      parser.error(f'--{flag.replace("_", "-")}={getattr(args, flag):g}: '
                   'expected a positive number')
  return args


def main(argv: list[str] | None = None) -> int:
  args = parse_args(argv)
  if importlib.util.find_spec('gradio') is None:
    print("error: the demo needs gradio: pip install -e '.[demo]'",
          file=sys.stderr)
    return 1
  try:  # before the model's load and compilation, which take seconds
    with socket.create_server((args.host, args.port)):
      pass
  except OSError as e:
    reason = os.strerror(e.errno) if e.errno else str(e)
    print(f'error: cannot serve on {args.host}:{args.port} ({reason}): '
          'choose another --port or --host',
          file=sys.stderr)
    return 1
  from absl import logging  # keep Orbax's INFO lines quiet
  logging.set_verbosity(logging.WARNING)
  Image.MAX_IMAGE_PIXELS = None  # check_size is the limit
  # SIGTERM ends the server as Ctrl-C does, so the workspace is removed.
  signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
  with tempfile.TemporaryDirectory(prefix='f2s-demo-') as workspace:
    # Every file gradio keeps (uploads, its copies of outputs and examples).
    os.environ['GRADIO_TEMP_DIR'] = os.path.join(workspace, 'gradio')
    os.environ['GRADIO_ANALYTICS_ENABLED'] = 'False'
    outputs = os.path.join(workspace, 'outputs')
    os.makedirs(outputs)
    models = Models(model_loaders(args.model, args.workdir))
    try:
      align.check_detector()
      models.get(models.names[0])
    except (align.ImageError, pretrained.ModelError) as e:
      print(f'error: {e}', file=sys.stderr)
      return 1
    demo = Demo(models, outputs, args.max_megapixels)
    page = build_page(demo, write_examples(os.path.join(workspace,
                                                        'examples')))
    page.queue(max_size=args.queue_size)
    try:
      page.launch(server_name=args.host, server_port=args.port,
                  max_file_size=f'{args.max_file_mb:g}mb', ssr_mode=False,
                  footer_links=['api'])
    finally:
      page.close()
  return 0


if __name__ == '__main__':
  sys.exit(main())
