"""CASQ: conv encoder -> self-attention -> 1x1 projection -> vector quantizer -> conv decoder."""

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from f2s.models.attention import SelfAttention
from f2s.models.common import check_io
from f2s.models.layers import ConvDecoder, ConvEncoder, make_block, resolve_conv_impl
from f2s.models.quantizers import VectorQuantizer, VectorQuantizerEMA

QUANTIZERS = ('ema', 'plain', 'none')


class CASQ(nn.Module):
  """Self-attentive vector-quantized autoencoder photo -> sketch logits.

  encoder (`features`, one block + 2x2 pool each) -> `bottleneck_blocks` blocks
  -> SelfAttention (if `attention`) -> 1x1 conv to `embedding_dim` -> quantizer
  ('ema': VectorQuantizerEMA, state in 'vq_ema'; 'plain': VectorQuantizer, codebook
  in params; 'none': no quantizer, the ablation's plain bottleneck) ->
  `bottleneck_blocks` blocks -> decoder (`decoder_features`,
  nearest upsample + block each) -> 3x3 conv to out_shape[-1] logits.
  With `skip_connections`, each decoder stage also gets the encoder's
  features of its resolution (U-Net): detail that the quantized bottleneck
  cannot carry, such as pencil strokes, reaches the output.

  aux: vq_loss (weighted), perplexity, code_usage, codes_reset (none of them
  for quantizer='none').
  """
  out_shape: tuple[int, int, int]
  features: Sequence[int]
  decoder_features: Sequence[int]
  block: str
  num_groups: int
  bottleneck_blocks: int
  attention: bool
  embedding_dim: int
  num_embeddings: int
  quantizer: str
  commitment_cost: float
  decay: float
  epsilon: float
  dead_code_steps: int
  conv_impl: str = 'auto'  # layers.resolve_conv_impl: same parameters either way
  skip_connections: bool = False
  axis_name: str | None = None

  @nn.compact
  def __call__(self, photo: jax.Array, *, train: bool = False):
    check_io(photo, self.out_shape, len(self.features), 'CASQ')
    if len(self.decoder_features) != len(self.features):
      raise ValueError(f'CASQ: decoder_features {tuple(self.decoder_features)} must have '
                       f'as many stages as features {tuple(self.features)}.')
    conv = resolve_conv_impl(self.conv_impl)
    h, skips = ConvEncoder(self.features, self.block, self.num_groups, conv,
                           self.skip_connections, name='encoder')(photo)
    for i in range(self.bottleneck_blocks):
      h = make_block(self.block, self.features[-1], self.num_groups, f'enc_mid{i}',
                     conv=conv)(h)
    if self.attention:
      h = SelfAttention(name='attention')(h)
    z = nn.Conv(self.embedding_dim, (1, 1), name='pre_vq')(h)
    # The quantizer in at least float32 whatever the compute dtype: code
    # distances and EMA statistics need its precision.
    zq = z.astype(jnp.promote_types(z.dtype, jnp.float32))
    if self.quantizer == 'ema':
      vq = VectorQuantizerEMA(self.num_embeddings, self.embedding_dim, self.commitment_cost,
                              self.decay, self.epsilon, self.dead_code_steps,
                              self.axis_name, name='vq')(zq, train=train)
    elif self.quantizer == 'none':
      vq = None
    elif self.quantizer == 'plain':
      vq = VectorQuantizer(self.num_embeddings, self.embedding_dim, self.commitment_cost,
                           name='vq')(zq, train=train)
    else:
      raise ValueError(f'CASQ: unknown quantizer {self.quantizer!r}; expected one of '
                       f'{QUANTIZERS}.')
    h = z if vq is None else vq.quantize.astype(z.dtype)
    for i in range(self.bottleneck_blocks):
      h = make_block(self.block, self.decoder_features[0], self.num_groups, f'dec_mid{i}',
                     conv=conv)(h)
    logits = ConvDecoder(self.decoder_features, self.out_shape[-1], self.block,
                         self.num_groups, conv, name='decoder')(h, skips)
    if vq is None:
      return logits, {}
    aux = {'vq_loss': vq.loss, 'perplexity': vq.perplexity, 'code_usage': vq.code_usage,
           'codes_reset': vq.codes_reset.astype(jnp.float32)}
    return logits, aux
