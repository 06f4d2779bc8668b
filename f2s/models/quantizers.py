"""Vector quantizers (van den Oord et al. 2017) with Sonnet's semantics.

`VectorQuantizer` learns its codebook by gradient (codebook + commitment
loss); `VectorQuantizerEMA` keeps it as zero-debiased exponential moving
averages in the mutable collection 'vq_ema', updated only when `train=True`
and the collection is mutable, optionally `psum`-ed over `axis_name` and with
dead-code re-initialisation from the current batch.
"""

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

VQ_COLLECTION = 'vq_ema'
CODEBOOK_RNG = 'codebook'

# Sonnet's default initialiser for the (embedding_dim, num_embeddings) codebook.
_codebook_init = nn.initializers.variance_scaling(1.0, 'fan_in', 'uniform')


@flax.struct.dataclass
class VQOutput:
  """Result of a quantizer call.

  quantize: straight-through output, value == codebook rows, d/dz == identity.
  codes: the selected codebook rows (no gradient path to the input).
  loss: weighted VQ loss (commitment, plus codebook loss for the non-EMA one).
  perplexity: exp(-sum p log p) of the batch's average one-hot encodings.
  code_usage: fraction of codes used at least once in the batch.
  codes_reset: number of dead codes re-initialised by this call (0 if none).
  encoding_indices: int32 code index per input vector, shape inputs.shape[:-1].
  """
  quantize: jax.Array
  codes: jax.Array
  loss: jax.Array
  perplexity: jax.Array
  code_usage: jax.Array
  codes_reset: jax.Array
  encoding_indices: jax.Array


def nearest_codes(flat: jax.Array, embeddings: jax.Array) -> jax.Array:
  """Index of the nearest column of `embeddings` (D, K) for each row of `flat` (N, D)."""
  distances = (jnp.sum(flat**2, axis=1, keepdims=True)
               - 2 * flat @ embeddings
               + jnp.sum(embeddings**2, axis=0, keepdims=True))
  return jnp.argmin(distances, axis=1).astype(jnp.int32)


