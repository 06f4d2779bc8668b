"""GreyOutput: a model that draws one grey channel, repeated to the target's.

The CASQ protocol scores RGB sketches, but every CUHK sketch is grey: its three
channels are one channel repeated. A model with three output channels learns
them separately, and any difference between them is error.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp


class GreyOutput(nn.Module):
  """Runs `model` (built with one output channel) and repeats its logits to
  `channels`; the aux metrics pass through."""
  model: nn.Module
  channels: int

  def __call__(self, photo: jax.Array, **kwargs) -> tuple[jax.Array, dict]:
    logits, aux = self.model(photo, **kwargs)
    if logits.shape[-1] != 1:
      raise ValueError(f'GreyOutput: the wrapped model draws {logits.shape[-1]} '
                       'channels, expected 1.')
    return jnp.repeat(logits, self.channels, axis=-1), aux
