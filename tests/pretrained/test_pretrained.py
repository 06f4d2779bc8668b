"""The shipped model, the msgpack export and restoring a run's checkpoint."""
import glob
import importlib.util
import json
import os

import jax
import numpy as np
import pytest
from PIL import Image

from f2s import align, models, pretrained, sketch
from f2s.data import preprocess
from f2s.datasets import faces as procedural
from f2s.training import checkpoints, state as state_lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
CUHK_DIR = os.environ.get('F2S_CUHK_DIR', os.path.join(
    os.path.dirname(ROOT), 'shared', 'data', 'cuhk'))


def aligned_faces(tmp_path) -> list[np.ndarray]:
  """Demo faces in the CUHK frame: a procedural face and, when the data are
  here, a CUHK test photo, each put on a larger photo and aligned."""
  crops = [procedural.render_pair(0, 3)[0]]
  cuhk = sorted(glob.glob(os.path.join(
      CUHK_DIR, 'CUHK_testing_cropped_photos', '*.jpg')))
  if cuhk:
    crops.append(np.asarray(Image.open(cuhk[0]).convert('RGB')))
  aligned = []
  for i, crop in enumerate(crops):
    canvas = Image.new('RGB', (600, 700), (90, 120, 150))
    canvas.paste(Image.fromarray(crop).resize((400, 500)), (100, 80))
    path = str(tmp_path / f'demo{i}.jpg')
    canvas.save(path, quality=92)
    photo = align.Photo(path)
    (face,) = align.align(photo, align.find_faces(photo))
    aligned.append(face.pixels)
  return aligned


def test_the_shipped_model_loads_and_sketches_demo_faces(tmp_path):
  if pretrained.DEFAULT not in pretrained.available():
    pytest.skip(f'f2s/pretrained/{pretrained.DEFAULT} is not exported yet: '
                'python experiments/export_pretrained.py --workdir=RUN '
                f'--name={pretrained.DEFAULT}')
  folder = os.path.join(pretrained.DIRECTORY, pretrained.DEFAULT)
  assert os.path.getsize(os.path.join(folder, pretrained.VARIABLES_FILE)
                         ) < 8 * 2**20
  assert os.path.exists(os.path.join(folder, pretrained.MODEL_CARD_FILE))
  trained = pretrained.load()
  sketcher = sketch.Sketcher(trained)
  sketches = sketcher(np.stack(aligned_faces(tmp_path)))
  framed = preprocess.crop_to_valid(np.zeros((1, *trained.out_shape)),
                                    trained.config.data)
  assert sketches.shape[1:] == framed.shape[1:]
  for drawn in sketches:
    # A pencil sketch: mostly white paper, with dark strokes.
    assert 0.4 < drawn.mean() < 0.97 and drawn.std() > 0.08
    assert (drawn < 0.35).mean() > 0.01


@pytest.fixture(scope='module')
def trained(load_config) -> pretrained.TrainedModel:
  """A tiny CASQ, randomly initialised."""
  config = load_config('casq', 'tiny')
  spec = preprocess.spec_from_config(config.data)
  model = models.build_model(config.model, spec.sketch_shape)
  variables = jax.jit(lambda key: state_lib.init_variables(
      model, (1, *spec.sketch_shape[:2], 3), key))(jax.random.PRNGKey(0))
  return pretrained.TrainedModel(config, variables, 'a test model')


def test_save_and_load_round_trip(tmp_path, trained):
  folder = str(tmp_path / 'm')
  pretrained.save(folder, trained.config, trained.variables)
  loaded = pretrained.load(folder)
  assert loaded.config.to_dict() == json.loads(json.dumps(
      trained.config.to_dict()))
  assert set(loaded.variables) == {'params', models.VQ_COLLECTION}
  jax.tree.map(np.testing.assert_array_equal,
               jax.device_get(trained.variables), loaded.variables)
  with open(os.path.join(folder, pretrained.VARIABLES_FILE), 'rb') as f:
    assert not f.read(2).startswith(b'\x80')  # msgpack, not a pickle


