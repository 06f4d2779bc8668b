"""A tiny stand-in model and fake batches for the training tests.

One conv plus an EMA statistic in a 'vq_ema' collection that is psummed over
the data axis and nudged with the 'codebook' key, like the EMA quantizer: a
wrong gradient average, an unsynchronised statistic or a per-device codebook
key all change the new state.
"""
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import linen as nn

from f2s import config_lib

CONFIGS = os.path.join(os.path.dirname(__file__), '..', '..', 'configs')


class StandIn(nn.Module):
  out_channels: int = 3
  axis_name: str | None = None

  @nn.compact
  def __call__(self, photo, *, train: bool = False):
    logits = nn.Conv(self.out_channels, (3, 3), name='conv')(photo)
    mean = self.variable('vq_ema', 'mean', jnp.zeros, (self.out_channels,))
    if (train and self.is_mutable_collection('vq_ema')
        and not self.is_initializing()):
      total = jax.lax.stop_gradient(logits).sum(axis=(0, 1, 2))
      count = jnp.asarray(np.prod(logits.shape[:3]), jnp.float32)
      if self.axis_name is not None:
        total = jax.lax.psum(total, self.axis_name)
        count = jax.lax.psum(count, self.axis_name)
      noise = jax.random.normal(self.make_rng('codebook'), mean.value.shape)
      mean.value = 0.9 * mean.value + 0.1 * total / count + 1e-3 * noise
    aux = {'act_loss': 0.01 * jnp.mean(jnp.square(logits)),
           'ema_mean': mean.value.mean()}
    return logits, aux


def fake_batch(seed: int, batch: int, size: int = 16,
               value_range: str = 'unit') -> dict[str, np.ndarray]:
  """A learnable pair: the sketch is a fixed function of the photo."""
  rng = np.random.default_rng(seed)
  photo = rng.uniform(0, 1, (batch, size, size, 3)).astype(np.float32)
  sketch = np.repeat(photo.mean(-1, keepdims=True), 3, -1) ** 2
  if value_range == 'symmetric':
    photo, sketch = photo * 2 - 1, sketch * 2 - 1
  return {'photo': photo, 'sketch': sketch.astype(np.float32)}


def train_config(**overrides) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict(dict(
      learning_rate=1e-2, lr_schedule='constant', warmup_steps=0, num_steps=50,
      b1=0.9, b2=0.999, weight_decay=0.0, grad_clip_norm=1.0))
  config.update(overrides)
  return config


def fake_source(n: int, seed: int = 0) -> list[dict]:
  """In-memory records like load_source's: a blurred-photo 'sketch'."""
  rng = np.random.default_rng(seed)
  records = []
  for i in range(n):
    base = rng.uniform(0, 255, (25, 20, 3))
    photo = np.kron(base, np.ones((10, 10, 1))).astype(np.uint8)
    grey = photo.mean(-1, keepdims=True)
    sketch = (255 - grey * 0.5).astype(np.uint8)
    records.append({'photo': photo, 'sketch': sketch, 'name': f'fake{i}'})
  return records


def load_config(name: str, arg: str = 'tiny') -> ml_collections.ConfigDict:
  """configs/<name>.py:<arg>, loaded like --config does."""
  return config_lib.load(os.path.join(CONFIGS, f'{name}.py:{arg}'))
