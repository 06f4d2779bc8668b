"""`python -m f2s.demo` in a real browser (Debian's chromium driven by
playwright) and through gradio_client: the page's sketch equals
`python -m f2s.sketch`'s pixel for pixel, bad uploads get one readable line,
8 concurrent API calls all get theirs, and the server leaves no files.

The server and the command line run as subprocesses without the suite's
XLA_FLAGS (as the README starts them), on a free port on 127.0.0.1.
F2S_DEMO_SCREENSHOT=PATH saves the page on the astronaut there (the README's
docs/demo.png).
"""
import dataclasses
import io
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from f2s import demo as demo_module
from f2s import pretrained
from f2s.datasets import faces as procedural

pytest.importorskip('gradio', reason="the demo needs gradio: pip install -e "
                    "'.[demo]'")
gradio_client = pytest.importorskip(
    'gradio_client', reason="needs gradio_client: pip install -e '.[demo]'")
skimage_data = pytest.importorskip('skimage.data')
try:  # the browser tests' only
  from playwright import sync_api
except ImportError:
  sync_api = None

CHROMIUM = '/usr/bin/chromium'
PACKAGE = os.path.dirname(demo_module.__file__)
# The fixture's server start (with the command line's run) took 27-37 s on
# the busy 2-core CPU.
STARTUP_S = 240
MAX_MEGAPIXELS = 2.0  # the astronaut has 0.26, its JPEG 1.44
# The photos compared with `python -m f2s.sketch`'s sketches.
SKETCHED = ('astronaut.png', 'big_astronaut.jpg')
MAX_FILE_MB = 1.0


def subprocess_env(tmp: str) -> dict[str, str]:
  """The environment without the suite's XLA_FLAGS, temporary files in
  `tmp`."""
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  env['TMPDIR'] = tmp
  return env


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
  folder = tmp_path_factory.mktemp('photos')
  astronaut = Image.fromarray(skimage_data.astronaut())
  astronaut.save(folder / 'astronaut.png')
  # Decoded at half size for detection (JPEG's DCT scaling), as f2s.sketch
  # does only when it gets the file itself.
  astronaut.resize((1200, 1200)).save(folder / 'big_astronaut.jpg',
                                      quality=90)
  (folder / 'not_a_photo.jpg').write_text('hello\n')
  Image.new('RGB', (320, 400), (128, 128, 128)).save(folder / 'blank.png')
  group = Image.new('RGB', (900, 600), (70, 110, 150))
  for k, index in enumerate((2, 5)):  # two procedural faces, as test_sketch's
    face = Image.fromarray(procedural.render_pair(0, index)[0])
    group.paste(face.resize((260, 325)), (30 + k * 280, 60))
  group.save(folder / 'group.png')
  Image.new('RGB', (2000, 1500), (128, 128, 128)).save(folder / 'huge.png')
  # Noise does not compress: over MAX_FILE_MB on disk, 0.5 megapixels.
  noise = np.random.default_rng(0).integers(0, 256, (700, 700, 3), np.uint8)
  Image.fromarray(noise).save(folder / 'heavy.png')
  return folder


@dataclasses.dataclass(frozen=True)
class Server:
  url: str
  server: subprocess.Popen
  tmp: str  # its TMPDIR
  cwd: str  # where it runs
  package: list[str]  # the files of f2s/ before it started
  expected: dict[str, np.ndarray]  # the command line's sketches by photo


@pytest.fixture(scope='module')
def demo(tmp_path_factory, photos):
  tmp = tmp_path_factory.mktemp('demo_tmp')
  cwd = tmp_path_factory.mktemp('demo_cwd')
  log = tmp_path_factory.mktemp('demo_log') / 'stderr.txt'
  package = sorted(os.listdir(PACKAGE))
  with open(log, 'w') as stderr:
    server, url = demo_module.start_subprocess(
        [f'--max-megapixels={MAX_MEGAPIXELS}', f'--max-file-mb={MAX_FILE_MB}'],
        cwd=cwd, env=subprocess_env(str(tmp)), stdout=subprocess.DEVNULL,
        stderr=stderr)
  try:
    # The command line's sketch, while the server starts.
    out = tmp_path_factory.mktemp('cli')
    subprocess.run([sys.executable, '-m', 'f2s.sketch',
                    *(str(photos / name) for name in SKETCHED),
                    '--out', str(out)],
                   env=subprocess_env(str(tmp_path_factory.mktemp('cli_tmp'))),
                   check=True, capture_output=True, timeout=STARTUP_S)
    expected = {name: np.asarray(Image.open(
        out / (os.path.splitext(name)[0] + '.png'))) for name in SKETCHED}
    try:
      demo_module.wait_until_serving(url, server, STARTUP_S)
    except RuntimeError as e:
      pytest.fail(f'{e}: {log.read_text()}')
    yield Server(url, server, str(tmp), str(cwd), package, expected)
  finally:
    if server.poll() is None:
      server.kill()
      server.wait()


