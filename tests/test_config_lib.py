import pytest

from f2s import models
from f2s.training import loop
from f2s.training.validate import validate_config
from training_stand_in import load_config


@pytest.mark.parametrize('name', ['dae', 'vae', 'casq'])
@pytest.mark.parametrize('arg', ['synthetic', 'cuhk_casq', 'cuhk_standard',
                                 'tiny'])
def test_shipped_configs_validate(name, arg):
  config = load_config(name, arg)
  validate_config(config, device_count=1)
  assert config.model.name == name
  expected = {'synthetic': 'synthetic_face_sketch', 'tiny':
              'synthetic_face_sketch'}.get(arg, 'cuhk_face_sketch')
  assert config.data.dataset == expected
  shape = loop.image_shape(config.data)
  assert shape == ((256, 208, 1) if arg == 'cuhk_standard' else (200, 200, 3))
  models.build_model(config.model, shape)


def test_unknown_preset_is_named():
  with pytest.raises(ValueError, match="'huge'"):
    load_config('casq', 'huge')


@pytest.mark.parametrize('name,arg,variant', [
    ('dae', 'cuhk_casq,paper', 'paper'), ('vae', 'synthetic,paper', 'paper'),
    ('casq', 'cuhk_standard,default', 'default'), ('casq', 'tiny', 'paper')])
def test_config_argument_selects_variant(name, arg, variant):
  config = load_config(name, arg)
  validate_config(config, device_count=1)
  assert config.model.variant == variant
  assert config.data.protocol == ('standard' if 'standard' in arg else 'casq')
  models.build_model(config.model, loop.image_shape(config.data))


def test_unknown_variant_is_named():
  with pytest.raises(ValueError, match="'huge'"):
    load_config('dae', 'synthetic,huge')


def test_presets_set_their_schedule():
  assert load_config('casq', 'synthetic').train.num_steps == 600
  assert load_config('casq', 'cuhk_casq').train.num_steps == 3000
  tiny = load_config('dae', 'tiny')
  assert (tiny.train.num_steps, tiny.train.global_batch_size) == (20, 4)
