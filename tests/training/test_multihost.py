"""Two processes on localhost form one jax.distributed job on CPU (gloo)."""
import os
import socket
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def test_two_processes_train_to_identical_parameters(tmp_path):
  # Both processes share one unprepared data_dir: process 0 must build it
  # before process 1 reads it.
  data_dir = str(tmp_path / 'tfds')
  port = _free_port()
  env = dict(os.environ, PYTHONPATH=ROOT)
  env.pop('XLA_FLAGS', None)  # one CPU device per process
  procs = [subprocess.Popen(
      [sys.executable, os.path.join(HERE, 'multihost_run.py'), str(i),
       str(port), str(tmp_path / 'run'), data_dir, str(tmp_path)],
      env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for i in range(2)]
  outputs = [p.communicate(timeout=240)[0] for p in procs]
  for p, out in zip(procs, outputs):
    assert p.returncode == 0, out[-4000:]
  a = np.load(tmp_path / 'params_0.npz')
  b = np.load(tmp_path / 'params_1.npz')
  assert len(a.files) > 1
  for key in a.files:
    np.testing.assert_array_equal(a[key], b[key])
  ckpts = sorted(os.listdir(tmp_path / 'run' / 'checkpoints'))
  assert '4' in ckpts
  data_files = os.listdir(tmp_path / 'run' / 'checkpoints' / '4' / 'data')
  # Each process saved its own data iterator position.
  assert {'process_0-of-2.json', 'process_1-of-2.json'} <= set(data_files)
