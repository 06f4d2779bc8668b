"""experiments/benchmark.py's PyTorch peer sees the photo as f2s's model
does: the recipe's face exposure and light balance equal
models.exposure.ExposureInput's (torch is no dependency of f2s: skipped
where it is not installed)."""
import importlib.util
import os

import jax.numpy as jnp
import numpy as np
import pytest

from f2s.models import exposure

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location(
    'benchmark', os.path.join(ROOT, 'experiments', 'benchmark.py'))
benchmark = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(benchmark)


@pytest.mark.parametrize('balance', [False, True])
def test_torch_exposure_equals_exposure_input(balance):
  torch = pytest.importorskip('torch')
  rng = np.random.default_rng(0)
  # Four photos exposed unlike one another, lit from the right.
  photos = (rng.uniform(0, 1, (4, 256, 208, 3))
            * np.linspace(0.2, 1, 208)[None, None, :, None]
            * np.array([0.5, 1, 0.3, 2])[:, None, None, None]
            ).clip(0, 1).astype(np.float32)
  want = exposure.ExposureInput(
      model=lambda photo, **kwargs: photo, target=0.75, value_range='unit',
      balance=balance).apply({}, jnp.asarray(photos))
  got = benchmark.torch_exposure(256, 208, 0.75, balance)(
      torch.from_numpy(photos).permute(0, 3, 1, 2))
  # Values in [0, 1] scaled by gains that differ by the roundings of the
  # face mean (a pairwise sum of ~12,700 lumas: up to 14 levels) and of the
  # slope's log, dot product, exp and the divisions: a few more.
  np.testing.assert_allclose(got.permute(0, 2, 3, 1).numpy(), want,
                             atol=24 * np.finfo(np.float32).eps)
  assert np.abs(np.asarray(want) - photos).max() > 0.5  # it did change them
