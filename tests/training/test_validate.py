"""validate_config: every bad knob raises ValueError naming it; batch sizes
must divide across devices and processes."""
import pytest

from f2s.training.validate import validate_config


def _set(config, key, value):
  """Sets dotted `key`, bypassing ConfigDict's type lock."""
  *path, leaf = key.split('.')
  node = config
  for part in path:
    node = node[part]
  with node.ignore_type():
    node[leaf] = value


@pytest.mark.parametrize('name', ['dae', 'vae', 'casq', 'casq_gan',
                                  'casq_perceptual', 'casq_drawn',
                                  'casq_exposed'])
def test_shipped_tiny_configs_pass(load_config, name):
  validate_config(load_config(name), device_count=2, process_count=2)


@pytest.mark.parametrize('key,value,match', [
    ('data.dataset', 'imagenet', "config.data.dataset='imagenet'"),
    ('data.protocol', 'casqq', "config.data.protocol='casqq'"),
    ('data.value_range', 'bytes', "config.data.value_range='bytes'"),
    ('model.name', 'gan', "'gan'"),
    ('model.variant', 'huge', "'huge'"),
    ('loss.terms.lpips', 1.0, 'lpips'),
    ('loss.perceptual_layers', 6, 'config.loss.perceptual_layers=6'),
    ('loss.perceptual_downsample', 0, 'config.loss.perceptual_downsample=0'),
    ('loss.style_grid', 0, 'config.loss.style_grid=0'),
    ('data.photometric.shadow', 1.5, r'config.data.photometric.shadow=1.5'),
    ('loss.terms.bce', -1.0, r'config.loss.terms.bce=-1.0'),
    ('loss.kl_weight', -0.1, r'config.loss.kl_weight=-0.1'),
    ('train.lr_schedule', 'linear', "config.train.lr_schedule='linear'"),
    ('train.compute_dtype', 'float16', "config.train.compute_dtype='float16'"),
    ('train.learning_rate', -1e-3, r'config.train.learning_rate=-0.001'),
    ('train.learning_rate', 0.0, r'config.train.learning_rate=0.0.*> 0'),
    ('train.learning_rate', 'fast', "config.train.learning_rate='fast'"),
    ('train.weight_decay', -1.0, 'config.train.weight_decay=-1.0'),
    ('train.grad_clip_norm', -1.0, 'config.train.grad_clip_norm=-1.0'),
    ('train.b1', 1.0, r'config.train.b1=1.0.*< 1'),
    ('train.b2', -0.5, 'config.train.b2=-0.5'),
    ('train.global_batch_size', 0, 'config.train.global_batch_size=0'),
    ('train.global_batch_size', 4.0, 'config.train.global_batch_size=4.0'),
    ('train.num_steps', True, 'config.train.num_steps=True'),
    ('train.log_every_steps', -5, 'config.train.log_every_steps=-5'),
    ('train.warmup_steps', -1, 'config.train.warmup_steps=-1'),
    ('eval.every_steps', 0, 'config.eval.every_steps=0'),
    ('eval.batch_size', 0, 'config.eval.batch_size=0'),
    ('eval.restore', 'first', "config.eval.restore='first'"),
    ('eval.write_predictions', 'yes', "config.eval.write_predictions='yes'"),
    ('eval.write_predictions', 1, 'config.eval.write_predictions=1'),
    ('checkpoint.every_steps', 0, 'config.checkpoint.every_steps=0'),
    ('checkpoint.max_to_keep', 0, 'config.checkpoint.max_to_keep=0'),
    ('checkpoint.best_metric', 'loss', "config.checkpoint.best_metric='loss'"),
    ('checkpoint.best_mode', 'up', "config.checkpoint.best_mode='up'"),
    ('gan.weight', -0.1, 'config.gan.weight=-0.1'),
    ('gan.r1', -1.0, 'config.gan.r1=-1.0'),
    ('gan.start_step', -1, 'config.gan.start_step=-1'),
    ('gan.start_step', 1.5, 'config.gan.start_step=1.5'),
    ('gan.learning_rate', 0.0, r'config.gan.learning_rate=0.0.*> 0'),
    ('gan.b1', 1.0, r'config.gan.b1=1.0.*< 1'),
    ('gan.features', (), r'config.gan.features=\(\).*positive integers'),
    ('eval.lpips', ('alex', 'squeeze'), r"config.eval.lpips=\('alex', 'squeeze'\)"),
    ('eval.lpips', ('alex', 'alex'), 'distinct nets'),
    ('eval.dataset', 'cuhk_face_sketch', 'config.eval.dataset'),
    ('checkpoint.best_metric', 'lpips_vgg', "add 'vgg' to config.eval.lpips"),
    ('gan.features', (32, 0), r'config.gan.features=\(32, 0\)'),
    ('gan.spectral_norm', 1, 'config.gan.spectral_norm=1: expected true or'),
    ('gan.scales', 0, 'config.gan.scales=0'),
])
def test_bad_knob_is_named(load_config, key, value, match):
  config = load_config('casq')
  _set(config, key, value)
  with pytest.raises(ValueError, match=match):
    validate_config(config, device_count=1)


def test_missing_section_is_named(load_config):
  config = load_config('casq')
  del config['checkpoint']
  with pytest.raises(ValueError, match="section 'checkpoint'"):
    validate_config(config, device_count=1)


@pytest.mark.parametrize('key', ['train.global_batch_size', 'eval.batch_size'])
def test_batch_must_divide_devices_and_processes(load_config, key):
  config = load_config('casq')
  config.train.global_batch_size = config.eval.batch_size = 12
  validate_config(config, device_count=4, process_count=3)
  _set(config, key, 6)
  validate_config(config, device_count=2, process_count=3)
  with pytest.raises(ValueError, match=f'config.{key}=6.*4 devices'):
    validate_config(config, device_count=4)
  with pytest.raises(ValueError, match=f'config.{key}=6.*4 processes'):
    validate_config(config, device_count=1, process_count=4)


def test_bad_config_values_are_named(load_config):
  config = load_config('casq')
  config.train.global_batch_size = 3
  with pytest.raises(ValueError, match='global_batch_size=3.*2 devices'):
    validate_config(config, device_count=2)
  config = load_config('casq')
  config.data.protocol = 'casqq'
  with pytest.raises(ValueError, match="protocol='casqq'"):
    validate_config(config, device_count=1)
