"""`python -m f2s.export` and `f2s.sketch --runtime=onnx`: the ONNX graph of
every model kind gives the JAX `Sketcher`'s sketch, the shipped model's on a
real face to the issue's 1e-4, and every bad input gets its one line and
leaves no file.

Tolerance: ONNX and JAX compute the same float32 network with other kernels
(accumulation orders, onnxruntime's GroupNormalization), so they agree to
float32 rounding amplified through the network, not exactly. Measured on a
2-core AMD EPYC: 7.2e-6 for the shipped model on the aligned astronaut,
6e-6 to 2.4e-5 for the tiny models (the most for the dense DAE, whose first
layer sums 120,000 products). The tests use the issue's bound for two
implementations, 1e-4, for every model; a conversion error (a missing
sigmoid, bias or crop, a wrong layout or value range) moves the sketch by
far more: one quantizer code chosen otherwise (a rounding tie on a random
input to the shipped model) moved it by 1.3e-2.
"""
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from f2s import align, export, pretrained, sketch
from f2s.datasets import faces as procedural
from test_sketch import make_model, portrait

for _module in ('onnx', 'onnxruntime', 'jax2onnx'):
  pytest.importorskip(_module, reason=f'{_module} is not installed '
                      f'({export.INSTALL})')

TOLERANCE = 1e-4  # see the module docstring

# (config file, argument, settings): every model kind the project trains,
# under both protocols.
KINDS = {
    'dae_paper': ('dae', 'tiny', {}),
    'dae_conv': ('dae', 'tiny,conv', {'data.protocol': 'standard'}),
    'vae_paper': ('vae', 'tiny', {'data.protocol': 'standard'}),
    'vae_conv': ('vae', 'tiny,conv', {}),
    'casq_attention_vq': ('casq', 'tiny,default', {}),
    'casq_gan_skips_grey': ('casq_gan', 'tiny', {'data.protocol': 'standard',
                                                 'model.grey_output': True}),
    # The photo's exposure and light balance are part of the model (graph).
    # At 0.4 no pixel of the test faces clips: at 0.75 up to 60% do, and a
    # random network's norms amplify float32 rounding on such flat regions
    # (measured: 3.8e-3 for the tiny conv DAE at 0.75 without the balance;
    # the exposure and balance alone convert within 3e-7).
    'casq_gan_exposed_balanced': ('casq_gan', 'tiny', {
        'data.protocol': 'standard', 'model.face_exposure': 0.4,
        'model.face_light_balance': True}),
}


def crops(count: int) -> np.ndarray:
  """uint8 (count, 250, 200, 3) aligned procedural face photos."""
  return np.stack([procedural.render_pair(0, i)[0] for i in range(count)])


@pytest.fixture(scope='module', params=sorted(KINDS))
def exported(request, tmp_path_factory, load_config):
  """(model folder, its ONNX file) of a tiny randomly initialised model."""
  name, arg, settings = KINDS[request.param]
  config = load_config(name, arg)
  for key, value in settings.items():
    section, knob = key.split('.')
    config[section][knob] = value
  folder = tmp_path_factory.mktemp(request.param)
  model_dir = make_model(str(folder / 'model'), config)
  path = str(folder / 'model.onnx')
  assert export.main(['--model', model_dir, '--out', path]) == 0
  return model_dir, path


def test_every_kind_exports_and_equals_the_jax_sketcher(exported):
  model_dir, path = exported
  faces = crops(4)
  want = sketch.Sketcher(pretrained.load(model_dir))(faces)  # one chunk of 4
  onnx_sketcher = sketch.OnnxSketcher(path)
  for batch in (1, 3):  # one file for any batch size
    got = onnx_sketcher(faces[:batch])
    assert got.shape == want[:batch].shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want[:batch], rtol=0, atol=TOLERANCE)
  assert want.std() > 1e-3  # not a constant image that anything would match


def test_metadata_name_the_model_protocol_and_shapes(exported):
  import onnx
  model_dir, path = exported
  trained = pretrained.load(model_dir)
  model = onnx.load(path)
  onnx.checker.check_model(model, full_check=True)
  meta = {p.key: p.value for p in model.metadata_props}
  protocol = trained.config.data.protocol
  assert meta[export.METADATA_MODEL] == (
      f'{trained.config.model.name}/{trained.config.model.variant}')
  assert meta[export.METADATA_PROTOCOL] == protocol
  assert meta[export.METADATA_INPUT_SHAPE] == {
      'casq': 'N,200,200,3', 'standard': 'N,256,208,3'}[protocol]
  assert meta[export.METADATA_OUTPUT_SHAPE] == {
      'casq': 'N,200,200,3', 'standard': 'N,250,200,1'}[protocol]
  assert model_dir in meta[export.METADATA_SOURCE]
  (graph_input,) = model.graph.input
  assert graph_input.name == export.INPUT_NAME
  assert graph_input.type.tensor_type.shape.dim[0].dim_param == 'N'
  assert [o.name for o in model.graph.output] == [export.OUTPUT_NAME]


@pytest.fixture(scope='module')
def shipped(tmp_path_factory):
  """The shipped model's ONNX file."""
  path = str(tmp_path_factory.mktemp('shipped') / 'shipped.onnx')
  assert export.main(['--out', path]) == 0
  return path


@pytest.fixture(scope='module')
def astronaut(tmp_path_factory):
  """skimage's astronaut as a PNG file, and its aligned face crop."""
  skimage_data = pytest.importorskip('skimage.data')
  path = str(tmp_path_factory.mktemp('photo') / 'astronaut.png')
  Image.fromarray(skimage_data.astronaut()).save(path)
  photo = align.Photo(path)
  (face,) = align.align(photo, align.find_faces(photo))
  return path, face.pixels


