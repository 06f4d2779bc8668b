"""Throughput of the jitted train and eval steps of each model, as configured,
and of the whole training loop.

  python experiments/benchmark.py                       # dae, vae, casq
  python experiments/benchmark.py --models=casq,casq_drawn --batch_size=8 --torch
  python experiments/benchmark.py --loop --models=casq --steps=200

For each model (configs/<model>.py with the chosen preset, default
'synthetic'): compile time, images/s of the train and eval steps (median over
`--steps` timed steps after `--warmup` steps), XLA's FLOPs per step (cost
analysis of the compiled step), and peak memory (the device's
peak_bytes_in_use where JAX reports it, else the process's max RSS; each model
runs in its own subprocess so the figures do not mix). Batches are random
arrays of the protocol's shape: this measures the steps, not the input
pipeline. `--torch` adds, for casq, casq_balanced (the shipped recipe) and
casq_drawn (the shipped recipe when the CPU-speed issue was filed), the
network's train step in PyTorch, eager and under torch.compile, on the same
machine (torch is imported only in that mode; it is no dependency of f2s),
and prints f2s's speed as a ratio to each, with the CPU's name. The PyTorch
peer trains with BCE alone, so the recipes get a BCE-only f2s row beside
their whole step's. Prints a table and writes JSON to --out.

Every process runs f2s as `f2s.main` does, with
`host_memory.keep_freed_memory()` ('+kept' in the framework column;
`--default_malloc` leaves glibc's defaults). The PyTorch rows run both ways:
its CPU allocator page-faults the same way by default.

`--loop` runs the real `train_and_evaluate` loop on the preset's real data
for `--steps` steps, evaluating and checkpointing at the config's rates (and
at the last step, as every run does), in a temporary workdir. Per model:
`loop_images_per_s`, the images trained over the loop's wall time from the
first step's dispatch (after compiling it) to its return (evaluations, their
compilation, checkpoints and the final wait for them included), beside
`train_images_per_s`, the bare step's (as without --loop); `loop_eval_s` and
`loop_checkpoint_s` are the loop's time in evaluations and in checkpoint
calls, and `loop_train_images_per_s` its rate over the rest. And the host's
feeding at batch 64: `host_feed_images_per_s`, images per second of the
Python thread's CPU time for a step's inputs and its dispatch (a step that
only reduces the batch), with device-resident data and, for comparison,
grain streaming (`*_stream`); `feed_images_per_s[_stream]`, the same steps
per wall second (on a CPU this includes the device's gather, augmentation
and preprocessing).
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ('dae', 'vae', 'casq')
# Config files that --models also takes (not timed by default).
OTHER_MODELS = ('casq_gan', 'casq_drawn', 'casq_balanced')
# The configs whose network --torch also times in PyTorch (plain-block CASQ).
TORCH_PEERS = ('casq', 'casq_balanced', 'casq_drawn')
BARE_STEPS = 10  # timed bare steps in --loop mode
FEED_BATCH, FEED_STEPS = 64, 10


def load_config(name: str, preset: str):
  from f2s import config_lib
  return config_lib.load(os.path.join(ROOT, 'configs', f'{name}.py:{preset}'))


def flops(compiled) -> float | None:
  """XLA's FLOP count of a compiled computation (None where it has none)."""
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older JAX: one dict per computation
    cost = cost[0] if cost else None
  return float(cost['flops']) if cost and 'flops' in cost else None


def _time_steps(fn, state, batch, warmup: int, steps: int, carry_state: bool):
  """Median seconds per call; `fn` returns (state, out) when carry_state."""
  import jax
  times = []
  for i in range(warmup + steps):
    start = time.perf_counter()
    out = fn(state, batch)
    jax.block_until_ready(out)
    if carry_state:
      state = out[0]
    if i >= warmup:
      times.append(time.perf_counter() - start)
  return statistics.median(times), state


