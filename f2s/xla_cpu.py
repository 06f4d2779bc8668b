"""XLA:CPU compiler options for train steps with an FSIM loss term.

jax 0.10's XLA:CPU hands reductions to YNNPACK by default (its
`xla_cpu_experimental_ynn_fusion_type` = reduce, individual dot, individual
convolution). On a 2-core AMD EPYC those reduce fusions ran at a fraction of
memory speed: in a trace of the shipped recipe's step, FSIM's sums over
scales and orientations took ~30 ms each where reading their inputs takes a
few, and GroupNorm's statistics likewise. Without them (XLA's own loop
fusions; dots and convolutions stay with YNNPACK) FSIM's value and gradient on
8 sketches took 210-230 ms instead of 300-370. Whole steps gain less, and
one without FSIM lost (casq/paper's; not traced):
f2s.training.loop.train_compiler_options picks them per step; README,
"CPU speed", has the timings. Set per compilation
(`jax.jit(compiler_options=...)`), so the rest of a process keeps XLA's
defaults.
"""
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

OPTION = 'xla_cpu_experimental_ynn_fusion_type'
# jax 0.10's default set (the same executables as no option) ...
XLA_DEFAULT_YNN_FUSION_TYPES = ('LIBRARY_FUSION_TYPE_REDUCE',
                                'LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT',
                                'LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION')
# ... less the reductions.
YNN_FUSION_TYPES = XLA_DEFAULT_YNN_FUSION_TYPES[1:]


@functools.cache
def compiler_options(platform: str) -> dict[str, str]:
  """The options for a step compiled for `platform` ('cpu', 'gpu', ...).

  Empty off the CPU, where `XLA_FLAGS` already names the YNNPACK fusion types
  (the user's choice stands), and where this XLA does not know the option or
  its values (another jax version: its defaults are kept).
  """
  if platform != 'cpu' or OPTION in os.environ.get('XLA_FLAGS', ''):
    return {}
  options = {OPTION: ','.join(YNN_FUSION_TYPES)}
  try:
    zeros = jax.device_put(np.zeros(2, np.float32), jax.devices('cpu')[0])
    jax.jit(jnp.sum, compiler_options=options).lower(zeros).compile()
  except jax.errors.JaxRuntimeError:  # an unknown option or enum value
    return {}
  return options
