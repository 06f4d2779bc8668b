"""Evaluation over a whole test split: SSIM, FSIM, MSE, PSNR, LPIPS and model
metrics.

Scoring follows the protocol: the prediction is rounded to 8 bits (the PNGs
evaluation writes hold exactly the images scored) and compared in [0, 1]; for
'casq' the 200x200 RGB prediction is scored as is; for 'standard' the padded
greyscale prediction and target are cropped back to 250x200 with
`crop_to_valid`. SSIM, FSIM, PSNR and LPIPS (`lpips_alex`, `lpips_vgg`: the
nets of `config.eval.lpips`) are per image, averaged; MSE is over the whole
test array (with equal image sizes, the mean of per-image MSEs).

Every number is independent of the eval batch size: the model runs on each
example alone (vmapped), so its auxiliary metrics (vq_loss, perplexity,
code_usage, ...) are per-image values averaged over the real examples, and
padding examples (mask 0) are left out. The model runs with train=False and
nothing mutable, so evaluation never changes the EMA statistics.
"""
import functools
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from jax import lax
from jax.sharding import Mesh, PartitionSpec as P
from PIL import Image

from f2s import metrics as f2s_metrics
from f2s import sharding
from f2s import value_range as value_ranges
from f2s.data import preprocess
from f2s.models import CODEBOOK_RNG, SAMPLE_RNG
from f2s.training.state import TrainState

EVAL_KEYS = ('photo', 'sketch', 'mask')
METRICS_FILE = 'metrics.json'


def image_metrics(pred: jax.Array, target: jax.Array,
                  lpips_nets: Sequence[str] = ()) -> dict[str, jax.Array]:
  """Per-image ssim, fsim, mse, psnr and `lpips_<net>` of [0, 1] images
  (..., H, W, C): what evaluation reports, for models and baselines alike."""
  scores = {
      'ssim': f2s_metrics.ssim(pred, target, data_range=1.0),
      'fsim': f2s_metrics.fsim(pred, target, data_range=1.0),
      'mse': f2s_metrics.mse(pred, target),
      'psnr': f2s_metrics.psnr(pred, target, data_range=1.0),
  }
  for net in lpips_nets:
    scores[f'lpips_{net}'] = f2s_metrics.lpips(pred, target, net=net,
                                               data_range=1.0)
  return scores


@functools.cache
def _uint8_scorer(lpips_nets: tuple[str, ...]) -> Callable:
  """`image_metrics` of 8-bit values, jitted once per set of nets."""
  return jax.jit(lambda p, t: image_metrics(p / 255.0, t / 255.0, lpips_nets))


def score_images(pred: np.ndarray, target: np.ndarray,
                 lpips_nets: Sequence[str] = (), chunk: int = 8
                 ) -> dict[str, float]:
  """`image_metrics` of uint8 predictions against uint8 targets (N, H, W, C),
  averaged over the N images: how evaluation scores 8-bit predictions, for
  outputs made outside a train state (baselines, shipped models). Scored
  `chunk` images at a time to bound VGG16's memory."""
  if pred.shape != target.shape or pred.dtype != np.uint8 or (
      target.dtype != np.uint8):
    raise ValueError(f'score_images: expected uint8 arrays of one shape, got '
                     f'{pred.dtype} {pred.shape} and {target.dtype} '
                     f'{target.shape}')
  score = _uint8_scorer(tuple(lpips_nets))
  sums: dict[str, float] = {}
  for start in range(0, len(pred), chunk):
    # The last chunk padded to full size (one compilation), its extra rows
    # dropped before summing.
    rows = slice(start, min(start + chunk, len(pred)))
    n = rows.stop - rows.start
    pad = [(0, chunk - n)] + [(0, 0)] * (pred.ndim - 1)
    scores = score(np.pad(pred[rows], pad).astype(np.float32),
                   np.pad(target[rows], pad).astype(np.float32))
    for key, values in jax.device_get(scores).items():
      sums[key] = sums.get(key, 0.0) + float(np.sum(values[:n], dtype=np.float64))
  return {key: value / len(pred) for key, value in sums.items()}