def _time_alternating(fns: dict, state, batch, warmup: int, steps: int):
  """Median seconds per train step of each compiled step in `fns`, their
  steps alternated (the order swapped each round) so that both see the
  same machine; and the last state."""
  import jax
  times = {name: [] for name in fns}
  for i in range(warmup + steps):
    for name in (list(fns) if i % 2 else list(fns)[::-1]):
      start = time.perf_counter()
      state, _ = fns[name](state, batch)
      jax.block_until_ready(state)
      if i >= warmup:
        times[name].append(time.perf_counter() - start)
  return {name: statistics.median(t) for name, t in times.items()}, state


def _peak_memory() -> dict:
  import jax
  stats = jax.devices()[0].memory_stats() or {}
  if 'peak_bytes_in_use' in stats:
    return {'peak_memory_bytes': int(stats['peak_bytes_in_use']),
            'peak_memory_kind': 'device peak_bytes_in_use'}
  # Linux reports ru_maxrss in KiB.
  return {'peak_memory_bytes':
          resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
          'peak_memory_kind': 'process max RSS'}


def bench_jax(name: str, preset: str, batch_size: int | None, warmup: int,
              steps: int, compute_dtype: str | None = None,
              bce_only: bool = False, vs_xla_defaults: bool = False) -> dict:
  """One model's figures (run in a fresh process for a clean peak memory).

  `bce_only`: the network's step with BCE alone (every other loss term and
  the adversary switched off), as its PyTorch peer trains it.
  `vs_xla_defaults`: also the train step compiled with XLA:CPU's default
  YNNPACK fusions instead of `f2s.xla_cpu`'s, the two alternated step by step.
  """
  import jax
  import numpy as np
  from f2s import models
  from f2s import sharding
  from f2s.data import preprocess
  from f2s.training import evaluate as evaluate_lib
  from f2s.training import loop, state as state_lib
  from f2s.training.validate import validate_config

  config = load_config(name, preset)
  if compute_dtype:
    config.train.compute_dtype = compute_dtype
  if batch_size:
    config.train.global_batch_size = config.eval.batch_size = batch_size
  if bce_only:
    for term in config.loss.terms:
      config.loss.terms[term] = float(term == 'bce')
    if 'gan' in config:
      config.gan.weight = 0.0
  validate_config(config, jax.device_count(), jax.process_count())
  batch_size = config.train.global_batch_size
  spec = preprocess.spec_from_config(config.data)
  out_shape = spec.sketch_shape
  mesh = sharding.make_mesh()
  model = models.build_model(config.model, out_shape, axis_name=sharding.AXIS,
                             value_range=spec.value_range)
  parts = state_lib.make_train_parts(config)
  state = sharding.replicate(state_lib.initial_state(
      parts, model, (1, *out_shape[:2], 3), out_shape[-1], config.seed), mesh)
  n_params = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(state.params))
  rng = np.random.default_rng(0)
  local = {
      'photo': rng.uniform(0, 1, (batch_size, *out_shape[:2], 3)),
      'sketch': rng.uniform(0, 1, (batch_size, *out_shape)),
      'mask': np.ones((batch_size,)),
  }
  local = {k: v.astype(np.float32) for k, v in local.items()}
  train_batch = sharding.global_batch(local, mesh, ('photo', 'sketch'))
  eval_batch = sharding.global_batch(local, mesh, ('photo', 'sketch', 'mask'))

  train_step = sharding.data_parallel(
      loop.make_step(config, model, parts), mesh,
      compiler_options=loop.train_compiler_options(config, mesh))
  start = time.perf_counter()
  train_compiled = train_step.lower(state, train_batch).compile()
  train_compile_s = time.perf_counter() - start
  eval_step = evaluate_lib.data_parallel_eval(model, spec, mesh)
  start = time.perf_counter()
  eval_compiled = eval_step.lower(state, eval_batch).compile()
  eval_compile_s = time.perf_counter() - start

  train_s, state = _time_steps(train_compiled, state, train_batch, warmup,
                               steps, carry_state=True)
  alternated = {}
  if vs_xla_defaults:
    from f2s import xla_cpu
    defaults = train_step.lower(state, train_batch).compile(compiler_options={
        xla_cpu.OPTION: ','.join(xla_cpu.XLA_DEFAULT_YNN_FUSION_TYPES)})
    medians, state = _time_alternating(
        {'f2s': train_compiled, 'xla': defaults}, state, train_batch, warmup,
        steps)
    alternated = {'alternated_train_step_s': medians['f2s'],
                  'alternated_xla_defaults_train_step_s': medians['xla']}
  eval_s, _ = _time_steps(eval_compiled, state, eval_batch, warmup, steps,
                          carry_state=False)
  return {
      'framework': f'jax {config.train.compute_dtype}'
                   + (' BCE only' if bce_only else ''),
      'model': f'{name}/{config.model.variant}', 'config': name,
      'preset': preset, 'protocol': config.data.protocol,
      'image_shape': list(out_shape), 'batch_size': batch_size,
      'params': n_params, 'devices': jax.device_count(),
      'device_kind': jax.devices()[0].device_kind,
      'train_compile_s': train_compile_s, 'eval_compile_s': eval_compile_s,
      'train_step_s': train_s, 'train_images_per_s': batch_size / train_s,
      'eval_step_s': eval_s, 'eval_images_per_s': batch_size / eval_s,
      'train_flops_per_step': flops(train_compiled),
      'eval_flops_per_step': flops(eval_compiled),
      **alternated,
      **_peak_memory(),
  }


