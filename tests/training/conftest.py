"""Training fixtures: a tiny stand-in model, fake batches and records.

The stand-in is one conv plus an EMA statistic in a 'vq_ema' collection that
is psummed over the data axis and nudged with the 'codebook' key, like the
EMA quantizer: a wrong gradient average, an unsynchronised statistic or a
per-device codebook key all change the new state.
"""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import linen as nn

from f2s import sharding
from f2s.training import state as state_lib, step as step_lib


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


def _fake_batch(seed: int, batch: int, size: int = 16,
                value_range: str = 'unit') -> dict[str, np.ndarray]:
  rng = np.random.default_rng(seed)
  photo = rng.uniform(0, 1, (batch, size, size, 3)).astype(np.float32)
  sketch = np.repeat(photo.mean(-1, keepdims=True), 3, -1) ** 2
  if value_range == 'symmetric':
    photo, sketch = photo * 2 - 1, sketch * 2 - 1
  return {'photo': photo, 'sketch': sketch.astype(np.float32)}


def _train_config(**overrides) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict(dict(
      learning_rate=1e-2, lr_schedule='constant', warmup_steps=0, num_steps=50,
      b1=0.9, b2=0.999, weight_decay=0.0, grad_clip_norm=1.0))
  config.update(overrides)
  return config


def _fake_source(n: int, seed: int = 0) -> list[dict]:
  rng = np.random.default_rng(seed)
  records = []
  for i in range(n):
    base = rng.uniform(0, 255, (25, 20, 3))
    photo = np.kron(base, np.ones((10, 10, 1))).astype(np.uint8)
    grey = photo.mean(-1, keepdims=True)
    sketch = (255 - grey * 0.5).astype(np.uint8)
    records.append({'photo': photo, 'sketch': sketch, 'name': f'fake{i}'})
  return records


@pytest.fixture
def stand_in():
  """A StandIn whose EMA statistic is psummed over `sharding.AXIS`."""
  return StandIn(axis_name=sharding.AXIS)


@pytest.fixture(scope='session')
def fake_batch():
  """`fake_batch(seed, batch, size=16, value_range='unit')`: a learnable pair
  of float batches (the sketch is a fixed function of the photo)."""
  return _fake_batch


@pytest.fixture(scope='session')
def train_config():
  """`train_config(**overrides)`: a `config.train` for the stand-in."""
  return _train_config


@pytest.fixture(scope='session')
def fake_source():
  """`fake_source(n, seed=0)`: in-memory records like load_source's (uint8
  250x200 photo, a blurred-photo 'sketch', a name)."""
  return _fake_source


@pytest.fixture(scope='session')
def sources():
  """(train, test) fake records: 12 and 5."""
  return _fake_source(12), _fake_source(5, seed=1)


@pytest.fixture
def one_device_run(stand_in):
  """(model, mesh, train_fn, state): the stand-in's jitted train step and a
  fresh replicated state on a one-device mesh."""
  tx = state_lib.make_optimizer(_train_config())
  mesh = sharding.make_mesh(jax.devices()[:1])
  fn = sharding.data_parallel(step_lib.make_train_step(
      stand_in, tx, terms={'bce': 1.0}, kl_weight=0.0, value_range='unit'),
      mesh)
  state = sharding.replicate(
      state_lib.create_train_state(stand_in, tx, (1, 16, 16, 3), seed=0), mesh)
  return stand_in, mesh, fn, state
