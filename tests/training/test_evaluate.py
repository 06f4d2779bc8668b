"""Evaluation: batch-size independence, masking of padding rows, prediction
PNGs that rescore to the reported numbers (independent SSIM from
scikit-image; LPIPS as f2s.metrics scores it), metrics.json, and the
reduction over batches."""
import json
import os

import jax
import numpy as np
import pytest
from PIL import Image
from skimage.metrics import structural_similarity

from f2s import metrics as f2s_metrics
from f2s import sharding
from f2s.data import preprocess
from f2s.training import evaluate, loop


@pytest.fixture
def experiment(tmp_path, load_config):
  """`experiment(workdir, protocol='casq', eval_batch=2)`: the tiny CASQ."""
  managers = []

  def make(workdir=tmp_path, protocol='casq', eval_batch=2, lpips=()):
    config = load_config('casq')
    config.data.protocol = protocol
    config.eval.batch_size = eval_batch
    config.eval.lpips = lpips
    loop.check_run(config, str(workdir))
    exp = loop.build_experiment(config, str(workdir))
    managers.append(exp.manager)
    return exp

  yield make
  for manager in managers:
    manager.close()


def test_metrics_do_not_depend_on_eval_batch_size(tmp_path, experiment,
                                                  fake_source):
  test = fake_source(6, seed=1)
  results = []
  # 2: every batch full; 4: the last batch is half padding, one whole device.
  for batch in (2, 4):
    exp = experiment(tmp_path / str(batch), eval_batch=batch)
    metrics, _ = loop.run_evaluation(exp, exp.state, test, 0)
    results.append(metrics)
  assert {'ssim', 'fsim', 'mse', 'psnr', 'vq_loss', 'perplexity',
          'code_usage'} <= set(results[0])
  for other in results[1:]:
    assert other.keys() == results[0].keys()
    for key, value in results[0].items():
      np.testing.assert_allclose(other[key], value, rtol=1e-5, atol=1e-7,
                                 err_msg=key)


@pytest.mark.parametrize('protocol,shape,mode', [
    ('casq', (200, 200, 3), 'RGB'), ('standard', (250, 200), 'L')])
def test_prediction_pngs_rescore_to_reported_metrics(tmp_path, experiment,
                                                     sources, protocol,
                                                     shape, mode):
  _, test = sources
  exp = experiment(protocol=protocol, lpips=('alex',))
  out = str(tmp_path / 'predictions' / '0')
  metrics, _ = loop.run_evaluation(exp, exp.state, test, 0, out)
  names = sorted(n for n in os.listdir(out) if n.endswith('.png'))
  assert names == [f'fake{i}.png' for i in range(len(test))]
  with open(os.path.join(out, evaluate.METRICS_FILE)) as f:
    saved = json.load(f)
  assert saved['step'] == 0
  assert saved['ssim'] == pytest.approx(metrics['ssim'])
  ssims, mses, fsims, lpips = [], [], [], []
  for i, name in enumerate(names):
    image = Image.open(os.path.join(out, name))
    assert image.mode == mode
    pred = np.asarray(image, np.float64) / 255
    assert pred.shape == shape
    pred = pred.reshape(*shape[:2], -1)
    target = test[i]['sketch'].astype(np.float64) / 255
    if protocol == 'casq':  # 200x200 centre crop, sketch as RGB
      target = np.repeat(target[25:225], 3, axis=-1)
    ssims.append(structural_similarity(
        pred, target, data_range=1.0, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, channel_axis=-1))
    mses.append(np.mean((pred - target) ** 2))
    fsims.append(float(f2s_metrics.fsim(pred.astype(np.float32),
                                        target.astype(np.float32),
                                        data_range=1.0)))
    lpips.append(float(f2s_metrics.lpips(pred.astype(np.float32),
                                         target.astype(np.float32),
                                         net='alex', data_range=1.0)))
  assert np.mean(ssims) == pytest.approx(metrics['ssim'], abs=1e-4)
  assert np.mean(mses) == pytest.approx(metrics['mse'], rel=1e-4)
  assert np.mean(fsims) == pytest.approx(metrics['fsim'], abs=1e-4)
  assert 'lpips_vgg' not in metrics  # only the nets of config.eval.lpips
  assert np.mean(lpips) == pytest.approx(metrics['lpips_alex'], abs=1e-4)