def _eval_and_save_counts(config) -> tuple[int, int]:
  """How many evaluations and checkpoints a run of num_steps makes."""
  last = config.train.num_steps

  def count(every):
    return len(set(range(every, last + 1, every)) | {last})

  return count(config.eval.every_steps), count(config.checkpoint.every_steps)


def bench_feed(config, source, batch_size: int) -> dict:
  """Host feeding and batch throughput, device-resident vs grain-streamed."""
  import flax
  import jax
  import jax.numpy as jnp
  from jax import lax
  from f2s import sharding
  from f2s.data import device_data, pipeline, preprocess

  @flax.struct.dataclass
  class Counter:
    step: jax.Array

  def consume(state, batch):  # forces the batch, nothing else
    total = batch['photo'].mean() + batch['sketch'].mean()
    return (state.replace(step=state.step + 1),
            {'mean': lax.pmean(total, sharding.AXIS)})

  spec = preprocess.spec_from_config(config.data)
  mesh = sharding.make_mesh()
  split = device_data.place(source, mesh, seed=0, global_batch_size=batch_size)
  device_step = sharding.data_parallel(device_data.with_device_batch(
      consume, device_data.make_device_batch(spec, mesh, batch_size)), mesh)
  iterator = iter(pipeline.train_loader(source, spec, seed=0,
                                        global_batch_size=batch_size))
  stream_step = sharding.data_parallel(consume, mesh)

  def measure(step, inputs):
    state = sharding.replicate(Counter(step=jnp.zeros((), jnp.int32)), mesh)
    for _ in range(2):  # compile and warm up
      state, metrics = step(state, inputs())
    jax.block_until_ready(metrics)
    cpu, wall = time.thread_time(), time.perf_counter()
    for _ in range(FEED_STEPS):
      state, metrics = step(state, inputs())
    cpu = time.thread_time() - cpu
    jax.block_until_ready(metrics)
    wall = time.perf_counter() - wall
    images = FEED_STEPS * batch_size
    return images / cpu, images / wall

  host, wall = measure(device_step, lambda: split)
  host_stream, wall_stream = measure(
      stream_step,
      lambda: sharding.global_batch(next(iterator), mesh, ('photo', 'sketch')))
  return {'feed_batch_size': batch_size, 'host_feed_images_per_s': host,
          'feed_images_per_s': wall,
          'host_feed_images_per_s_stream': host_stream,
          'feed_images_per_s_stream': wall_stream}


