"""One process of a 2-process jax.distributed CPU job (see test_multihost.py).

Args: process_id port workdir data_dir out_dir. Trains configs/casq.py:tiny
through the real loop and saves this process's copy of the parameters.
"""
import os
import sys

os.environ.pop('XLA_FLAGS', None)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import numpy as np  # noqa: E402

process_id, port, workdir, data_dir, out_dir = sys.argv[1:6]
jax.distributed.initialize(f'localhost:{port}', num_processes=2,
                           process_id=int(process_id))
assert jax.process_count() == 2 and jax.device_count() == 2

from f2s.training import loop  # noqa: E402
from training_stand_in import load_config  # noqa: E402

config = load_config('casq', 'tiny')
config.data.data_dir = data_dir
config.train.update(num_steps=4, global_batch_size=4)
config.eval.update(every_steps=4, batch_size=4)
config.checkpoint.every_steps = 2
state, metrics = loop.train_and_evaluate(config, workdir)
leaves = [np.asarray(leaf.addressable_shards[0].data)
          for leaf in jax.tree.leaves(state.params)]
np.savez(os.path.join(out_dir, f'params_{process_id}.npz'), *leaves)
print('metrics', metrics)
