"""One process of a 2-process jax.distributed CPU job (see test_multihost.py).

Usage: multihost_run.py process_id port workdir data_dir out_dir. Trains
configs/casq.py:tiny through the real loop and saves this process's copy of
the parameters to out_dir/params_<process_id>.npz.
"""
import os
import sys

import jax
import numpy as np

from f2s import config_lib
from f2s.training import loop

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def main(process_id: str, port: str, workdir: str, data_dir: str,
         out_dir: str) -> None:
  jax.distributed.initialize(f'localhost:{port}', num_processes=2,
                             process_id=int(process_id))
  assert jax.process_count() == 2 and jax.device_count() == 2
  config = config_lib.load(os.path.join(ROOT, 'configs', 'casq.py:tiny'))
  config.data.data_dir = data_dir
  # Streamed (grain) data: each process checkpoints its own iterator position.
  config.data.device_resident = 'never'
  config.train.update(num_steps=4, global_batch_size=4)
  config.eval.update(every_steps=4, batch_size=4)
  config.checkpoint.every_steps = 2
  state, metrics = loop.train_and_evaluate(config, workdir)
  leaves = [np.asarray(leaf.addressable_shards[0].data)
            for leaf in jax.tree.leaves(state.params)]
  np.savez(os.path.join(out_dir, f'params_{process_id}.npz'), *leaves)
  print('metrics', metrics)


if __name__ == '__main__':
  main(*sys.argv[1:6])