def bench_loop(name: str, preset: str, batch_size: int | None, warmup: int,
               steps: int, compute_dtype: str | None = None) -> dict:
  """The whole training loop beside the bare step (see the module doc)."""
  import tempfile
  import jax
  from f2s.data import device_data
  from f2s.training import checkpoints, loop

  config = load_config(name, preset)
  if compute_dtype:
    config.train.compute_dtype = compute_dtype
  if batch_size:
    config.train.global_batch_size = config.eval.batch_size = batch_size
  config.train.num_steps = steps
  sources = (loop.load_split(config, config.data.train_split),
             loop.load_split(config, config.data.test_split))
  first_step = []
  spent = {'eval': 0.0, 'checkpoint': 0.0}

  def on_step(step):
    if step == 1:  # dispatched: compiled, and running from here on
      first_step.append(time.perf_counter())

  def timed(fn, key):
    def call(*args, **kwargs):
      start = time.perf_counter()
      try:
        return fn(*args, **kwargs)
      finally:
        spent[key] += time.perf_counter() - start
    return call

  # The loop blocks on its pending steps before each evaluation (to check
  # their losses), so these times hold no training.
  loop.run_evaluation = timed(loop.run_evaluation, 'eval')
  checkpoints.save = timed(checkpoints.save, 'checkpoint')
  with tempfile.TemporaryDirectory() as workdir:
    start = time.perf_counter()
    loop.train_and_evaluate(config, workdir, sources=sources, on_step=on_step)
    end = time.perf_counter()
  evals, saves = _eval_and_save_counts(config)
  loop_s = end - first_step[0]
  images = steps * config.train.global_batch_size
  row = bench_jax(name, preset, batch_size, warmup, BARE_STEPS,
                  compute_dtype)
  row.update(
      loop_steps=steps, loop_evals=evals, loop_checkpoints=saves,
      loop_data='device' if device_data.use_device_data(
          config.data.device_resident, len(sources[0]),
          jax.process_count()) else 'stream',
      loop_startup_s=first_step[0] - start, loop_s=loop_s,
      loop_eval_s=spent['eval'], loop_checkpoint_s=spent['checkpoint'],
      loop_images_per_s=images / loop_s,
      loop_train_images_per_s=images / (loop_s - spent['eval']
                                        - spent['checkpoint']),
      loop_to_step=images / loop_s / row['train_images_per_s'])
  row.update(bench_feed(config, sources[0], min(FEED_BATCH, len(sources[0]))))
  return row


def torch_exposure(height: int, width: int, target: float, balance: bool):
  """`models.exposure.ExposureInput`'s scaling as a function of (B, 3, height,
  width) torch photos in [0, 1]: face mean luma to `target`, with `balance`
  the left-right light slope divided out first. Its constants are made here,
  outside the function that torch.compile traces."""
  import numpy as np
  import torch
  from f2s.colour import LUMA
  from f2s.models import exposure
  (top, bottom), (left, right) = exposure.face_box(height, width)
  luma = torch.tensor(LUMA, dtype=torch.float32).view(1, 3, 1, 1)
  offsets = torch.tensor(np.asarray(exposure.column_offsets(width)),
                         dtype=torch.float32)
  face_offsets = offsets[left:right]

  def face_lumas(x):  # (B, rows, columns) of the face box
    return (x[:, :, top:bottom, left:right] * luma).sum(1)

  def expose(photo):
    if balance:
      log_luma = face_lumas(photo).clamp_min(exposure.MIN_LUMA).log().mean(1)
      slope = log_luma @ face_offsets / (face_offsets * face_offsets).sum()
      photo = photo * torch.exp(-slope[:, None] * offsets[None, :])[:, None,
                                                                    None, :]
    gain = target / face_lumas(photo).mean((1, 2)).clamp_min(
        exposure.MIN_LUMA)
    return (photo * gain[:, None, None, None]).clamp(0, 1)

  return expose


