"""Ctrl-C in `python -m f2s.main`: one line, exit code 130, no traceback."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# f2s.main with the training loop replaced by one interrupted at step 7.
INTERRUPTED = '''
import sys
from absl import app
from f2s import main
from f2s.training import loop

def interrupted(*args, **kwargs):
  raise loop.Interrupted(7, 5)

loop.train_and_evaluate = interrupted
app.run(main.main, flags_parser=main.parse_flags)
'''


def test_an_interrupted_run_prints_one_line_and_exits_130(tmp_path):
  result = subprocess.run(
      [sys.executable, '-c', INTERRUPTED, '--config=configs/casq.py:tiny',
       f'--workdir={tmp_path}'], cwd=ROOT, capture_output=True, text=True,
      env=dict(os.environ, PYTHONPATH=ROOT), timeout=120)
  assert result.returncode == 130
  assert result.stderr.strip().splitlines()[-1] == (
      'interrupted at step 7; the last checkpoint is 5; run the same command '
      'to resume')
  assert 'Traceback' not in result.stderr