@pytest.fixture(scope='module')
def browser():
  if sync_api is None:
    pytest.skip("no playwright: pip install -e '.[demo]'")
  if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(f'no {CHROMIUM}: apt-get install chromium')
  with sync_api.sync_playwright() as playwright:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM)
    yield chromium
    chromium.close()


@pytest.fixture
def page(browser, demo):
  context = browser.new_context(viewport={'width': 1200, 'height': 900})
  page = context.new_page()
  page.goto(demo.url)
  yield page
  context.close()


def upload(page, path) -> str:
  """Uploads `path` as the photo; returns the status line once it names the
  result."""
  page.locator('#photo input[type=file]').set_input_files(str(path))
  return status_line(page)


def status_line(page) -> str:
  status = page.locator('#status')
  sync_api.expect(status).to_contain_text(
      re.compile('sketched by|error:'), timeout=60_000)
  return status.inner_text().strip()


def read_png(page, url: str) -> np.ndarray:
  """The image at `url` as the browser gets it, decoded losslessly."""
  response = page.request.get(url)
  assert response.ok
  assert response.headers['content-type'] == 'image/png', url
  return np.asarray(Image.open(io.BytesIO(response.body())))


def test_a_text_file_named_jpg_gets_one_error_line(page, photos):
  assert upload(page, photos / 'not_a_photo.jpg') == (
      'error: not_a_photo.jpg: not an image (unknown file format)')
  assert page.locator('#faces img').count() == 0


def test_the_pages_sketch_is_the_command_lines(page, photos, demo):
  assert upload(page, photos / 'astronaut.png').startswith(
      f'1 face sketched by {pretrained.DEFAULT}')
  images = page.locator('#faces img')
  sync_api.expect(images).to_have_count(2)
  crop, drawn = (read_png(page, images.nth(k).get_attribute('src'))
                 for k in range(2))
  expected = demo.expected['astronaut.png']
  np.testing.assert_array_equal(drawn, expected)
  assert crop.shape == (*expected.shape, 3)  # the sketch's window
  download = page.locator('#downloads a')
  sync_api.expect(download).to_have_count(1)
  assert download.get_attribute('href').endswith('/astronaut.png')
  np.testing.assert_array_equal(
      read_png(page, download.get_attribute('href')), expected)
  boxed = read_png(page, page.locator('#boxed img').get_attribute('src'))
  assert boxed.shape == skimage_data.astronaut().shape
  box = np.all(boxed == demo_module.BOX_COLOUR, axis=-1)
  assert 100 < box.sum() < 0.1 * box.size  # a box, not a filled area
  if os.environ.get('F2S_DEMO_SCREENSHOT'):
    # 256 colours: a quarter of the bytes, for the README.
    shot = Image.open(io.BytesIO(page.screenshot(full_page=True)))
    shot.quantize(256).save(os.environ['F2S_DEMO_SCREENSHOT'], optimize=True)


def test_a_jpegs_sketch_is_the_command_lines(page, photos, demo):
  assert upload(page, photos / 'big_astronaut.jpg').startswith('1 face')
  images = page.locator('#faces img')
  sync_api.expect(images).to_have_count(2)
  np.testing.assert_array_equal(
      read_png(page, images.nth(1).get_attribute('src')),
      demo.expected['big_astronaut.jpg'])


def test_each_face_gets_its_crop_and_sketch(page, photos):
  assert upload(page, photos / 'group.png').startswith('2 faces sketched')
  images = page.locator('#faces img')
  sync_api.expect(images).to_have_count(4)  # aligned | sketch, per face
  links = page.locator('#downloads a')
  sync_api.expect(links).to_have_count(2)
  assert [links.nth(k).get_attribute('href').rsplit('/', 1)[1]
          for k in range(2)] == ['group.png', 'group_1.png']
  for k in range(2):
    np.testing.assert_array_equal(
        read_png(page, images.nth(2 * k + 1).get_attribute('src')),
        read_png(page, links.nth(k).get_attribute('href')))