def bench_torch(name: str, preset: str, batch_size: int | None, warmup: int,
                steps: int, compile: bool = False) -> dict:
  """A CASQ network's train step in PyTorch (CPU), eager or with the network
  under `torch.compile` (Inductor; the loss and Adam stay eager).

  The same layers and sizes as f2s.models' CASQ with plain blocks
  (configs/<name>.py at `preset`: casq/paper, or a recipe's network), after
  the recipe's face exposure and light balance (models.exposure) where it
  has them: conv3x3 (+ GroupNorm) + ReLU + 2x2 max pool stages, the
  bottleneck blocks, SAGAN attention, a 1x1 conv to the codes, an EMA vector
  quantizer (dead-code resets left out), nearest upsample + conv3x3 blocks
  with the encoder's skips concatenated where the config has them, a 3x3
  head; BCE + commitment loss, Adam. The f2s row to compare with is the
  same network's BCE-only step (`bench_jax(..., bce_only=True)`).
  """
  import torch
  from torch import nn
  import torch.nn.functional as F
  from f2s.data import preprocess

  config = load_config(name, preset)
  if batch_size:
    config.train.global_batch_size = batch_size
  batch_size = config.train.global_batch_size
  m = config.model
  if m.name != 'casq' or m.block != 'plain' or m.quantizer != 'ema':
    raise ValueError('--torch mirrors CASQ with plain blocks and the EMA '
                     f'quantizer only, not {name}:{preset}')
  h, w, out_channels = preprocess.spec_from_config(config.data).sketch_shape
  skip_connections = m.get('skip_connections', False)
  face_exposure = m.get('face_exposure', 0.0)
  expose = face_exposure and torch_exposure(
      h, w, face_exposure, m.get('face_light_balance', False))
  torch.manual_seed(0)

  class Attention(nn.Module):
    def __init__(self, c):
      super().__init__()
      ck, cv = max(c // 8, 1), max(c // 2, 1)
      self.q, self.k = nn.Conv2d(c, ck, 1), nn.Conv2d(c, ck, 1)
      self.v, self.o = nn.Conv2d(c, cv, 1), nn.Conv2d(cv, c, 1)
      self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x):
      b, c, h, w = x.shape
      q = self.q(x).flatten(2).transpose(1, 2)
      k = self.k(x).flatten(2)
      v = self.v(x).flatten(2).transpose(1, 2)
      attn = torch.softmax(q @ k, dim=-1)
      o = (attn @ v).transpose(1, 2).reshape(b, -1, h, w)
      return x + self.gamma * self.o(o)

  def block(cin, cout):  # layers.ConvBlock
    layers = [nn.Conv2d(cin, cout, 3, padding=1)]
    if m.num_groups:
      layers.append(nn.GroupNorm(m.num_groups, cout))
    return nn.Sequential(*layers, nn.ReLU())

  class Casq(nn.Module):
    def __init__(self):
      super().__init__()
      chans = [3, *m.features]
      self.enc = nn.ModuleList(block(a, b) for a, b in zip(chans[:-1], chans[1:]))
      self.enc_mid = nn.Sequential(*(block(m.features[-1], m.features[-1])
                                     for _ in range(m.bottleneck_blocks)))
      self.attn = Attention(m.features[-1]) if m.attention else nn.Identity()
      self.pre_vq = nn.Conv2d(m.features[-1], m.embedding_dim, 1)
      self.dec_mid = nn.Sequential(*(
          block(m.embedding_dim if i == 0 else m.decoder_features[0],
                m.decoder_features[0]) for i in range(m.bottleneck_blocks)))
      cin = m.decoder_features[0] if m.bottleneck_blocks else m.embedding_dim
      self.dec = nn.ModuleList()
      for i, f in enumerate(m.decoder_features):
        self.dec.append(block(cin, f))
        cin = f + (m.features[-1 - i] if skip_connections else 0)
      self.head = nn.Conv2d(cin, out_channels, 3, padding=1)
      self.register_buffer('codebook',
                           torch.randn(m.num_embeddings, m.embedding_dim))
      self.register_buffer('cluster', torch.zeros(m.num_embeddings))
      self.register_buffer('dw', torch.zeros(m.num_embeddings,
                                             m.embedding_dim))

    def forward(self, x):
      if expose:
        x = expose(x)
      skips = []
      for conv in self.enc:
        x = conv(x)
        skips.append(x)
        x = F.max_pool2d(x, 2)
      z = self.pre_vq(self.attn(self.enc_mid(x)))
      flat = z.permute(0, 2, 3, 1).reshape(-1, m.embedding_dim)
      idx = torch.cdist(flat, self.codebook).argmin(1)
      q = self.codebook[idx]
      with torch.no_grad():
        onehot = F.one_hot(idx, m.num_embeddings).type(flat.dtype)
        self.cluster.mul_(m.decay).add_(onehot.sum(0), alpha=1 - m.decay)
        self.dw.mul_(m.decay).add_(onehot.T @ flat, alpha=1 - m.decay)
        n = self.cluster.sum()
        size = (self.cluster + m.epsilon) / (n + m.num_embeddings * m.epsilon)
        self.codebook.copy_(self.dw / (size * n).unsqueeze(1))
      vq_loss = m.commitment_cost * F.mse_loss(flat, q.detach())
      q = flat + (q - flat).detach()
      h = q.reshape(z.shape[0], z.shape[2], z.shape[3], -1).permute(0, 3, 1, 2)
      h = self.dec_mid(h)
      for i, conv in enumerate(self.dec):
        h = conv(F.interpolate(h, scale_factor=2, mode='nearest'))
        if skip_connections:
          h = torch.cat([h, skips[-1 - i]], dim=1)
      return self.head(h), vq_loss

  net = Casq()
  opt = torch.optim.Adam(net.parameters(), lr=config.train.learning_rate)
  model = torch.compile(net) if compile else net
  photo = torch.rand(batch_size, 3, h, w)
  sketch = torch.rand(batch_size, out_channels, h, w)

  def step():
    opt.zero_grad(set_to_none=True)
    logits, vq_loss = model(photo)
    loss = F.binary_cross_entropy_with_logits(logits, sketch) + vq_loss
    loss.backward()
    opt.step()

  start = time.perf_counter()
  step()  # compiles under torch.compile
  compile_s = time.perf_counter() - start
  times = []
  for i in range(warmup + steps):
    start = time.perf_counter()
    step()
    if i >= warmup:
      times.append(time.perf_counter() - start)
  train_s = statistics.median(times)
  mode = 'compile' if compile else 'eager'
  return {
      'framework': f'torch {torch.__version__} {mode}',
      'model': f'{name}/{m.variant}', 'config': name,
      'preset': preset, 'protocol': config.data.protocol,
      'image_shape': [h, w, out_channels], 'batch_size': batch_size,
      'params': sum(p.numel() for p in net.parameters()),
      'train_compile_s': compile_s if compile else None,
      'devices': 1, 'device_kind': 'cpu', 'threads': torch.get_num_threads(),
      'train_step_s': train_s, 'train_images_per_s': batch_size / train_s,
      'peak_memory_bytes':
          resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
      'peak_memory_kind': 'process max RSS',
  }


