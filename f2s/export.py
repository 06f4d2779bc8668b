"""A trained model as an ONNX file: `python -m f2s.export --out FILE.onnx`.

  python -m f2s.export --out sketch.onnx                     # the shipped model
  python -m f2s.export --model NAME --out sketch.onnx        # another one
  python -m f2s.export --workdir runs/casq --out casq.onnx   # a run's best

The graph (jax2onnx, opset 23) takes the protocol's float32 model input
`photo` (N, H, W, 3), what `f2s.sketch.Sketcher.model_input` makes, N any,
and returns `sketch`, what `Sketcher` returns: the sigmoid of the logits in
[0, 1], cropped to the scored frame, (N, 200, 200, 3) under the 'casq'
protocol, (N, 250, 200, 1) under 'standard'. Its metadata (`METADATA_*`
keys) name the model, its source, protocol and shapes and hold the run's
whole config, from which `f2s.sketch --runtime=onnx` preprocesses photos
without JAX. Needs the `export` extra (`pip install -e '.[export]'`).

Every problem (no such model, a workdir without checkpoints, an output that
cannot be written, a model op without an ONNX equivalent) gets one line
`error: problem`, exit code 1, and no file: the model is written to a
temporary file beside `--out` and renamed over it once complete.
"""
import argparse
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable

import jax
import ml_collections

from f2s import models, pretrained, sketch
from f2s.data import preprocess

INPUT_NAME = 'photo'
OUTPUT_NAME = 'sketch'
OPSET = 23
METADATA_MODEL = 'f2s.model'            # name/variant, e.g. casq/default
METADATA_SOURCE = 'f2s.source'          # where the variables came from
METADATA_PROTOCOL = 'f2s.protocol'      # 'casq' or 'standard'
METADATA_INPUT_SHAPE = 'f2s.input_shape'    # e.g. N,256,208,3
METADATA_OUTPUT_SHAPE = 'f2s.output_shape'  # e.g. N,250,200,1
METADATA_CONFIG = sketch.ONNX_CONFIG_KEY  # the run's config, JSON


# jax2onnx without its dependencies: from 0.13.1 it pins orbax-checkpoint
# < 0.11.37 (and imports none of it) against f2s's >= 0.12.8, so pip would
# fall back to 0.13.0, which prints debug lines and plugin tracebacks.
INSTALL = ("f2s.export needs jax2onnx: pip install -e '.[export]' && "
           'pip install --no-deps jax2onnx==0.17.1')


class ExportError(ValueError):
  """A model that cannot be exported or written; the message says why."""


def export_config(config: ml_collections.ConfigDict
                  ) -> ml_collections.ConfigDict:
  """`config` with the CPU-tuned convolutions (`cpu_conv`) whatever backend
  exports: their forward passes are plain convolutions, and a decoder's
  upsample + 3x3 conv is one 2x2 conv to 4x the channels (16/36 of the
  multiply-adds; the shipped model's onnxruntime CPU time 107 instead of
  122 ms a face with XLA's, medians of 30 on the busy 2-core CPU). Same
  parameters either way."""
  config = ml_collections.ConfigDict(config.to_dict())
  if 'conv_impl' in config.model:
    config.model.conv_impl = 'cpu_fast'
  return config


def sketch_function(trained: pretrained.TrainedModel
                    ) -> Callable[[jax.Array], jax.Array]:
  """photo (N, H, W, 3) -> sketch in [0, 1] cropped to the frame, with the
  variables as constants: `Sketcher`'s function."""
  config = export_config(trained.config)
  spec = preprocess.spec_from_config(config.data)
  model = models.build_model(config.model, spec.sketch_shape,
                             value_range=spec.value_range)
  # Arrays, not numpy: the quantizer indexes its codebook with a tracer.
  variables = jax.device_put(trained.variables)
  # Sketcher's keys; with train=False nothing is sampled.
  rngs = {models.SAMPLE_RNG: jax.random.PRNGKey(0),
          models.CODEBOOK_RNG: jax.random.PRNGKey(1)}

  def predict(photo):
    logits, _ = model.apply(variables, photo, train=False, rngs=rngs)
    return preprocess.crop_to_valid(jax.nn.sigmoid(logits), spec)

  return predict


def shape_text(shape: tuple[int | str, ...]) -> str:
  return ','.join(str(d) for d in shape)


