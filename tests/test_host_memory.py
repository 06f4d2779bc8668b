"""keep_freed_memory: a step's large buffers stop page-faulting afresh."""
import json
import platform
import subprocess
import sys

import pytest

_CHILD = '''
import json, resource, sys
from f2s import host_memory
kept = host_memory.keep_freed_memory() if sys.argv[1] == 'kept' else False
import jax, jax.numpy as jnp
x = jnp.ones((16, 1024, 1024))  # 64 MiB: above glibc's largest mmap threshold
step = jax.jit(lambda x: x * 2 + 1)
for _ in range(4):  # the heap grows to its size here
  jax.block_until_ready(step(x))
faults = []
for _ in range(3):
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  jax.block_until_ready(step(x))
  faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({'kept': kept, 'faults': faults}))
'''
_PAGES = 16 * 1024 * 1024 * 4 // 4096  # of one output, in 4 KiB pages


def _run(mode: str) -> dict:
  out = subprocess.run([sys.executable, '-c', _CHILD, mode], check=True,
                       capture_output=True, text=True).stdout
  return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc',
                    reason='glibc malloc only')
def test_kept_memory_is_not_faulted_in_again():
  default, kept = _run('default'), _run('kept')
  assert kept['kept'] and not default['kept']
  # By default each call maps its output afresh: every page faults.
  assert min(default['faults']) >= _PAGES
  assert max(kept['faults']) < _PAGES // 10


def test_elsewhere_it_declines(monkeypatch):
  from f2s import host_memory
  monkeypatch.setattr(host_memory.sys, 'platform', 'darwin')
  assert host_memory.keep_freed_memory() is False
