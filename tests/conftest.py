"""Session setup shared by every test: two CPU devices and the config loader.

JAX is given two CPU devices before any test initialises a backend, so
data-parallel code runs on a real two-device mesh in process. Tests that
need a single device pick one, as in `sharding.make_mesh(jax.devices()[:1])`.

Compiled programs go to a persistent compilation cache that lives for one
test session (a fresh folder, removed at the end): many tests build the same
tiny models and steps again, each in closures of their own, and XLA compiling
them is most of the suite's time; the cache keys on the program, so a hit is
the same executable. Subprocesses (the command-line tests) share it through
the environment.

In process, XLA:CPU compiles without LLVM's optimisations
(`--xla_backend_optimization_level=0`): the tests' models are tiny, so
compiling is most of their time and running them little (measured: a tiny
GAN run's compilation 32 s -> 14.5 s). The programs are the same HLO;
float results may differ from an optimised build's in the last digits, which
is what the tolerances below allow for. The command-line tests' subprocesses
drop XLA_FLAGS and so also exercise the default, optimised compilation.
"""
import os
import shutil
import tempfile

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from f2s import config_lib, results, tables

# Read when the backend starts, after this module is imported.
_NO_LLVM_OPT = '--xla_backend_optimization_level=0'
if _NO_LLVM_OPT not in os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = ' '.join(filter(None, [
      os.environ.get('XLA_FLAGS'), _NO_LLVM_OPT]))
jax.config.update('jax_num_cpu_devices', 2)
_CACHE_DIR = pytest.StashKey[str]()


def pytest_configure(config):
  if hasattr(config, 'workerinput'):  # a pytest-xdist worker: the
    return                            # controller's cache, via the environment
  cache = tempfile.mkdtemp(prefix='f2s-test-xla-cache-')
  config.stash[_CACHE_DIR] = cache
  settings = {'jax_compilation_cache_dir': cache,
              'jax_persistent_cache_min_compile_time_secs': 0,
              'jax_persistent_cache_min_entry_size_bytes': 0}
  for name, value in settings.items():
    jax.config.update(name, value)
    os.environ[name.upper()] = str(value)


def pytest_unconfigure(config):
  if _CACHE_DIR in config.stash:
    shutil.rmtree(config.stash[_CACHE_DIR], ignore_errors=True)


CONFIGS = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'configs')


@pytest.fixture(scope='session')
def load_config():
  """`load_config(name, arg='tiny')`: configs/<name>.py:<arg>, as --config."""

  def load(name: str, arg: str = 'tiny') -> ml_collections.ConfigDict:
    return config_lib.load(os.path.join(CONFIGS, f'{name}.py:{arg}'))

  return load


# Float32's unit roundoff. A float32 sum of n products, in any order, lies
# within gamma_n = n u / (1 - n u) times the sum of the products' magnitudes
# of the exact value (Higham, Accuracy and Stability of Numerical
# Algorithms, 2nd ed., sec. 3.1). Two float32 results of the same sum taken
# in different orders (another CPU's vector width or blocking, a psum over
# devices, a patch matmul instead of XLA's convolution) therefore differ by
# at most 2 gamma_n sum|terms|: the tolerance of `assert_sums_close`, which
# a test states through n and sum|terms| (usually the same computation on
# the inputs' magnitudes), never through a number fitted to one machine.
F32_UNIT_ROUNDOFF = 2.0 ** -24


def _assert_sums_close(actual, expected, *, terms: int, abs_sum) -> None:
  actual, expected = np.asarray(actual), np.asarray(expected)
  nu = terms * F32_UNIT_ROUNDOFF
  bound = 2 * nu / (1 - nu) * np.asarray(abs_sum, np.float64)
  error = np.abs(actual.astype(np.float64) - expected)
  worst = np.unravel_index(np.argmax(error - bound), error.shape)
  assert np.all(error <= bound), (
      f'differ by {error[worst]:.3g} at {worst}, more than the bound '
      f'{bound[worst]:.3g} for reordered float32 sums of {terms} terms')


@pytest.fixture(scope='session')
def assert_sums_close():
  """`assert_sums_close(actual, expected, terms=n, abs_sum=s)`: the two
  arrays are float32 values of the same sums of at most n rounded products,
  accumulated in different orders, s (broadcastable) bounding each sum's
  sum of |terms|."""
  return _assert_sums_close


def _fake_run(runs_root: str, table: str, row_name: str, seed: int,
              ssim: float = 0.5, finished: bool = True) -> None:
  """Writes a trained and scored run of `row_name` as reproduce.py leaves it
  under `runs_root`: its record, config.json and the final step's
  predictions/<step>/metrics.json (FSIM ssim + 0.1, MSE 1 - ssim, LPIPS
  1 - ssim and 1.1 - ssim)."""
  row = tables.find_row(table, row_name)
  directory = results.run_dir(runs_root, row, seed, None)
  step = row.overrides['train.num_steps']
  os.makedirs(os.path.join(directory, 'predictions', str(step)))
  results.write_json(os.path.join(directory, results.RUN_FILE), {
      'command': ' '.join(row.command(seed, directory)), 'wall_s': 12.0,
      'device': 'CPU: test', 'jax': '0.10.2', 'finished': finished})
  results.write_json(os.path.join(directory, 'config.json'),
                     {'seed': seed, 'train': {'global_batch_size': 8}})
  results.write_json(
      os.path.join(directory, 'predictions', str(step), 'metrics.json'),
      {'step': step, 'ssim': ssim, 'fsim': ssim + 0.1, 'mse': 1 - ssim,
       'psnr': 10.0, 'lpips_alex': 1 - ssim, 'lpips_vgg': 1.1 - ssim})


@pytest.fixture(scope='session')
def fake_run():
  """`fake_run(runs_root, table, row_name, seed, ssim=0.5, finished=True)`:
  a finished run folder of a results-table row, without training."""
  return _fake_run


def _as_float64(tree):
  """`tree` with its float32 leaves as float64 arrays (integer keys,
  counters and steps kept), for comparing computations that reorder float32
  sums in float64. Only under `jax.enable_x64(True)`."""
  assert jax.config.jax_enable_x64, 'as_float64 needs jax.enable_x64(True)'
  return jax.tree.map(
      lambda x: jnp.asarray(x, jnp.float64) if x.dtype == np.float32 else x,
      tree)


@pytest.fixture(scope='session')
def as_float64():
  """`as_float64(tree)`, under `jax.enable_x64(True)`: its float32 leaves as
  float64 arrays."""
  return _as_float64