def make_eval_step(model: nn.Module, spec: preprocess.DataSpec,
                   lpips_nets: Sequence[str] = (),
                   axis_name: str = sharding.AXIS) -> Callable:
  """Per-device `(state, batch) -> (sums, prediction)`.

  sums: masked sums over the global batch of `image_metrics` (with
  `lpips_nets`) and of the model's per-image aux scalars, and 'count'.
  prediction: the 8-bit prediction (uint8, the model's padded size), this
  device's slice.
  """
  value_range = spec.value_range

  def eval_step(state: TrainState, batch: Mapping[str, jax.Array]):
    variables = {'params': state.params, **state.model_state}
    rngs = {SAMPLE_RNG: jax.random.PRNGKey(0),
            CODEBOOK_RNG: jax.random.PRNGKey(1)}

    def apply_one(photo):  # one example: aux never mixes examples
      logits, aux = model.apply(variables, photo[None], train=False,
                                rngs=rngs)
      return logits[0], aux

    logits, aux = jax.vmap(apply_one)(batch['photo'])
    pred8 = jnp.round(jnp.clip(jax.nn.sigmoid(logits), 0.0, 1.0) * 255.0)
    pred_scored = preprocess.crop_to_valid(pred8 / 255.0, spec)
    target = preprocess.crop_to_valid(
        value_ranges.to_unit(batch['sketch'], value_range), spec)
    mask = batch['mask']
    per_image = image_metrics(pred_scored, target, lpips_nets)
    per_image.update({f'aux_{k}': v for k, v in aux.items()})
    sums = {k: (v * mask).sum() for k, v in per_image.items()}
    sums['count'] = mask.sum()
    return lax.psum(sums, axis_name), pred8.astype(jnp.uint8)

  return eval_step


def data_parallel_eval(model: nn.Module, spec: preprocess.DataSpec,
                       mesh: Mesh, lpips_nets: Sequence[str] = ()) -> Callable:
  """The jitted data-parallel eval step (state not donated)."""
  return sharding.data_parallel(
      make_eval_step(model, spec, lpips_nets), mesh,
      out_specs=(P(), P(sharding.AXIS)), donate=False)


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
    data_spec: preprocess.DataSpec | None = None,
    prediction_dir: str | None = None,
) -> tuple[dict[str, float], dict[str, np.ndarray] | None]:
  """Runs `eval_fn` over all batches.

  Returns (metrics, samples): metrics averaged over real examples; samples
  holds photo/sketch/prediction of the first `num_samples` host-local
  examples of the first batch (None when num_samples is 0). With
  `prediction_dir` (and `data_spec`), this process's predictions are written
  there as `<name>.png`, cropped to the scored region.
  """
  if prediction_dir is not None:
    os.makedirs(prediction_dir, exist_ok=True)
  totals = None
  samples = None
  for local in batches:
    batch = sharding.global_batch(local, mesh, EVAL_KEYS)
    sums, pred = eval_fn(state, batch)
    if (num_samples and samples is None) or prediction_dir is not None:
      rows = local_rows(pred)
    if num_samples and samples is None:
      samples = {'photo': np.asarray(local['photo'][:num_samples]),
                 'sketch': np.asarray(local['sketch'][:num_samples]),
                 'prediction': rows[:num_samples] / np.float32(255)}
    if prediction_dir is not None:
      names = local['name']
      write_pngs(prediction_dir, names,
                 preprocess.crop_to_valid(rows[:len(names)], data_spec))
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


def write_pngs(directory: str, names: list[str], images: np.ndarray) -> None:
  """Writes uint8 images (N, H, W, 1 or 3) as `<directory>/<name>.png`."""
  for name, image in zip(names, images, strict=True):
    stem = os.path.splitext(os.path.basename(name))[0]
    image = image[..., 0] if image.shape[-1] == 1 else image
    Image.fromarray(image).save(os.path.join(directory, f'{stem}.png'))


def write_metrics(directory: str, step: int, metrics: Mapping[str, float],
                  data_version: str | None = None) -> str:
  """Writes `{'step': step, **metrics}` to `<directory>/metrics.json`
  atomically, with the data set's `data_version` when given; returns its
  path."""
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, METRICS_FILE)
  record = {'step': int(step), **metrics}
  if data_version is not None:
    record['data_version'] = data_version
  with open(path + '.tmp', 'w') as f:
    json.dump(record, f, indent=1, sort_keys=True)
  os.replace(path + '.tmp', path)
  return path
