"""EMA quantizer under data parallelism (2 host devices, in a subprocess): the
psum-ed update equals the single-device update on the concatenated batch."""

import os
import pathlib
import subprocess
import sys
import textwrap

REPO = pathlib.Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent('''
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, PartitionSpec as P
    from f2s.models import VectorQuantizerEMA, build_model, default_config
    assert jax.device_count() == 2, jax.devices()

    # dead_code_steps=1 resets every unused code each step: the re-initialisation
    # must also agree across replicas and with the single-device run.
    kw = dict(num_embeddings=16, embedding_dim=4, commitment_cost=0.25, decay=0.9,
              dead_code_steps=1)
    single, dp = VectorQuantizerEMA(**kw), VectorQuantizerEMA(**kw, axis_name='d')
    mesh = Mesh(np.array(jax.devices()), ('d',))
    batches = [jax.random.normal(jax.random.key(s), (4, 3, 3, 4)) for s in (1, 2, 3)]
    state0 = single.init({'params': jax.random.key(0)}, batches[0])

    def dp_step(state, z, key):
      out, new = dp.apply(state, z, train=True, mutable=['vq_ema'], rngs={'codebook': key})
      return new, out.quantize

    dp_step = jax.jit(jax.shard_map(dp_step, mesh=mesh, in_specs=(P(), P('d'), P()),
                                    out_specs=(P(), P('d'))))
    s_state, d_state = state0, state0
    resets = 0
    for i, z in enumerate(batches):
      key = jax.random.key(10 + i)
      out, s_state = single.apply(s_state, z, train=True, mutable=['vq_ema'],
                                  rngs={'codebook': key})
      resets += int(out.codes_reset)
      d_state, dq = dp_step(d_state, z, key)
      np.testing.assert_allclose(dq, out.quantize, rtol=1e-6, atol=1e-6)
      jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6),
                   d_state, s_state)
    assert resets > 0, 'the test should exercise dead-code resets'

    # The full CASQ model compiles and runs under shard_map with axis_name too.
    cfg = default_config('casq', 'default')
    cfg.features, cfg.decoder_features = (8, 8, 8), (8, 8, 8)
    cfg.embedding_dim, cfg.num_embeddings, cfg.bottleneck_blocks = 8, 16, 1
    model = build_model(cfg, (16, 16, 1), axis_name='d')
    x = jax.random.uniform(jax.random.key(5), (2, 16, 16, 3))
    rngs = {k: jax.random.key(i) for i, k in enumerate(('params', 'sample', 'codebook'))}
    variables = model.init(rngs, x)
    def fwd(v, x):
      (logits, aux), new = model.apply(v, x, train=True, rngs=rngs, mutable=['vq_ema'])
      return logits, new
    logits, new = jax.jit(jax.shard_map(fwd, mesh=mesh, in_specs=(P(), P('d')),
                                        out_specs=(P('d'), P())))(variables, x)
    assert logits.shape == (2, 16, 16, 1)
    assert int(new['vq_ema']['vq']['ema_dw_counter']) == 1
    print('OK')
''')


def test_data_parallel_codebook_matches_single_device():
  env = {**os.environ, 'XLA_FLAGS': '--xla_force_host_platform_device_count=2',
         'JAX_PLATFORMS': 'cpu',
         'PYTHONPATH': os.pathsep.join([str(REPO), os.environ.get('PYTHONPATH', '')])}
  proc = subprocess.run([sys.executable, '-c', SCRIPT], env=env, capture_output=True,
                        text=True, timeout=300, cwd=REPO)
  assert proc.returncode == 0 and proc.stdout.strip().endswith('OK'), proc.stderr[-4000:]
