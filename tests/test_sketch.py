"""`python -m f2s.sketch`: outputs equal `model.apply` on the aligned input,
every face is written, and every bad input gets its one-line error."""
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from f2s import align, models, pretrained, sketch
from f2s.data import preprocess
from f2s.datasets import faces as procedural
from f2s.training import state as state_lib


def make_model(folder: str, config) -> str:
  """Saves a randomly initialised model of `config` (fast: no training)."""
  spec = preprocess.spec_from_config(config.data)
  model = models.build_model(config.model, spec.sketch_shape,
                             value_range=spec.value_range)
  variables = jax.jit(lambda key: state_lib.init_variables(
      model, (1, *spec.sketch_shape[:2], 3), key))(jax.random.PRNGKey(0))
  pretrained.save(folder, config, variables)
  return folder


@pytest.fixture(scope='module')
def casq_model(tmp_path_factory, load_config):
  return make_model(str(tmp_path_factory.mktemp('models') / 'casq'),
                    load_config('casq', 'tiny'))


@pytest.fixture(scope='module')
def standard_model(tmp_path_factory, load_config):
  config = load_config('casq', 'tiny')
  config.data.protocol = 'standard'
  return make_model(str(tmp_path_factory.mktemp('models') / 'standard'),
                    config)


def portrait(path: str, indices: tuple[int, ...] = (0,),
             size: tuple[int, int] = (700, 600), scale: float = 1.6) -> str:
  """Procedural faces (which YuNet finds) side by side on a background."""
  canvas = Image.new('RGB', size, (70, 110, 150))
  for k, index in enumerate(indices):
    face = Image.fromarray(procedural.render_pair(0, index)[0])
    face = face.resize((round(200 * scale), round(250 * scale)))
    canvas.paste(face, (30 + k * (face.width + 20), 60))
  canvas.save(path)
  return path


def expected_sketch(model_dir: str, crop: np.ndarray) -> np.ndarray:
  """uint8 sketch by plain `model.apply` (no jit) on one aligned crop."""
  trained = pretrained.load(model_dir)
  spec = preprocess.spec_from_config(trained.config.data)
  photo = preprocess.preprocess_batch(
      crop[None], np.zeros((1, *crop.shape[:2], 1), np.uint8), spec)['photo']
  logits, _ = trained.build().apply(
      trained.variables, photo, train=False,
      rngs={models.SAMPLE_RNG: jax.random.PRNGKey(0),
            models.CODEBOOK_RNG: jax.random.PRNGKey(1)})
  out = preprocess.crop_to_valid(np.asarray(jax.nn.sigmoid(logits)), spec)[0]
  return np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)


def read(path) -> np.ndarray:
  return np.asarray(Image.open(path))


def test_cli_sketch_equals_model_apply_on_the_aligned_face(tmp_path,
                                                           casq_model):
  photo = portrait(str(tmp_path / 'me.png'))
  out = tmp_path / 'out'
  assert sketch.main([photo, '--model', casq_model, '--out', str(out),
                      '--side-by-side']) == 0
  pair = read(out / 'me.png')
  assert pair.shape == (250, 400, 3)
  crop = pair[:, :200]  # the aligned photo, the whole CUHK frame
  eyes = align.detect(crop)[0].eyes
  assert np.abs(eyes - align.TEMPLATE).max() <= 4
  want = expected_sketch(casq_model, crop)
  assert want.shape == (200, 200, 3)  # casq: the 200x200 centre
  np.testing.assert_allclose(pair[25:225, 200:], want, atol=1)
  assert (pair[:25, 200:] == 255).all()  # paper outside the model's window

  assert sketch.main([photo, '--model', casq_model, '--out', str(out)]) == 0
  plain = read(out / 'me.png')
  assert plain.shape == (200, 200, 3)
  np.testing.assert_allclose(plain, want, atol=1)


def test_standard_protocol_writes_a_grey_250x200_sketch(tmp_path,
                                                        standard_model):
  photo = portrait(str(tmp_path / 'me.jpg'))
  out = tmp_path / 'out'
  assert sketch.main([photo, '--model', standard_model, '--out', str(out),
                      '--side-by-side']) == 0
  pair = read(out / 'me.png')
  assert pair.shape == (250, 400, 3)
  want = expected_sketch(standard_model, pair[:, :200])
  assert want.shape == (250, 200, 1)
  np.testing.assert_allclose(pair[:, 200:], np.repeat(want, 3, -1), atol=1)
  assert sketch.main([photo, '--model', standard_model, '--out',
                      str(out)]) == 0
  plain = Image.open(out / 'me.png')
  assert plain.mode == 'L' and plain.size == (200, 250)


def test_every_face_gets_a_sketch(tmp_path, casq_model, capsys):
  photo = portrait(str(tmp_path / 'group.jpg'), indices=(2, 5),
                   size=(900, 600), scale=1.3)
  out = tmp_path / 'out'
  assert sketch.main([photo, '--model', casq_model, '--out', str(out)]) == 0
  assert sorted(os.listdir(out)) == ['group.png', 'group_1.png']
  assert f'{out}/group.png, {out}/group_1.png' in capsys.readouterr().out