def test_bad_model_folders_are_refused_with_the_reason(tmp_path, trained):
  config = trained.config
  folder = str(tmp_path / 'm')
  pretrained.save(folder, config, trained.variables)
  wider = config.model.to_dict()
  wider['features'] = [f * 2 for f in wider['features']]
  saved = json.load(open(os.path.join(folder, pretrained.CONFIG_FILE)))
  saved['model'] = wider
  with open(os.path.join(folder, pretrained.CONFIG_FILE), 'w') as f:
    json.dump(saved, f)
  with pytest.raises(pretrained.ModelError, match='do not fit'):
    pretrained.load(folder)
  with open(os.path.join(folder, pretrained.VARIABLES_FILE), 'wb') as f:
    f.write(b'\x93not msgpack at all')
  with pytest.raises(pretrained.ModelError, match='unreadable'):
    pretrained.load(folder)
  with pytest.raises(pretrained.ModelError, match="no shipped model 'nope'"):
    pretrained.load('nope')


def make_run(workdir: str, config) -> dict[int, dict]:
  """A training run's folder, as f2s.main leaves it: config.json and
  checkpoints of steps 1 (ssim 0.5, the best) and 2 (ssim 0.3). Returns each
  step's variables."""
  spec = preprocess.spec_from_config(config.data)
  model = models.build_model(config.model, spec.sketch_shape,
                             value_range=spec.value_range)
  tx = state_lib.make_optimizer(config.train)
  state = jax.jit(lambda: state_lib.create_train_state(
      model, tx, (1, *spec.sketch_shape[:2], 3), config.seed))()
  checkpoints.write_config(workdir, config)
  manager = checkpoints.make_manager(
      workdir, max_to_keep=3, best_metric='ssim', best_mode='max')
  saved = {}
  for step, ssim in [(1, 0.5), (2, 0.3)]:
    state = state.replace(step=np.int32(step), params=jax.tree.map(
        lambda x: x + 0.01, state.params))
    checkpoints.save(manager, state, None, {'ssim': ssim})
    saved[step] = {'params': state.params, **state.model_state}
  manager.close()
  with open(os.path.join(workdir, 'metrics.jsonl'), 'w') as f:
    for step, ssim in [(1, 0.5), (2, 0.3)]:
      f.write(json.dumps({'step': step, 'split': 'train', 'loss': 0.1}) + '\n')
      f.write(json.dumps({'step': step, 'split': 'eval', 'ssim': ssim,
                          'fsim': 0.6, 'mse': 0.05, 'psnr': 13.0}) + '\n')
  return saved


@pytest.mark.parametrize('exposure,balance',
                         [(0.0, False), (0.75, False), (0.75, True)])
def test_a_run_is_restored_at_its_best_checkpoint_and_exported(
    tmp_path, load_config, capsys, exposure, balance):
  config = load_config('casq', 'tiny')
  config.model.face_exposure = exposure
  config.model.face_light_balance = balance
  run = str(tmp_path / 'run')
  saved = make_run(run, config)
  trained, step = pretrained.load_run(run)
  assert step == 1  # the best by ssim, not the latest
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(saved[1]),
               jax.device_get(trained.variables))
  assert pretrained.load_run(run, step=2)[1] == 2

  script = importlib.util.spec_from_file_location(
      'export_pretrained', os.path.join(ROOT, 'experiments',
                                        'export_pretrained.py'))
  export_pretrained = importlib.util.module_from_spec(script)
  script.loader.exec_module(export_pretrained)
  export_pretrained.main([f'--workdir={run}', '--name=mine',
                          f'--out_dir={tmp_path}',
                          '--command=python -m f2s.main --config=X'])
  assert 'exported' in capsys.readouterr().out
  exported = pretrained.load(str(tmp_path / 'mine'))
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(saved[1]),
               exported.variables)
  card = open(tmp_path / 'mine' / pretrained.MODEL_CARD_FILE).read()
  assert 'procedural demo faces' in card and '| ssim | 0.5000 |' in card
  assert '    python -m f2s.main --config=X\n' in card
  # The card says what the model does to the photo before drawing.
  scaled = "multiplies the photo by the gain that brings its face's mean luma"
  assert (scaled in card) == bool(exposure)
  if exposure:
    assert ' to 0.75 (`model.face_exposure`' in card
  assert ('the left-right slope of its log luma' in card) == balance

  photo = tmp_path / 'face.png'
  Image.fromarray(procedural.render_pair(0, 0)[0]).save(photo)
  assert sketch.main([str(photo), '--workdir', run, '--out',
                      str(tmp_path / 'out')]) == 0
  assert os.path.exists(tmp_path / 'out' / 'face.png')
