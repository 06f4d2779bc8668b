"""Session setup shared by every test: two CPU devices and the config loader.

JAX is given two CPU devices before any test initialises a backend, so
data-parallel code runs on a real two-device mesh in process. Tests that
need a single device pick one, as in `parallel.make_mesh(jax.devices()[:1])`.
"""
import os

import jax
import ml_collections
import pytest

from f2s import config_lib

jax.config.update('jax_num_cpu_devices', 2)

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'configs')


@pytest.fixture(scope='session')
def load_config():
  """`load_config(name, arg='tiny')`: configs/<name>.py:<arg>, as --config."""

  def load(name: str, arg: str = 'tiny') -> ml_collections.ConfigDict:
    return config_lib.load(os.path.join(CONFIGS, f'{name}.py:{arg}'))

  return load
