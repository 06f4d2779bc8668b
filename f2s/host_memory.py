"""Host memory that stays mapped between steps (Linux glibc only).

XLA:CPU allocates a step's buffers with `posix_memalign` and frees them after
the step. glibc serves each allocation over its mmap threshold (32 MiB at most)
or from a thread's own arena with a fresh `mmap`, and `munmap`s it on free,
so the kernel faults in and zeroes every page of every large buffer again on
every step. Measured on a 2-core AMD EPYC (`experiments/benchmark.py`, the
casq/paper step at batch 16): 441,000 page faults, 0.7 s of system time, per
0.92 s step. Keeping freed memory in the process brings that step to ~0.63 s
with no page faults; PyTorch's CPU allocator gains alike (README).
"""
import ctypes
import ctypes.util
import sys

# mallopt(3) parameters.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8


def keep_freed_memory() -> bool:
  """Makes glibc keep freed memory for reuse; True where that was done.

  One arena for all threads (per-thread arenas cannot hold large blocks and
  map them instead), no mmap for large blocks, no trimming of the heap. The
  process then keeps its peak memory mapped until it exits: right for a
  training or benchmark process, so `f2s.main` and the benchmarks call it
  first; a library import does not. Elsewhere (macOS, musl) it does nothing
  and returns False.
  """
  if not sys.platform.startswith('linux'):
    return False
  try:
    libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
    mallopt = libc.mallopt
  except (OSError, AttributeError):
    return False
  mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
  # mallopt returns 1 on success; -1 as the trim threshold disables trimming.
  return all(mallopt(param, value) == 1 for param, value in (
      (_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, -1)))
