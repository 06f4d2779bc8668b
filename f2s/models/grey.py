"""Grey in, grey out: wrappers around any model.

GreyOutput draws one grey channel, repeated to the target's. The CASQ protocol
scores RGB sketches, but every CUHK sketch is grey: its three channels are one
channel repeated. A model with three output channels learns them separately,
and any difference between them is error.

GreyInput shows the model the photo's luma alone. An artist draws the same
sketch from a colour or a grey photo; CUHK's photos are all colour, FERET's
(CUFSF) grey, and a model that sees colour learns to depend on it.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from f2s.colour import LUMA
from f2s.models.common import check_rgb


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


class GreyInput(nn.Module):
  """Runs `model` on the photo's luma repeated to its three channels (the
  model's parameters keep their shapes); the outputs pass through."""
  model: nn.Module

  def __call__(self, photo: jax.Array, **kwargs) -> tuple[jax.Array, dict]:
    check_rgb(photo, 'GreyInput')
    luma = photo @ jnp.asarray(LUMA, photo.dtype)
    return self.model(jnp.repeat(luma[..., None], 3, axis=-1), **kwargs)