def _in_subprocess(args: argparse.Namespace, which: str,
                   kept_memory: bool) -> dict:
  cmd = [sys.executable, os.path.abspath(__file__), f'--single={which}',
         f'--preset={args.preset}', f'--warmup={args.warmup}',
         f'--steps={args.steps}']
  if args.batch_size:
    cmd.append(f'--batch_size={args.batch_size}')
  if args.loop:
    cmd.append('--loop')
  if args.compute_dtype:
    cmd.append(f'--compute_dtype={args.compute_dtype}')
  if not kept_memory:
    cmd.append('--default_malloc')
  if args.vs_xla_defaults:
    cmd.append('--vs_xla_defaults')
  env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep +
             os.environ.get('PYTHONPATH', ''))
  result = subprocess.run(cmd, env=env, capture_output=True, text=True)
  if result.returncode:
    raise RuntimeError(f'benchmark of {which} failed:\n{result.stderr[-3000:]}')
  row = json.loads(result.stdout.strip().splitlines()[-1])
  if kept_memory:
    row['framework'] += ' +kept'
  return row


def _table(rows: list[dict]) -> str:
  def fmt(value, spec):
    return '-' if value is None else format(value, spec)
  # As wide as the longest name ('casq_balanced/gan'), so the columns align.
  width = max([12] + [len(r['model']) for r in rows])
  lines = [f'{"model":<{width}} {"framework":<30} {"batch":>5} {"params":>9} '
           f'{"compile s":>9} {"train img/s":>11} {"eval img/s":>10} '
           f'{"GFLOP/step":>10} {"peak MiB":>9}']
  for r in rows:
    flops = r.get('train_flops_per_step')
    lines.append(
        f'{r["model"]:<{width}} {r["framework"]:<30} {r["batch_size"]:>5} '
        f'{r["params"]:>9} {fmt(r.get("train_compile_s"), ".2f"):>9} '
        f'{r["train_images_per_s"]:>11.1f} '
        f'{fmt(r.get("eval_images_per_s"), ".1f"):>10} '
        f'{fmt(flops and flops / 1e9, ".2f"):>10} '
        f'{r["peak_memory_bytes"] / 2**20:>9.0f}')
  return '\n'.join(lines)