def test_no_align_sketches_the_whole_image(tmp_path, casq_model):
  image = np.random.default_rng(0).integers(0, 256, (90, 160, 3), np.uint8)
  path = str(tmp_path / 'texture.bmp')
  Image.fromarray(image).save(path)
  out = tmp_path / 'out'
  assert sketch.main([path, '--model', casq_model, '--out', str(out),
                      '--no-align', '--side-by-side']) == 0
  pair = read(out / 'texture.png')
  assert pair.shape == (200, 400, 3)  # the model's 200x200 input | sketch
  resized = Image.fromarray(image).resize((200, 200),
                                          Image.Resampling.BICUBIC)
  np.testing.assert_array_equal(pair[:, :200], np.asarray(resized))
  frame = np.zeros((250, 200, 3), np.uint8)
  frame[25:225] = pair[:, :200]
  np.testing.assert_allclose(pair[:, 200:], expected_sketch(casq_model,
                                                            frame), atol=1)


def test_bad_inputs_get_one_line_each_and_the_rest_is_processed(
    tmp_path, casq_model, capsys):
  (tmp_path / 'notes.jpg').write_text('not a photo\n')
  full = tmp_path / 'full.jpg'
  Image.fromarray(procedural.render_pair(0, 1)[0]).save(full)
  (tmp_path / 'cut.jpg').write_bytes(full.read_bytes()[:1500])
  Image.new('RGB', (300, 200), (180, 170, 160)).save(tmp_path / 'wall.png')
  (tmp_path / 'empty').mkdir()
  good = portrait(str(tmp_path / 'good.png'))
  bad = {str(tmp_path / 'notes.jpg'): 'not an image',
         str(tmp_path / 'cut.jpg'): 'unreadable image',
         str(tmp_path / 'missing.jpg'): 'no such file',
         str(tmp_path / 'wall.png'): 'no upright, frontal face found (turn the',
         str(tmp_path / 'empty'): 'no image files'}
  out = tmp_path / 'out'
  code = sketch.main([*bad, good, '--model', casq_model, '--out', str(out)])
  assert code == 1
  captured = capsys.readouterr()
  lines = captured.err.strip().splitlines()
  assert len(lines) == len(bad)
  for path, problem in bad.items():
    (line,) = [l for l in lines if l.startswith(f'error: {path}: ')]
    assert problem in line
  assert os.listdir(out) == ['good.png']
  assert captured.out.strip() == f'{good} -> {out}/good.png'


def test_outputs_never_overwrite_inputs_or_each_other(tmp_path, casq_model,
                                                      capsys):
  (tmp_path / 'a').mkdir()
  (tmp_path / 'b').mkdir()
  first = portrait(str(tmp_path / 'a' / 'x.png'))
  second = portrait(str(tmp_path / 'b' / 'x.jpg'))
  before = read(first)
  code = sketch.main([str(tmp_path / 'a'), str(tmp_path / 'b'), '--model',
                      casq_model, '--out', str(tmp_path / 'a')])
  assert code == 1
  err = capsys.readouterr().err.strip().splitlines()
  assert err[0].startswith(f'error: {first}: its sketch would overwrite the '
                           'input')
  assert err[1].startswith(f'error: {second}: its sketch would overwrite '
                           f'that of {first}')
  np.testing.assert_array_equal(read(first), before)


def test_an_output_dir_that_cannot_be_written(tmp_path, casq_model, capsys):
  photo = portrait(str(tmp_path / 'me.png'))
  (tmp_path / 'file').write_text('')
  for out, problem in [(tmp_path / 'file', 'not a directory'),
                       (tmp_path / 'file' / 'sub',
                        'cannot write the output directory')]:
    assert sketch.main([photo, '--model', casq_model, '--out', str(out)]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f'error: {out}: {problem}')


def test_a_workdir_without_a_checkpoint(tmp_path, capsys):
  photo = portrait(str(tmp_path / 'me.png'))
  run = tmp_path / 'run'
  (run / 'checkpoints').mkdir(parents=True)
  for workdir, problem in [(run, 'no checkpoint in'),
                           (tmp_path / 'typo', 'no such directory')]:
    assert sketch.main([photo, '--workdir', str(workdir), '--out',
                        str(tmp_path / 'out')]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith('error: ') and str(workdir) in line
    assert problem in line
  assert not (tmp_path / 'typo').exists()  # nothing created


def test_an_unknown_model_name(tmp_path, capsys):
  photo = portrait(str(tmp_path / 'me.png'))
  assert sketch.main([photo, '--model', 'nope', '--out',
                      str(tmp_path / 'out')]) == 1
  (line,) = capsys.readouterr().err.strip().splitlines()
  assert line.startswith("error: no shipped model 'nope'")


def test_the_module_exits_non_zero_on_a_bad_file(tmp_path, casq_model):
  text = tmp_path / 'photo.jpg'
  text.write_text('hello\n')
  result = subprocess.run(
      [sys.executable, '-m', 'f2s.sketch', str(text), '--model', casq_model,
       '--out', str(tmp_path / 'out')], capture_output=True, text=True,
      timeout=120)
  assert result.returncode == 1
  assert result.stderr.strip().splitlines() == [
      f'error: {text}: not an image (unknown file format)']


def test_help_names_the_shipped_models_and_the_runtimes(capsys):
  """The shipped models are looked up for the help only (lazily: the onnx
  runtime imports no JAX), and still listed."""
  with pytest.raises(SystemExit):
    sketch.main(['--help'])
  out = ' '.join(capsys.readouterr().out.split())
  shipped = ', '.join(pretrained.available())
  assert f'(default: {pretrained.DEFAULT}; shipped: {shipped})' in out
  assert '--runtime {jax,onnx}' in out
