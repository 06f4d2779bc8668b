"""One process per workdir: an OS lock that names its holder and that a
killed holder does not leave behind."""
import os
import signal
import subprocess
import sys

import pytest

from f2s.training import checkpoints

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
HOLD = ('import sys, time\n'
        'from f2s.training import checkpoints\n'
        'with checkpoints.workdir_lock(sys.argv[1]):\n'
        '  print("locked", flush=True)\n'
        '  time.sleep(120)\n')


def test_a_second_holder_is_refused_naming_the_workdir_and_pid(tmp_path):
  workdir = str(tmp_path / 'run')
  with checkpoints.workdir_lock(workdir):
    with pytest.raises(ValueError) as e:
      with checkpoints.workdir_lock(workdir):
        pass
    assert f'--workdir={workdir} is in use' in str(e.value)
    assert f'pid {os.getpid()}' in str(e.value)
  with checkpoints.workdir_lock(workdir):  # released on exit
    pass


def test_a_running_holder_refuses_f2s_main_and_kill_9_frees_it(tmp_path):
  workdir = tmp_path / 'run'
  env = dict(os.environ, PYTHONPATH=ROOT)
  env.pop('XLA_FLAGS', None)
  holder = subprocess.Popen([sys.executable, '-c', HOLD, str(workdir)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            text=True)
  try:
    assert holder.stdout.readline() == 'locked\n'
    result = subprocess.run(
        [sys.executable, '-m', 'f2s.main', '--config=configs/casq.py:tiny',
         f'--workdir={workdir}'], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=120)
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f'error: --workdir={workdir} is in use by another '
                           f'run (pid {holder.pid}, holding ')
    assert os.listdir(workdir) == [checkpoints.LOCK_FILE]  # nothing written
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with checkpoints.workdir_lock(str(workdir)):  # no stale lock
      with open(workdir / checkpoints.LOCK_FILE) as f:
        assert f.read() == f'{os.getpid()}\n'
  finally:
    holder.kill()
    holder.wait()
