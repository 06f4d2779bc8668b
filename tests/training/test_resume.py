"""Resuming a run: a damaged checkpoint is reported in one line, moved
aside and the newest one that restores is used (by training, --mode=eval
and load_run); Ctrl-C stops training with where it can resume from."""
import glob
import os
import shutil

import jax.numpy as jnp
import pytest

from f2s import pretrained
from f2s.training import checkpoints, loop

# Orbax's failed reads leave coroutines that are collected later: not ours.
pytestmark = pytest.mark.filterwarnings(
    'ignore::pytest.PytestUnraisableExceptionWarning',
    'ignore:coroutine .* was never awaited:RuntimeWarning')


def _config(load_config, num_steps):
  config = load_config('casq')
  config.train.update(lr_schedule='constant', num_steps=num_steps)
  config.data.augment = False
  config.checkpoint.every_steps = 2
  config.eval.every_steps = 100  # only at the end
  return config


@pytest.fixture(scope='module')
def trained(tmp_path_factory, load_config, sources):
  """A workdir with checkpoints 2 and 4 (and the final state's metrics)."""
  workdir = str(tmp_path_factory.mktemp('fallback') / 'run')
  loop.train_and_evaluate(_config(load_config, 4), workdir,
                                       sources=sources)
  return workdir


@pytest.fixture
def run(trained, tmp_path):
  """A copy of the trained workdir, to damage."""
  workdir = str(tmp_path / 'run')
  shutil.copytree(trained, workdir)
  return workdir


def _truncate(workdir, step):
  for path in glob.glob(os.path.join(workdir, 'checkpoints', str(step),
                                     'state', 'd', '*')):
    os.truncate(path, 100)


def _steps(workdir):
  return sorted(os.listdir(os.path.join(workdir, 'checkpoints')))


def _one_warning(err, step, workdir):
  lines = [l for l in err.splitlines() if l.startswith('warning: checkpoint')]
  assert len(lines) == 1, err
  step_dir = os.path.join(workdir, 'checkpoints', str(step))
  assert lines[0].startswith(
      f'warning: checkpoint {step} ({step_dir}) cannot be restored (')
  assert 'Traceback' not in err and 'Event loop is closed' not in err
  return lines[0]


def test_training_resumes_from_the_newest_checkpoint_that_restores(
    run, load_config, sources, capfd):
  _truncate(run, 4)
  capfd.readouterr()
  state, _ = loop.train_and_evaluate(_config(load_config, 6), run,
                                     sources=sources)
  out, err = capfd.readouterr()
  line = _one_warning(err, 4, run)
  assert 'is not valid for value of size 100' in line
  assert line.endswith(f'moved aside to {run}/checkpoints/4.corrupt')
  assert f'resumed from {run} at step 2' in out
  assert int(state.step) == 6
  assert _steps(run) == ['4', '4.corrupt', '6']  # 4 trained again


def test_eval_falls_back_from_a_checkpoint_without_its_state(
    run, load_config, sources, capfd):
  shutil.rmtree(os.path.join(run, 'checkpoints', '4', 'state'))
  capfd.readouterr()
  loop.evaluate_checkpoint(_config(load_config, 4), run,
                           test_source=sources[1])
  out, err = capfd.readouterr()
  assert 'FileNotFoundError' in _one_warning(err, 4, run)
  assert 'checkpoint step 2 (best)' in out
  assert _steps(run) == ['2', '4.corrupt']


def test_no_restorable_checkpoint_is_one_clear_error(run, load_config,
                                                     sources, capfd):
  _truncate(run, 2)
  _truncate(run, 4)
  with pytest.raises(ValueError, match=r'no checkpoint in .* restores \(steps '
                     r'4, 2 .*train from step 0'):
    loop.train_and_evaluate(_config(load_config, 6), run, sources=sources)
  assert _steps(run) == ['2.corrupt', '4.corrupt']
  assert 'Traceback' not in capfd.readouterr().err


def test_load_run_falls_back_and_leaves_the_damaged_one(run, capfd):
  _truncate(run, 4)
  _, step = pretrained.load_run(run)
  assert step == 2
  _one_warning(capfd.readouterr().err, 4, run)
  assert _steps(run) == ['2', '4']  # a reader moves nothing
  _truncate(run, 2)
  with pytest.raises(pretrained.ModelError, match=f'--workdir {run}: no '
                     'checkpoint .* restores'):
    pretrained.load_run(run)


def test_a_checkpoint_of_other_shapes_is_refused_not_moved(run, load_config):
  config = _config(load_config, 4)
  loop.check_run(config, run)
  exp = loop.build_experiment(config, run)
  other = exp.state.replace(step=jnp.zeros((3,), jnp.int32))
  try:
    with pytest.raises(ValueError, match='holds a state of other shapes'):
      checkpoints.restore_first(exp.manager, other, None, [4, 2])
  finally:
    exp.manager.close()
  assert _steps(run) == ['2', '4']


def test_ctrl_c_says_the_step_and_the_last_checkpoint(run, load_config,
                                                      sources):
  def ctrl_c_at_step_7(step):
    if step == 7:
      raise KeyboardInterrupt

  with pytest.raises(loop.Interrupted) as e:
    loop.train_and_evaluate(_config(load_config, 10), run, sources=sources,
                            on_step=ctrl_c_at_step_7)
  assert (e.value.step, e.value.checkpoint) == (7, 6)
  assert str(e.value) == ('interrupted at step 7; the last checkpoint is 6; '
                          'run the same command to resume')
  assert _steps(run) == ['4', '6']  # the save of step 6 was waited for