def _loop_table(rows: list[dict]) -> str:
  lines = [f'{"model":<12} {"data":<6} {"batch":>5} {"steps":>5} '
           f'{"evals":>5} {"eval s":>6} {"ckpts":>5} {"ckpt s":>6} '
           f'{"loop img/s":>10} {"train part":>10} {"step img/s":>10} '
           f'{"loop/step":>9} '
           f'{"feed b":>6} {"host feed img/s":>15} {"grain host feed":>15}']
  for r in rows:
    lines.append(
        f'{r["model"]:<12} {r["loop_data"]:<6} {r["batch_size"]:>5} '
        f'{r["loop_steps"]:>5} {r["loop_evals"]:>5} {r["loop_eval_s"]:>6.1f} '
        f'{r["loop_checkpoints"]:>5} {r["loop_checkpoint_s"]:>6.2f} '
        f'{r["loop_images_per_s"]:>10.1f} '
        f'{r["loop_train_images_per_s"]:>10.1f} '
        f'{r["train_images_per_s"]:>10.1f} {r["loop_to_step"]:>9.2f} '
        f'{r["feed_batch_size"]:>6} {r["host_feed_images_per_s"]:>15.0f} '
        f'{r["host_feed_images_per_s_stream"]:>15.0f}')
  return '\n'.join(lines)


def _xla_defaults_lines(rows: list[dict]) -> str:
  lines = ['train step, s (median; the two alternated): f2s.xla_cpu options | '
           'XLA:CPU defaults | ratio']
  for r in rows:
    if 'alternated_train_step_s' in r:
      ours, xla = (r['alternated_train_step_s'],
                   r['alternated_xla_defaults_train_step_s'])
      lines.append(f"{r['model']:28s} {ours:.3f} | {xla:.3f} | {xla / ours:.2f}x")
  return '\n'.join(lines)


