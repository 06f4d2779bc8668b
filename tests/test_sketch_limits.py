"""f2s.sketch's pixel limit: checked from the header, before decoding, so
one huge image is one error line and the rest of the batch is sketched."""
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from f2s import sketch


def _chunk(kind: bytes, data: bytes) -> bytes:
  return (struct.pack('>I', len(data)) + kind + data
          + struct.pack('>I', zlib.crc32(kind + data)))


def huge_png(path, width=40000, height=40000) -> str:
  """A PNG whose header says width x height RGB; its few bytes of pixel
  data would fail to decode, so only a header check can refuse it."""
  header = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
  with open(path, 'wb') as f:
    f.write(b'\x89PNG\r\n\x1a\n' + _chunk(b'IHDR', header)
            + _chunk(b'IDAT', zlib.compress(b'\0' * 16)) + _chunk(b'IEND', b''))
  return str(path)


@pytest.fixture
def batch(tmp_path, monkeypatch):
  """(huge PNG, an ordinary photo, out dir); PIL's limit restored after."""
  monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', Image.MAX_IMAGE_PIXELS)
  small = tmp_path / 'small.png'
  Image.fromarray(np.full((250, 200, 3), 128, np.uint8)).save(small)
  return huge_png(tmp_path / 'huge.png'), str(small), str(tmp_path / 'out')


def test_a_huge_image_is_refused_from_its_header(batch, capsys):
  huge, small, out = batch
  assert sketch.main([huge, small, f'--out={out}', '--no-align']) == 1
  captured = capsys.readouterr()
  assert captured.err.splitlines() == [
      f'error: {huge}: 40000x40000 pixels (1600 megapixels) is over the '
      'limit of 250 megapixels; not decoded (raise the limit with '
      '--max-megapixels=N)']
  assert f'{small} -> {out}/small.png' in captured.out


def test_max_megapixels_raises_the_limit(batch, capsys):
  huge, _, out = batch
  assert sketch.main([huge, f'--out={out}', '--no-align',
                      '--max-megapixels=2000']) == 1
  # Past the limit, decoding is tried: these pixel data are not an image.
  (line,) = capsys.readouterr().err.splitlines()
  assert line.startswith(f'error: {huge}: unreadable image')


def test_a_bad_limit_is_named(capsys):
  with pytest.raises(SystemExit):
    sketch.main(['x.png', '--max-megapixels=0'])
  assert '--max-megapixels=0: expected a positive number' in (
      capsys.readouterr().err)
