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
