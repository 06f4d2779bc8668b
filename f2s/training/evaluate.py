"""Evaluation over a whole test split: SSIM, MSE, PSNR and model metrics.

Scoring follows the protocol: images in [0, 1]; for 'casq' the 200x200 RGB
prediction is scored as is; for 'standard' the padded greyscale prediction
and target are cropped back to 250x200 with `crop_to_valid`. SSIM and PSNR are
per image, averaged; MSE is over the whole test array (with equal image sizes,
the mean of per-image MSEs). Padding examples (mask 0) are left out. The model
runs with train=False and nothing mutable, so evaluation never changes the EMA
statistics.
"""
from collections.abc import Callable, Iterable, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import linen as nn
from jax import lax
from jax.sharding import Mesh, PartitionSpec as P

from f2s import metrics as f2s_metrics
from f2s.data import preprocess
from f2s.training import losses, step as step_lib
from f2s.training.state import TrainState

EVAL_KEYS = ('photo', 'sketch', 'mask')


def make_eval_step(model: nn.Module, data_cfg: ml_collections.ConfigDict,
                   axis_name: str = step_lib.AXIS) -> Callable:
  """Per-device `(state, batch) -> (sums, prediction)`.

  sums: masked sums over the global batch of per-image ssim/mse/psnr, of the
  model's aux scalars times the real-example count, and 'count'.
  prediction: the [0, 1] image, this device's slice.
  """
  value_range = data_cfg.value_range

  def eval_step(state: TrainState, batch: Mapping[str, jax.Array]):
    variables = {'params': state.params, **state.model_state}
    rngs = {'sample': jax.random.PRNGKey(0), 'codebook': jax.random.PRNGKey(1)}
    logits, aux = model.apply(variables, batch['photo'], train=False,
                              rngs=rngs)
    pred = jax.nn.sigmoid(logits)
    target = losses.to_unit(batch['sketch'], value_range)
    pred_scored = preprocess.crop_to_valid(pred, data_cfg)
    target = preprocess.crop_to_valid(target, data_cfg)
    mask = batch['mask']
    per_image = {
        'ssim': f2s_metrics.ssim(pred_scored, target, data_range=1.0),
        'mse': f2s_metrics.mse(pred_scored, target),
        'psnr': f2s_metrics.psnr(pred_scored, target, data_range=1.0),
    }
    count = mask.sum()
    sums = {k: (v * mask).sum() for k, v in per_image.items()}
    sums.update({f'aux_{k}': v * count for k, v in aux.items()})
    sums['count'] = count
    return lax.psum(sums, axis_name), pred

  return eval_step


def data_parallel_eval(model: nn.Module, data_cfg: ml_collections.ConfigDict,
                       mesh: Mesh) -> Callable:
  """The jitted data-parallel eval step (state not donated)."""
  return step_lib.data_parallel(
      make_eval_step(model, data_cfg), mesh,
      out_specs=(P(), P(step_lib.AXIS)), donate=False)


def local_rows(array: jax.Array) -> np.ndarray:
  """This process's rows of a batch-sharded global array, in order."""
  shards = sorted(array.addressable_shards, key=lambda s: s.index[0].start or 0)
  return np.concatenate([np.asarray(s.data) for s in shards])


def evaluate(
    eval_fn: Callable,
    state: TrainState,
    batches: Iterable[Mapping[str, np.ndarray]],
    mesh: Mesh,
    *,
    num_samples: int = 0,
) -> tuple[dict[str, float], dict[str, np.ndarray] | None]:
  """Runs `eval_fn` over all batches.

  Returns (metrics, samples): metrics averaged over real examples; samples
  holds photo/sketch/prediction of the first `num_samples` host-local
  examples of the first batch (None when num_samples is 0).
  """
  totals = None
  samples = None
  for local in batches:
    batch = step_lib.global_batch(local, mesh, EVAL_KEYS)
    sums, pred = eval_fn(state, batch)
    if num_samples and samples is None:
      samples = {'photo': np.asarray(local['photo'][:num_samples]),
                 'sketch': np.asarray(local['sketch'][:num_samples]),
                 'prediction': local_rows(pred)[:num_samples]}
    totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
  if totals is None:
    raise ValueError('evaluation got no batches: is the test split empty?')
  totals = jax.device_get(totals)
  count = float(totals.pop('count'))
  if count == 0:
    raise ValueError('evaluation batches hold no real examples (mask all 0)')
  result = {}
  for key, value in totals.items():
    name = key.removeprefix('aux_')
    result[name] = float(value) / count
  return result, samples