def test_the_shipped_model_on_the_astronaut_within_1e4(shipped, astronaut):
  _, crop = astronaut
  jax_sketcher = sketch.Sketcher(pretrained.load())
  onnx_sketcher = sketch.OnnxSketcher(shipped)
  for batch in (1, 3):
    faces = np.repeat(crop[None], batch, axis=0)
    np.testing.assert_allclose(onnx_sketcher(faces), jax_sketcher(faces),
                               rtol=0, atol=1e-4)


def test_sketch_runtime_onnx_without_jax_within_one_grey_level(
    shipped, astronaut, tmp_path):
  """`f2s.sketch --runtime=onnx`, run where JAX, Flax, ml_collections and
  Orbax cannot be imported, writes the JAX command's PNG within one grey
  level."""
  photo, _ = astronaut
  blocker = (
      'import sys\n'
      'class Block:\n'
      '  def find_spec(self, name, path=None, target=None):\n'
      "    if name.split('.')[0] in ('jax', 'jaxlib', 'flax', "
      "'ml_collections', 'orbax'):\n"
      "      raise ImportError(f'{name} blocked')\n"
      'sys.meta_path.insert(0, Block())\n'
      'from f2s import sketch\n'
      'sys.exit(sketch.main(sys.argv[1:]))\n')
  result = subprocess.run(
      [sys.executable, '-c', blocker, photo, '--runtime=onnx', '--model',
       shipped, '--out', str(tmp_path / 'onnx')],
      capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr
  assert sketch.main([photo, '--out', str(tmp_path / 'jax')]) == 0
  want = np.asarray(Image.open(tmp_path / 'jax' / 'astronaut.png'))
  got = np.asarray(Image.open(tmp_path / 'onnx' / 'astronaut.png'))
  assert got.shape == want.shape == (250, 200)  # standard: grey 250x200
  assert np.abs(got.astype(int) - want).max() <= 1


def one_error_line(capsys) -> str:
  (line,) = capsys.readouterr().err.strip().splitlines()
  assert line.startswith('error: ')
  return line


def test_bad_export_inputs_get_one_line_and_leave_no_file(tmp_path, capsys):
  run = tmp_path / 'run'
  (run / 'checkpoints').mkdir(parents=True)
  out = tmp_path / 'out'
  out.mkdir()
  (tmp_path / 'file').write_text('')
  cases = [
      (['--workdir', str(run)], out / 'a.onnx', 'no checkpoint in'),
      (['--model', 'nope'], out / 'a.onnx', "no shipped model 'nope'"),
      ([], tmp_path / 'missing' / 'a.onnx', 'cannot write there'),
      ([], tmp_path / 'file' / 'a.onnx', 'cannot write there'),
      ([], out, 'is a directory'),
  ]
  for args, path, problem in cases:
    assert export.main([*args, '--out', str(path)]) == 1
    assert problem in one_error_line(capsys), (args, path)
  assert os.listdir(out) == []
  assert not (tmp_path / 'missing').exists()


def test_an_op_without_onnx_equivalent_leaves_the_old_file(
    tmp_path, monkeypatch, capsys, casq_tiny):
  """A model op jax2onnx cannot convert (a host callback here) is named in
  one line; a file already at --out is left as it was, and no temporary
  file stays."""
  def with_callback(trained):
    return lambda photo: jax.pure_callback(
        np.asarray, jax.ShapeDtypeStruct(photo.shape, photo.dtype), photo)

  monkeypatch.setattr(export, 'sketch_function', with_callback)
  path = tmp_path / 'model.onnx'
  path.write_bytes(b'previous export')
  assert export.main(['--model', casq_tiny, '--out', str(path)]) == 1
  line = one_error_line(capsys)
  assert 'cannot export to ONNX' in line and 'pure_callback' in line
  assert path.read_bytes() == b'previous export'
  assert os.listdir(tmp_path) == ['model.onnx']


@pytest.fixture(scope='module')
def casq_tiny(tmp_path_factory, load_config):
  return make_model(str(tmp_path_factory.mktemp('casq_tiny') / 'casq'),
                    load_config('casq', 'tiny'))


def test_bad_onnx_models_get_one_line(tmp_path, casq_tiny, capsys):
  import onnx
  photo = portrait(str(tmp_path / 'me.png'))
  (tmp_path / 'text.onnx').write_text('not a model\n')
  bare = onnx.helper.make_model(onnx.helper.make_graph(
      [onnx.helper.make_node('Identity', ['x'], ['y'])], 'g',
      [onnx.helper.make_tensor_value_info('x', onnx.TensorProto.FLOAT, [1])],
      [onnx.helper.make_tensor_value_info('y', onnx.TensorProto.FLOAT, [1])]))
  onnx.save(bare, str(tmp_path / 'bare.onnx'))
  for model, problem in [(tmp_path / 'missing.onnx', 'no such file'),
                         (tmp_path / 'text.onnx', 'not an ONNX model'),
                         (tmp_path / 'bare.onnx', 'no f2s metadata')]:
    assert sketch.main([photo, '--runtime=onnx', '--model', str(model),
                        '--out', str(tmp_path / 'out')]) == 1
    line = one_error_line(capsys)
    assert str(model) in line and problem in line
  assert sketch.main([photo, '--model', str(tmp_path / 'text.onnx'), '--out',
                      str(tmp_path / 'out')]) == 1  # the JAX runtime
  assert 'an ONNX file; run it with --runtime=onnx' in one_error_line(capsys)
  with pytest.raises(SystemExit):  # argparse's usage error
    sketch.main([photo, '--runtime=onnx', '--workdir', str(tmp_path)])
  assert '--runtime=onnx needs --model' in capsys.readouterr().err
