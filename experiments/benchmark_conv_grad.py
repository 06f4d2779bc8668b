"""The convolutions' weight gradients on this CPU: XLA's backward-filter
convolution against `f2s.models.cpu_conv`'s patch matmuls, at the shapes of
the casq/paper, casq_drawn / casq_balanced and discriminator layers.

  python experiments/benchmark_conv_grad.py [--repeats=9] [--out=FILE.json]

For each layer: median ms of `--repeats` calls (after one warm-up) of the
jitted gradient of sum(conv(x, kernel) * dy) with respect to the kernel,
the variants called in turn so that they share the machine's state:
'xla' (`conv_nhwc` / `lax.conv_general_dilated`), 'f2s' (`cpu_conv.conv3x3`,
whose rule picks the patch matmul or XLA's, or `cpu_conv.strided_conv`), and
for 3x3 layers 'patches' (`cpu_conv.conv3x3` traced with its threshold at 0:
the patch matmul whatever the rule says), the evidence for the threshold. Runs with
`host_memory.keep_freed_memory()`, as training does.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# (layer, batch, height, width, in, out, kernel, stride): the weight
# gradients of the three recipes' steps (casq/paper at batch 16, 200x200;
# the standard protocol's at batch 8, 256x208; the discriminator's on real
# and fake pairs together, batch 16).
LAYERS = (
    ('casq/paper encoder0', 16, 200, 200, 3, 64, 3, 1),
    ('casq/paper encoder1', 16, 100, 100, 64, 32, 3, 1),
    ('casq/paper encoder2', 16, 50, 50, 32, 16, 3, 1),
    ('casq/paper head', 16, 200, 200, 64, 3, 3, 1),
    ('casq_drawn encoder0', 8, 256, 208, 3, 16, 3, 1),
    ('casq_drawn encoder1', 8, 128, 104, 16, 64, 3, 1),
    ('casq_drawn encoder2', 8, 64, 52, 64, 128, 3, 1),
    ('casq_drawn middle', 8, 32, 26, 128, 128, 3, 1),
    ('casq_drawn decoder middle', 8, 32, 26, 64, 64, 3, 1),
    ('casq_drawn head', 8, 256, 208, 32, 1, 3, 1),
    ('discriminator conv0', 16, 256, 208, 4, 32, 4, 2),
    ('discriminator conv1', 16, 128, 104, 32, 64, 4, 2),
    ('discriminator conv2', 16, 64, 52, 64, 128, 4, 2),
)


def _variants(k: int, stride: int) -> dict:
  """name -> (conv(x, kernel), the `cpu_conv._PATCH_GRAD_MIN_WIDE` to trace
  it with, None for the module's own) of each variant."""
  from f2s.convolution import conv_nhwc
  from f2s.models import cpu_conv
  if stride == 1:
    return {'xla': (conv_nhwc, None), 'f2s': (cpu_conv.conv3x3, None),
            'patches': (cpu_conv.conv3x3, 0)}
  import jax
  pads = lambda x: tuple(jax.lax.padtype_to_pads(
      x.shape[1:3], (k, k), (stride, stride), 'SAME'))
  return {'xla': (lambda x, w: conv_nhwc(x, w, 'SAME', stride), None),
          'f2s': (lambda x, w: cpu_conv.strided_conv(x, w, stride, pads(x)),
                  None)}


def _compile(conv, min_wide: int | None, *args):
  """The jitted kernel gradient of sum(conv(x, kernel) * dy), traced (the
  backward pass included) with the threshold `min_wide`."""
  import jax
  import jax.numpy as jnp
  from f2s.models import cpu_conv
  saved = cpu_conv._PATCH_GRAD_MIN_WIDE
  if min_wide is not None:
    cpu_conv._PATCH_GRAD_MIN_WIDE = min_wide
  try:
    return jax.jit(jax.grad(lambda x, kernel, dy: jnp.sum(conv(x, kernel) * dy),
                            argnums=1)).lower(*args).compile()
  finally:
    cpu_conv._PATCH_GRAD_MIN_WIDE = saved


def bench_layer(layer: tuple, repeats: int) -> dict:
  import jax
  import jax.numpy as jnp
  import numpy as np
  from f2s.models import cpu_conv
  name, b, h, w, c, d, k, stride = layer
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(b, h, w, c)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(k, k, c, d)) * 0.1, jnp.float32)
  dy = jnp.asarray(rng.normal(size=(b, -(-h // stride), -(-w // stride), d)),
                   jnp.float32)
  fns = {variant: _compile(conv, min_wide, x, kernel, dy)
         for variant, (conv, min_wide) in _variants(k, stride).items()}
  times = {v: [] for v in fns}
  for f in fns.values():
    jax.block_until_ready(f(x, kernel, dy))
  for _ in range(repeats):
    for variant, f in fns.items():
      start = time.perf_counter()
      jax.block_until_ready(f(x, kernel, dy))
      times[variant].append(time.perf_counter() - start)
  row = {'layer': name, 'shape': [b, h, w, c, d, k, stride]}
  row.update({f'{v}_ms': 1e3 * statistics.median(t) for v, t in times.items()})
  # strided_conv always takes the patch matmul.
  patched = stride > 1 or cpu_conv.patch_weight_grad(c, d)
  row['f2s_uses'] = 'patches' if patched else 'xla'
  return row


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--repeats', type=int, default=9)
  parser.add_argument('--out', default=None, help='JSON file for the rows')
  args = parser.parse_args()
  from f2s import host_memory
  host_memory.keep_freed_memory()
  from benchmark import cpu_name
  rows = [bench_layer(layer, args.repeats) for layer in LAYERS]
  print(f'weight gradients, median ms of {args.repeats} calls; {cpu_name()}')
  print('| layer | batch, HxW, in -> out, k/stride | xla | f2s | patches '
        '| f2s uses | xla / f2s |')
  print('| --- | --- | ---: | ---: | ---: | --- | ---: |')
  for r in rows:
    b, h, w, c, d, k, s = r['shape']
    patches = f"{r['patches_ms']:.1f}" if 'patches_ms' in r else '-'
    print(f"| {r['layer']} | {b}, {h}x{w}, {c} -> {d}, {k}/{s} "
          f"| {r['xla_ms']:.1f} | {r['f2s_ms']:.1f} | {patches} "
          f"| {r['f2s_uses']} | {r['xla_ms'] / r['f2s_ms']:.2f}x |")
  if args.out:
    with open(args.out, 'w') as f:
      json.dump({'cpu': cpu_name(), 'rows': rows}, f, indent=1)


if __name__ == '__main__':
  main()
