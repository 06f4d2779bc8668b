"""Evaluation: batch-size independence, prediction PNGs that rescore to the
reported numbers (independent SSIM from scikit-image), metrics.json."""
import json
import os

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import structural_similarity

from f2s import metrics as f2s_metrics
from f2s.training import evaluate, loop
from training_stand_in import fake_source, load_config

TEST = fake_source(5, seed=1)


def _experiment(tmp_path, protocol='casq', eval_batch=2):
  config = load_config('casq')
  config.data.protocol = protocol
  config.eval.batch_size = eval_batch
  loop.check_run(config, str(tmp_path))
  return loop.build_experiment(config, str(tmp_path))


def test_metrics_do_not_depend_on_eval_batch_size(tmp_path):
  results = []
  for batch in (2, 5):  # 2: the last batch is padded
    exp = _experiment(tmp_path / str(batch), eval_batch=batch)
    metrics, _ = loop.run_evaluation(exp, exp.state, TEST, 0)
    exp.manager.close()
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
def test_prediction_pngs_rescore_to_reported_metrics(tmp_path, protocol,
                                                     shape, mode):
  exp = _experiment(tmp_path, protocol)
  out = str(tmp_path / 'predictions' / '0')
  metrics, _ = loop.run_evaluation(exp, exp.state, TEST, 0, out)
  exp.manager.close()
  names = sorted(n for n in os.listdir(out) if n.endswith('.png'))
  assert names == [f'fake{i}.png' for i in range(len(TEST))]
  with open(os.path.join(out, evaluate.METRICS_FILE)) as f:
    saved = json.load(f)
  assert saved['step'] == 0
  assert saved['ssim'] == pytest.approx(metrics['ssim'])
  ssims, mses, fsims = [], [], []
  for i, name in enumerate(names):
    image = Image.open(os.path.join(out, name))
    assert image.mode == mode
    pred = np.asarray(image, np.float64) / 255
    assert pred.shape == shape
    pred = pred.reshape(*shape[:2], -1)
    target = TEST[i]['sketch'].astype(np.float64) / 255
    if protocol == 'casq':  # 200x200 centre crop, sketch as RGB
      target = np.repeat(target[25:225], 3, axis=-1)
    ssims.append(structural_similarity(
        pred, target, data_range=1.0, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, channel_axis=-1))
    mses.append(np.mean((pred - target) ** 2))
    fsims.append(float(f2s_metrics.fsim(pred.astype(np.float32),
                                        target.astype(np.float32),
                                        data_range=1.0)))
  assert np.mean(ssims) == pytest.approx(metrics['ssim'], abs=1e-4)
  assert np.mean(mses) == pytest.approx(metrics['mse'], rel=1e-4)
  assert np.mean(fsims) == pytest.approx(metrics['fsim'], abs=1e-4)


def test_write_pngs_names_files_after_records(tmp_path):
  images = np.zeros((2, 4, 3, 1), np.uint8)
  evaluate.write_pngs(str(tmp_path), ['a/b.jpg', 'c'], images)
  assert sorted(os.listdir(tmp_path)) == ['b.png', 'c.png']
  with pytest.raises(ValueError):
    evaluate.write_pngs(str(tmp_path), ['only-one'], images)