def usage_stats(counts: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(perplexity, fraction of codes used) from per-code assignment counts."""
  p = counts / jnp.sum(counts)
  perplexity = jnp.exp(-jnp.sum(p * jnp.log(p + 1e-10)))
  return perplexity, jnp.mean((counts > 0).astype(jnp.float32))


def straight_through(z: jax.Array, q: jax.Array) -> jax.Array:
  """Value exactly `q`, gradient to `z` the identity, no gradient to `q`.

  Same gradients as Sonnet's `z + sg(q - z)`, but `z - sg(z)` is exactly 0 so
  the forward value is bit-exact codebook rows.
  """
  return jax.lax.stop_gradient(q) + (z - jax.lax.stop_gradient(z))


def ema_step(hidden: jax.Array, counter: jax.Array, value: jax.Array,
             decay: float) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Sonnet's zero-debiased EMA: returns (average, new hidden, new counter)."""
  counter = counter + 1
  hidden = hidden - (hidden - value) * (1 - decay)
  average = hidden / (1 - decay**counter.astype(hidden.dtype))
  return average, hidden, counter


def _check_input(z: jax.Array, embedding_dim: int) -> jax.Array:
  if z.shape[-1] != embedding_dim:
    raise ValueError(f'Quantizer input has {z.shape[-1]} channels, expected '
                     f'embedding_dim={embedding_dim}.')
  return z.reshape(-1, embedding_dim)


class VectorQuantizer(nn.Module):
  """Codebook learnt by gradient (Sonnet `VectorQuantizer`); codebook in `params`."""
  num_embeddings: int
  embedding_dim: int
  commitment_cost: float

  @nn.compact
  def __call__(self, z: jax.Array, *, train: bool = False) -> VQOutput:
    del train  # same computation in training and evaluation
    flat = _check_input(z, self.embedding_dim)
    embeddings = self.param('embeddings', _codebook_init,
                            (self.embedding_dim, self.num_embeddings))
    idx = nearest_codes(flat, embeddings)
    q = embeddings.T[idx].reshape(z.shape)
    e_latent = jnp.mean((jax.lax.stop_gradient(q) - z)**2)
    q_latent = jnp.mean((q - jax.lax.stop_gradient(z))**2)
    counts = jnp.sum(jax.nn.one_hot(idx, self.num_embeddings, dtype=flat.dtype), axis=0)
    perplexity, usage = usage_stats(counts)
    return VQOutput(quantize=straight_through(z, q), codes=jax.lax.stop_gradient(q),
                    loss=q_latent + self.commitment_cost * e_latent,
                    perplexity=perplexity, code_usage=usage,
                    codes_reset=jnp.zeros((), jnp.int32),
                    encoding_indices=idx.reshape(z.shape[:-1]))


class VectorQuantizerEMA(nn.Module):
  """Codebook as EMAs of cluster sizes and summed inputs (Sonnet `VectorQuantizerEMA`).

  State in collection 'vq_ema': `embeddings` (D, K), `ema_cluster_size` /
  `ema_cluster_size_counter`, `ema_dw` / `ema_dw_counter` (EMA hidden values
  and debias counters, both starting at 0 as in Sonnet), and `steps_unused`
  (K,) when `dead_code_steps > 0`.

  Update (training only): N <- EMA(counts), m <- EMA(z^T onehot), Laplace
  smoothing N <- (N + eps) / (n + K eps) * n with n = sum N, embeddings = m / N.
  With `axis_name` the counts and sums are psum-ed first so every replica
  computes the same update as one device on the whole batch.

  Dead codes: a code not chosen for `dead_code_steps` consecutive training
  steps (counted on the psum-ed counts) is set to a random encoder output of
  the current global batch, drawn with the 'codebook' rng (replica 0's draw is
  used on every replica); its EMA state is reset to cluster size 1 holding that
  vector, so it stays put until chosen.

  The loss is `commitment_cost * mean((sg(q) - z)^2)`; the codebook gets no
  gradient. perplexity / code_usage describe the local (per-replica) batch.
  """
  num_embeddings: int
  embedding_dim: int
  commitment_cost: float
  decay: float
  epsilon: float = 1e-5
  dead_code_steps: int = 0
  axis_name: str | None = None

  @nn.compact
  def __call__(self, z: jax.Array, *, train: bool = False) -> VQOutput:
    flat = _check_input(z, self.embedding_dim)
    d, k = self.embedding_dim, self.num_embeddings
    embeddings = self.variable(
        VQ_COLLECTION, 'embeddings',
        lambda: _codebook_init(self.make_rng('params'), (d, k)))
    cluster = self.variable(VQ_COLLECTION, 'ema_cluster_size', jnp.zeros, (k,))
    cluster_n = self.variable(VQ_COLLECTION, 'ema_cluster_size_counter',
                              jnp.zeros, (), jnp.int32)
    dw = self.variable(VQ_COLLECTION, 'ema_dw', jnp.zeros, (d, k))
    dw_n = self.variable(VQ_COLLECTION, 'ema_dw_counter', jnp.zeros, (), jnp.int32)
    unused = (self.variable(VQ_COLLECTION, 'steps_unused', jnp.zeros, (k,), jnp.int32)
              if self.dead_code_steps > 0 else None)

    emb = embeddings.value
    idx = nearest_codes(flat, emb)
    q = emb.T[idx].reshape(z.shape)
    encodings = jax.nn.one_hot(idx, k, dtype=flat.dtype)
    local_counts = jnp.sum(encodings, axis=0)
    perplexity, usage = usage_stats(local_counts)
    codes_reset = jnp.zeros((), jnp.int32)

    if train and self.is_mutable_collection(VQ_COLLECTION) and not self.is_initializing():
      flat_sg = jax.lax.stop_gradient(flat)
      counts, sums = local_counts, flat_sg.T @ encodings
      if self.axis_name is not None:
        counts = jax.lax.psum(counts, self.axis_name)
        sums = jax.lax.psum(sums, self.axis_name)
      cluster_avg, cluster.value, cluster_n.value = ema_step(
          cluster.value, cluster_n.value, counts, self.decay)
      dw_avg, dw.value, dw_n.value = ema_step(dw.value, dw_n.value, sums, self.decay)
      n = jnp.sum(cluster_avg)
      smoothed = (cluster_avg + self.epsilon) / (n + k * self.epsilon) * n
      embeddings.value = dw_avg / smoothed[None, :]
      if unused is not None:
        codes_reset = self._reset_dead_codes(flat_sg, counts, embeddings, cluster,
                                             cluster_n, dw, unused)

    return VQOutput(quantize=straight_through(z, q), codes=jax.lax.stop_gradient(q),
                    loss=self.commitment_cost * jnp.mean((jax.lax.stop_gradient(q) - z)**2),
                    perplexity=perplexity, code_usage=usage, codes_reset=codes_reset,
                    encoding_indices=idx.reshape(z.shape[:-1]))

  def _reset_dead_codes(self, flat, counts, embeddings, cluster, cluster_n, dw,
                        unused) -> jax.Array:
    """Re-initialise codes unused for `dead_code_steps` steps; returns how many."""
    steps = jnp.where(counts > 0, 0, unused.value + 1)
    dead = steps >= self.dead_code_steps
    fresh = self._draw_batch_rows(flat)
    # Hidden values such that the debiased averages are cluster size 1, sum = fresh.
    scale = 1 - self.decay**cluster_n.value.astype(fresh.dtype)
    embeddings.value = jnp.where(dead[None, :], fresh, embeddings.value)
    cluster.value = jnp.where(dead, scale, cluster.value)
    dw.value = jnp.where(dead[None, :], fresh * scale, dw.value)
    unused.value = jnp.where(dead, 0, steps)
    return jnp.sum(dead.astype(jnp.int32))

  def _draw_batch_rows(self, flat: jax.Array) -> jax.Array:
    """(D, K): K rows drawn uniformly from the global batch with the 'codebook' rng.

    Under `axis_name` the global batch is the concatenation of the replicas'
    batches in axis order; replica 0's draw is used everywhere, and the rows are
    assembled with psums (each row comes from one replica, the others add exact
    zeros), so the result is identical on every replica and to the
    single-device draw on the concatenated batch.
    """
    n = flat.shape[0]
    if self.axis_name is None:
      pick = jax.random.randint(self.make_rng(CODEBOOK_RNG), (self.num_embeddings,), 0, n)
      return flat[pick].T
    replica = jax.lax.axis_index(self.axis_name)
    total = n * jax.lax.axis_size(self.axis_name)
    pick = jax.random.randint(self.make_rng(CODEBOOK_RNG), (self.num_embeddings,), 0, total)
    pick = jax.lax.psum(jnp.where(replica == 0, pick, 0), self.axis_name)
    local = pick - replica * n
    mine = (local >= 0) & (local < n)
    rows = jnp.where(mine[:, None], flat[jnp.clip(local, 0, n - 1)], 0)
    return jax.lax.psum(rows, self.axis_name).T
