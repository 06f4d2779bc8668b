"""keep_freed_memory: a large block freed and allocated again is not
faulted in afresh (as every step's buffers of XLA:CPU are by default)."""
import json
import platform
import subprocess
import sys

import pytest

_CHILD = '''
import ctypes, json, resource, sys
from f2s import host_memory
kept = host_memory.keep_freed_memory() if sys.argv[1] == 'kept' else False
libc = ctypes.CDLL('libc.so.6')
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = (ctypes.c_void_p,)
size = 64 << 20  # above glibc's largest mmap threshold (32 MiB)
faults = []
for _ in range(4):
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  block = libc.malloc(size)
  ctypes.memset(block, 1, size)  # touch every page, as a step's output
  libc.free(block)
  faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({'kept': kept, 'faults': faults}))
'''
_PAGES = (64 << 20) // 4096


def _run(mode: str) -> dict:
  out = subprocess.run([sys.executable, '-c', _CHILD, mode], check=True,
                       capture_output=True, text=True).stdout
  return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc',
                    reason='glibc malloc only')
def test_freed_memory_is_reused_without_page_faults():
  default, kept = _run('default'), _run('kept')
  assert kept['kept'] and not default['kept']
  # By default the block is mapped afresh each time: every page faults.
  assert min(default['faults']) >= _PAGES
  # Kept: only the first allocation faults its pages in.
  assert kept['faults'][0] > _PAGES * 0.9
  assert max(kept['faults'][1:]) < _PAGES // 100


def test_elsewhere_it_declines(monkeypatch):
  from f2s import host_memory
  monkeypatch.setattr(host_memory.sys, 'platform', 'darwin')
  assert host_memory.keep_freed_memory() is False