def test_the_model_choice_starts_with_the_run_then_the_shipped_ones():
  assert list(demo_module.model_loaders(None, 'runs/x')) == [
      'run: runs/x', *pretrained.available()]
  # Without either, f2s.sketch's default first (not the first by name).
  others = [n for n in pretrained.available() if n != pretrained.DEFAULT]
  assert list(demo_module.model_loaders(None, None)) == [
      pretrained.DEFAULT, *others]
  assert list(demo_module.model_loaders('exported', None)) == [
      'exported', *pretrained.available()]


def test_no_face_suggests_the_whole_image_which_sketches_it(page, photos):
  assert upload(page, photos / 'blank.png') == (
      f'error: blank.png: {demo_module.NO_FACE}')
  page.locator('#whole input').check()
  page.locator('#run').click()
  sync_api.expect(page.locator('#status')).to_contain_text(
      'the whole image sketched by', timeout=60_000)
  images = page.locator('#faces img')
  sync_api.expect(images).to_have_count(2)
  drawn = read_png(page, images.nth(1).get_attribute('src'))
  assert drawn.shape == (250, 200)
  assert page.locator('#boxed img').count() == 1


def test_an_image_over_the_megapixel_limit_gets_one_error_line(page, photos):
  assert upload(page, photos / 'huge.png') == (
      'error: huge.png: 2000x1500 pixels (3 megapixels) is over the limit of '
      f'{MAX_MEGAPIXELS:g} megapixels; not decoded (raise the limit with '
      '--max-megapixels=N)')


def test_an_upload_over_the_file_size_limit_is_refused(page, photos):
  assert os.path.getsize(photos / 'heavy.png') > MAX_FILE_MB * 1e6
  page.locator('#photo input[type=file]').set_input_files(
      str(photos / 'heavy.png'))
  sync_api.expect(page.get_by_text(re.compile(
      'exceed the maximum allowed size', re.I)).first).to_be_visible(
          timeout=30_000)
  assert page.locator('#faces img').count() == 0


def test_eight_concurrent_api_calls_all_get_their_sketch(demo, photos,
                                                          tmp_path):
  client = gradio_client.Client(demo.url, verbose=False,
                                download_files=str(tmp_path),
                                analytics_enabled=False)
  photo = gradio_client.handle_file(str(photos / 'astronaut.png'))
  jobs = [client.submit(photo, api_name='/sketch') for _ in range(8)]
  for job in jobs:
    np.testing.assert_array_equal(
        np.asarray(Image.open(job.result(timeout=120))),
        demo.expected['astronaut.png'])


def test_the_api_names_the_problem(demo, photos, tmp_path):
  client = gradio_client.Client(demo.url, verbose=False,
                                download_files=str(tmp_path),
                                analytics_enabled=False)
  with pytest.raises(gradio_client.exceptions.AppError,
                     match='^not_a_photo.jpg: not an image'):
    client.predict(gradio_client.handle_file(str(photos / 'not_a_photo.jpg')),
                   api_name='/sketch')


def test_a_port_in_use_gets_one_error_line(demo, tmp_path):
  port = demo.url.rsplit(':', 1)[1].strip('/')
  result = subprocess.run(
      [sys.executable, '-m', 'f2s.demo', f'--port={port}'], cwd=tmp_path,
      env=subprocess_env(str(tmp_path)), capture_output=True, text=True,
      timeout=STARTUP_S)
  assert result.returncode == 1
  assert result.stderr.splitlines() == [
      f'error: cannot serve on 127.0.0.1:{port} (Address already in use): '
      'choose another --port or --host']


def test_stopping_leaves_no_files(demo):
  demo.server.send_signal(signal.SIGTERM)
  assert demo.server.wait(timeout=60) == 0
  assert os.listdir(demo.tmp) == []  # the workspace removed, gradio's too
  assert os.listdir(demo.cwd) == []  # nothing written where it ran
  assert sorted(os.listdir(PACKAGE)) == demo.package  # nor beside its code