def cpu_name() -> str:
  """The CPU's model name (/proc/cpuinfo), else platform's processor string."""
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def _torch_ratios(rows: list[dict]) -> str:
  """Each network's f2s train step against its PyTorch rows, as speed ratios
  (against the f2s row with the peer's loss: BCE only where there is one)."""
  lines = [f'CPU: {cpu_name()}, {os.cpu_count()} logical cores']
  for t in rows:
    if not t['framework'].startswith('torch'):
      continue
    peers = [r for r in rows if r.get('config') == t['config']
             and r['framework'].startswith('jax')]
    peers = [r for r in peers if 'BCE only' in r['framework']] or peers
    for j in peers:
      lines.append(f'{t["model"]} train step: {j["framework"]} is '
                   f'{j["train_images_per_s"] / t["train_images_per_s"]:.2f}x '
                   f'{t["framework"]}')
  return '\n'.join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--models', default=','.join(MODELS),
                      help='comma-separated subset of '
                      + ','.join(MODELS + OTHER_MODELS))
  parser.add_argument('--preset', default='synthetic',
                      help='config argument (data preset), e.g. cuhk_standard')
  parser.add_argument('--batch_size', type=int, default=None,
                      help='global batch size (default: the config\'s)')
  parser.add_argument('--warmup', type=int, default=3)
  parser.add_argument('--steps', type=int, default=10)
  parser.add_argument('--torch', action='store_true',
                      help='also time the CASQ networks in PyTorch, eager '
                      'and under torch.compile')
  parser.add_argument('--loop', action='store_true',
                      help='run the whole training loop for --steps steps')
  parser.add_argument('--out', default=None,
                      help='JSON output (default runs/benchmark.json, '
                      'runs/benchmark_loop.json with --loop)')
  parser.add_argument('--compute_dtype', default=None,
                      choices=('float32', 'bfloat16'),
                      help='the train step\'s (default: the config\'s)')
  parser.add_argument('--default_malloc', action='store_true',
                      help="time f2s without host_memory.keep_freed_memory "
                      "(the torch rows run both ways)")
  parser.add_argument('--vs_xla_defaults', action='store_true',
                      help='also time each train step compiled with XLA:CPU\'s '
                      'default options (f2s.xla_cpu), alternating steps with '
                      'f2s\'s, and print both medians')
  parser.add_argument('--single', default=None, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.single:
    if not args.default_malloc:
      from f2s import host_memory
      host_memory.keep_freed_memory()
    which, _, mode = args.single.partition(':')
    if which in ('torch', 'torch_compile'):
      row = bench_torch(mode, args.preset, args.batch_size, args.warmup,
                        args.steps, compile=which == 'torch_compile')
    elif args.loop:
      row = bench_loop(which, args.preset, args.batch_size, args.warmup,
                       args.steps, args.compute_dtype)
    else:
      row = bench_jax(which, args.preset, args.batch_size, args.warmup,
                      args.steps, args.compute_dtype, bce_only=mode == 'bce',
                      vs_xla_defaults=args.vs_xla_defaults)
    print(json.dumps(row))
    return
  names = [n for n in args.models.split(',') if n]
  unknown = sorted(set(names) - set(MODELS + OTHER_MODELS))
  if unknown:
    parser.error(f'unknown model(s) {unknown}; expected from '
                 f'{MODELS + OTHER_MODELS}')
  if args.loop and args.torch:
    parser.error('--torch times the bare step only: drop --loop')
  rows = [_in_subprocess(args, name, not args.default_malloc) for name in names]
  if args.torch:
    for name in (n for n in names if n in TORCH_PEERS):
      if name != 'casq':  # a recipe's step has more terms than the peer's
        rows.append(_in_subprocess(args, f'{name}:bce', not args.default_malloc))
      rows += [_in_subprocess(args, f'{which}:{name}', kept)
               for kept in (False, True) for which in ('torch', 'torch_compile')]
  print(_loop_table(rows) if args.loop else _table(rows))
  if args.torch:
    print(_torch_ratios(rows))
  if args.vs_xla_defaults:
    print(_xla_defaults_lines(rows))
  out = args.out or os.path.join(
      ROOT, 'runs', 'benchmark_loop.json' if args.loop else 'benchmark.json')
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  with open(out, 'w') as f:
    json.dump({'machine': platform.platform(), 'cpu': cpu_name(),
               'cpu_count': os.cpu_count(),
               'warmup': args.warmup, 'steps': args.steps, 'loop': args.loop,
               'results': rows}, f, indent=2)
  print(f'wrote {out}')


if __name__ == '__main__':
  main()