def metadata(trained: pretrained.TrainedModel) -> dict[str, str]:
  """The ONNX file's metadata_props."""
  spec = preprocess.spec_from_config(trained.config.data)
  _, _, out_h, out_w = preprocess.output_window(spec)
  return {
      METADATA_MODEL: f'{trained.config.model.name}/'
                      f'{trained.config.model.variant}',
      METADATA_SOURCE: trained.source,
      METADATA_PROTOCOL: spec.protocol,
      METADATA_INPUT_SHAPE: shape_text(('N', *spec.image_shape, 3)),
      METADATA_OUTPUT_SHAPE: shape_text(('N', out_h, out_w,
                                         spec.sketch_channels)),
      METADATA_CONFIG: json.dumps(trained.config.to_dict(), sort_keys=True),
  }


def to_onnx(trained: pretrained.TrainedModel):
  """The model as an onnx.ModelProto; raises ExportError naming an op that
  has no ONNX equivalent."""
  try:
    from jax2onnx import to_onnx as convert
  except ImportError:
    raise ExportError(INSTALL) from None
  # Warnings that concern no f2s model: jax2onnx's IR logs one per
  # shape-only value it leaves untyped, and its plugin loader one traceback
  # per plugin of a framework that is not installed (Equinox, dm-pix).
  for name in ('onnx_ir', 'jax2onnx.plugins.plugin_system'):
    logging.getLogger(name).setLevel(logging.ERROR)
  spec = preprocess.spec_from_config(trained.config.data)
  try:
    # ONNX's GroupNormalization op, not jax2onnx's decomposition of Flax's
    # E[x^2] - E[x]^2, whose subtraction amplifies onnxruntime's ReduceMean
    # rounding (~6x XLA's on long sums). Measured from the JAX Sketcher:
    # 1.6e-4 decomposed, 1.5e-5 with the op, for a tiny random conv DAE.
    model = convert(sketch_function(trained), [('N', *spec.image_shape, 3)],
                    model_name='f2s_sketch', opset=OPSET,
                    input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                    normalization_mode='prefer_native')
  except NotImplementedError as e:  # jax2onnx: no plugin for a primitive
    raise ExportError(f'{trained.source}: cannot export to ONNX ({e})'
                      ) from None
  for key, value in metadata(trained).items():
    model.metadata_props.add(key=key, value=value)
  return model


def check_out(path: str) -> None:
  """Raises ExportError unless a file can be written at `path`: before the
  export's work, with a real write (access() says yes to root on a
  read-only mount)."""
  if os.path.isdir(path):
    raise ExportError(f'--out {path}: is a directory')
  try:
    with tempfile.TemporaryFile(dir=os.path.dirname(path) or '.'):
      pass
  except OSError as e:
    raise ExportError(f'--out {path}: cannot write there '
                      f'({e.strerror or e})') from None


def write(data: bytes, path: str) -> None:
  """Writes `data` atomically: a temporary file beside `path`, renamed."""
  tmp = os.path.join(os.path.dirname(path),
                     f'.{os.path.basename(path)}.{os.getpid()}.tmp')
  try:
    with open(tmp, 'wb') as f:
      f.write(data)
    os.replace(tmp, path)
  except OSError as e:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise ExportError(f'--out {path}: cannot write there '
                      f'({e.strerror or e})') from None


def export(trained: pretrained.TrainedModel, path: str) -> int:
  """Exports `trained` to `path`; returns the file's size in bytes."""
  check_out(path)
  data = to_onnx(trained).SerializeToString()
  write(data, path)
  return len(data)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      prog='python -m f2s.export',
      description='Export a trained f2s model to ONNX (photo -> sketch).')
  sketch.add_model_source(
      parser, workdir_help='export the best checkpoint of this training run')
  parser.add_argument('--out', required=True, metavar='FILE.onnx',
                      help='the ONNX file to write (replaced if it exists)')
  return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
  """The command; returns its exit code."""
  args = parse_args(argv)
  from absl import logging as absl_logging  # keep Orbax's INFO lines quiet
  absl_logging.set_verbosity(absl_logging.WARNING)
  try:
    trained = sketch.load_model(args.model, args.workdir)
    size = export(trained, args.out)
  except (pretrained.ModelError, ExportError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  spec = metadata(trained)
  print(f'{trained.source} ({spec[METADATA_MODEL]}) -> {args.out} '
        f'({size / 2**20:.1f} MiB): {INPUT_NAME} float32 '
        f'({spec[METADATA_INPUT_SHAPE]}) -> {OUTPUT_NAME} float32 '
        f'({spec[METADATA_OUTPUT_SHAPE]}) in [0, 1]')
  return 0


if __name__ == '__main__':
  sys.exit(main())