def test_eval_uses_mask_and_leaves_state_alone(one_device_run, fake_batch,
                                               monkeypatch):
  model, mesh, _, state = one_device_run
  spec = preprocess.DataSpec(protocol='casq', value_range='unit')
  # The stand-in's 16x16 images are not the protocol's 200x200: score as is.
  monkeypatch.setattr(preprocess, 'crop_to_valid', lambda x, _: x)
  eval_fn = evaluate.data_parallel_eval(model, spec, mesh)
  real = fake_batch(1, 3)
  # A padding row of garbage that would change every metric if counted.
  padded = {k: np.concatenate([v, np.full((1, *v.shape[1:]), 9.0, np.float32)])
            for k, v in real.items()}
  padded['mask'] = np.array([1, 1, 1, 0], np.float32)
  before = jax.device_get(state)
  metrics, samples = evaluate.evaluate(eval_fn, state, [padded], mesh,
                                       num_samples=2)
  variables = {'params': before.params, **before.model_state}
  logits, _ = model.apply(variables, real['photo'])
  pred = 1 / (1 + np.exp(-np.asarray(logits, np.float64)))
  pred = np.round(pred * 255) / 255  # evaluation scores 8-bit predictions
  ref_mse = np.mean((pred - real['sketch']) ** 2)
  assert metrics['mse'] == pytest.approx(ref_mse, rel=1e-4)
  np.testing.assert_allclose(samples['prediction'], pred[:2], atol=1e-5)
  for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(state)):
    np.testing.assert_array_equal(a, np.asarray(b))


def _sum_eval_fn(state, batch):
  """Stands in for the eval step: masked sums of photo values as 'ssim'."""
  del state
  mask = batch['mask']
  return {'ssim': (batch['photo'] * mask).sum(),
          'aux_vq_loss': 2 * mask.sum(), 'count': mask.sum()}, None


def _batch(values, mask):
  return {'photo': np.asarray(values, np.float32),
          'sketch': np.zeros(len(values), np.float32),
          'mask': np.asarray(mask, np.float32)}


def test_evaluate_averages_real_rows_over_batches():
  mesh = sharding.make_mesh()
  batches = [_batch([1, 2], [1, 1]), _batch([6, 100], [1, 0])]
  metrics, samples = evaluate.evaluate(_sum_eval_fn, None, batches, mesh)
  assert metrics == {'ssim': pytest.approx(3.0), 'vq_loss': pytest.approx(2.0)}
  assert samples is None


def test_evaluate_refuses_empty_or_all_padding_input():
  mesh = sharding.make_mesh()
  with pytest.raises(ValueError, match='no batches'):
    evaluate.evaluate(_sum_eval_fn, None, [], mesh)
  with pytest.raises(ValueError, match='no real examples'):
    evaluate.evaluate(_sum_eval_fn, None, [_batch([1, 2], [0, 0])], mesh)


def test_local_rows_are_the_rows_in_order():
  mesh = sharding.make_mesh()
  rows = np.arange(12, dtype=np.float32).reshape(4, 3)
  array = sharding.global_batch({'x': rows}, mesh, ('x',))['x']
  assert len(array.addressable_shards) == 2
  np.testing.assert_array_equal(evaluate.local_rows(array), rows)


def test_write_pngs_names_files_after_records(tmp_path):
  images = np.zeros((2, 4, 3, 1), np.uint8)
  evaluate.write_pngs(str(tmp_path), ['a/b.jpg', 'c'], images)
  assert sorted(os.listdir(tmp_path)) == ['b.png', 'c.png']
  with pytest.raises(ValueError):
    evaluate.write_pngs(str(tmp_path), ['only-one'], images)


def test_write_metrics_writes_step_and_metrics(tmp_path):
  path = evaluate.write_metrics(str(tmp_path / 'new'), 7, {'ssim': 0.5})
  assert path == str(tmp_path / 'new' / evaluate.METRICS_FILE)
  with open(path) as f:
    assert json.load(f) == {'step': 7, 'ssim': 0.5}
  assert os.listdir(tmp_path / 'new') == [evaluate.METRICS_FILE]
  evaluate.write_metrics(str(tmp_path / 'new'), 8, {'ssim': 0.6}, '1.1.0')
  with open(path) as f:
    assert json.load(f) == {'step': 8, 'ssim': 0.6, 'data_version': '1.1.0'}
