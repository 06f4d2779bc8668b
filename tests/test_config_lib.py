"""Config files and presets: every shipped config validates and builds,
presets and variants are selected by the config argument, errors name the
bad preset, variant, file or key."""
import pytest

from f2s import config_lib, models, tables
from f2s.data import preprocess
from f2s.training.validate import validate_config


def _sketch_shape(config):
  return preprocess.spec_from_config(config.data).sketch_shape


@pytest.mark.parametrize('name', ['dae', 'vae', 'casq'])
@pytest.mark.parametrize('arg', ['synthetic', 'cuhk_casq', 'cuhk_standard',
                                 'tiny'])
def test_shipped_configs_validate(load_config, name, arg):
  config = load_config(name, arg)
  validate_config(config, device_count=1)
  assert config.model.name == name
  expected = {'synthetic': 'synthetic_face_sketch', 'tiny':
              'synthetic_face_sketch'}.get(arg, 'cuhk_face_sketch')
  assert config.data.dataset == expected
  shape = _sketch_shape(config)
  assert shape == ((256, 208, 1) if arg == 'cuhk_standard' else (200, 200, 3))
  models.build_model(config.model, shape)


def test_unknown_preset_is_named(load_config):
  with pytest.raises(ValueError, match="'huge'"):
    load_config('casq', 'huge')


@pytest.mark.parametrize('name,arg,variant', [
    ('dae', 'cuhk_casq,paper', 'paper'), ('vae', 'synthetic,paper', 'paper'),
    ('casq', 'cuhk_standard,default', 'default'), ('casq', 'tiny', 'paper')])
def test_config_argument_selects_variant(load_config, name, arg, variant):
  config = load_config(name, arg)
  validate_config(config, device_count=1)
  assert config.model.variant == variant
  assert config.data.protocol == ('standard' if 'standard' in arg else 'casq')
  models.build_model(config.model, _sketch_shape(config))


def test_unknown_variant_is_named(load_config):
  with pytest.raises(ValueError, match="'huge'"):
    load_config('dae', 'synthetic,huge')


def test_presets_set_their_schedule(load_config):
  assert load_config('casq', 'synthetic').train.num_steps == 200
  assert load_config('casq', 'cuhk_casq').train.num_steps == 3000
  tiny = load_config('dae', 'tiny')
  assert (tiny.train.num_steps, tiny.train.global_batch_size) == (20, 4)


def test_parse_arg_defaults_to_synthetic(load_config):
  assert config_lib.parse_arg(None) == ('synthetic', None)
  assert config_lib.parse_arg('') == ('synthetic', None)
  assert config_lib.parse_arg('tiny') == ('tiny', None)
  assert config_lib.parse_arg('cuhk_casq,default') == ('cuhk_casq', 'default')
  assert load_config('casq', '').data.dataset == 'synthetic_face_sketch'


def test_tiny_preset_shrinks_every_variant():
  for name, variants in models.VARIANTS.items():
    for variant in variants:
      tiny = config_lib.model_config(name, variant, 'tiny').model
      full = config_lib.model_config(name, variant, 'synthetic').model
      assert tiny.variant == variant
      changed = config_lib.TINY_MODELS[(name, variant)]
      assert changed and all(tiny[k] == v for k, v in changed.items())
      assert any(tiny[k] != full[k] for k in changed)


def test_missing_config_file_is_named_with_the_files_there(load_config):
  with pytest.raises(ValueError, match=r"no such file .*gan\.py.*'casq\.py'"):
    load_config('gan')
  with pytest.raises(ValueError, match='no such file') as error:
    config_lib.load('/nonexistent/dir/x.py')
  assert 'config files in' not in str(error.value)


@pytest.mark.parametrize('key,expected', [
    ('train.num_stepz', 'did you mean train.num_steps?'),
    ('trian.num_steps', '--config.trian: no such key; did you mean train?'),
    ('train.num_steps.x', 'train.num_steps is a value, not a section'),
    ('eval.zzz', 'eval has: batch_size, dataset, every_steps, lpips, manual_dir'),
])
def test_unknown_key_message_suggests_close_keys(load_config, key, expected):
  assert expected in config_lib.unknown_key_message(load_config('casq'), key)


@pytest.mark.parametrize('arg,recipe', [
    ('tiny', 'perceptual'), ('tiny,photometric', 'perceptual_photometric')])
def test_recipe_config_is_the_gan_variant_with_its_knobs(load_config, arg,
                                                         recipe):
  config = load_config('casq_perceptual', arg)
  validate_config(config, device_count=1)
  expected = load_config('casq_gan', 'tiny')
  for key, value in config_lib.RECIPES[recipe].items():
    section, *rest = key.split('.')
    node = expected[section]
    for part in rest[:-1]:
      node = node[part]
    node[rest[-1]] = value
  assert config.to_dict() == expected.to_dict()
  assert config.loss.terms.bce == 1.0  # knobs set, sections kept
  with pytest.raises(ValueError, match="unknown recipe 'sharp'"):
    config_lib.apply_recipe(config, 'sharp')


@pytest.mark.parametrize('config_name,row_name', [
    ('casq_drawn', 'casq_gan_drawn'),
    ('casq_exposed', 'casq_gan_drawn_cast_exposure'),
    ('casq_exposed_vgg5', 'casq_gan_drawn_cast_exposure_600_vgg5'),
    ('casq_balanced', 'casq_gan_drawn_cast_exposure_600_vgg5_balance')])
def test_shipped_recipe_config_is_the_standard_tables_row(
    load_config, config_name, row_name):
  """configs/casq_drawn.py:cuhk_standard trains exactly what the standard
  table's casq_gan_drawn row (the shipped casq_drawn_cuhk's) runs, and
  configs/casq_exposed.py what casq_gan_drawn_cast_exposure (the shipped
  casq_exposed_cuhk's) runs, and configs/casq_exposed_vgg5.py what
  casq_gan_drawn_cast_exposure_600_vgg5 (casq_exposed_vgg5_cuhk's) runs,
  and configs/casq_balanced.py what its _balance row (the shipped default
  casq_balanced_cuhk's) runs."""
  row = tables.find_row('standard', row_name)
  expected = config_lib.set_knobs(
      load_config(*row.config_arg[len('configs/'):].split('.py:')),
      row.overrides)
  assert load_config(config_name, 'cuhk_standard').to_dict() == (
      expected.to_dict())
  # :tiny keeps its own short schedule.
  assert load_config(config_name).train.num_steps == (
      load_config('casq_gan').train.num_steps)
