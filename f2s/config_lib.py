"""Experiment configs as code: every knob named once, presets, variants.

A config file (`configs/casq.py`) is one call of `model_config(name,
variant, arg)`, where `arg` is the `:suffix` of
`--config=configs/casq.py:PRESET[,VARIANT]`: a preset (`PRESETS`: data set,
protocol and schedule) optionally followed by a model variant, as in
`configs/dae.py:cuhk_casq,paper`. The `tiny` preset also shrinks the model,
whatever the variant. `load(path_and_arg)` loads a config file the way
`--config` does (for experiments and tests).
"""
import difflib
import os
import runpy

import ml_collections

from f2s import models

# protocol and data set presets, selected by the config argument.
PRESETS = {
    # Procedural demo faces (no download), CASQ protocol.
    'synthetic': dict(dataset='synthetic_face_sketch', builder_config='default',
                      protocol='casq', train_split='train', test_split='test'),
    # The CASQ study's setting: CUHK pooled, 150 train / 38 test, 200x200 RGB.
    'cuhk_casq': dict(dataset='cuhk_face_sketch', builder_config=None,
                      protocol='casq', train_split='casq_train',
                      test_split='casq_test'),
    # The face-sketch literature's split: 88 train / 100 test, greyscale.
    'cuhk_standard': dict(dataset='cuhk_face_sketch', builder_config=None,
                          protocol='standard', train_split='train',
                          test_split='test'),
    # Minutes-free smoke runs: tiny synthetic split, few steps, small batches.
    'tiny': dict(dataset='synthetic_face_sketch', builder_config='tiny',
                 protocol='casq', train_split='train', test_split='test'),
}


def get_config() -> ml_collections.ConfigDict:
  """Defaults shared by all models (model knobs come from f2s.models)."""
  config = ml_collections.ConfigDict()
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.dataset = 'synthetic_face_sketch'
  config.data.builder_config = 'default'
  config.data.data_dir = ml_collections.config_dict.placeholder(str)
  config.data.manual_dir = ml_collections.config_dict.placeholder(str)
  config.data.protocol = 'casq'
  config.data.train_split = 'train'
  config.data.test_split = 'test'
  config.data.value_range = 'unit'
  config.data.pad_to = (256, 208)
  config.data.augment = True
  config.data.flip = True
  config.data.max_shift = 8
  config.data.max_scale = 0.05
  # The photo's lighting and camera changed at training time (with augment;
  # f2s.data.photometric): brightness shift, contrast and gamma spans, a
  # one-sided shadow's depth, the chance of a grey photo, the largest blur
  # sigma in pixels, a cast shadow's (a soft blob's) depth, a smoothly varying
  # gamma's largest log-exponent. All 0: off.
  config.data.photometric = ml_collections.ConfigDict(
      {'brightness': 0.0, 'contrast': 0.0, 'gamma': 0.0, 'shadow': 0.0,
       'grey': 0.0, 'blur': 0.0, 'cast_shadow': 0.0, 'local_gamma': 0.0})
  config.data.num_workers = 0
  # 'auto': a training split whose uint8 pixels fit in 1 GiB per device is
  # held on the devices and batched, augmented and preprocessed inside the
  # train step; a larger one is streamed by grain (num_workers processes).
  # 'always' / 'never' force either.
  config.data.device_resident = 'auto'

  config.model = models.default_config('casq', 'paper')

  config.loss = ml_collections.ConfigDict()
  # Weights of the reconstruction terms; a 0 weight switches a term off.
  config.loss.terms = ml_collections.ConfigDict(
      {'bce': 1.0, 'l1': 0.0, 'l2': 0.0, 'ssim': 0.0, 'gradient': 0.0,
       'fsim': 0.0, 'perceptual': 0.0, 'style': 0.0})
  # The perceptual/style terms' VGG16: its first `layers` taps (relu1_2,
  # relu2_2, relu3_3, ...) on the images average-pooled by `downsample`.
  config.loss.perceptual_layers = 3
  config.loss.perceptual_downsample = 2
  # The style term's Gram matrices per cell of a style_grid x style_grid grid
  # (1: over the whole feature map; losses.FeatureSpec).
  config.loss.style_grid = 1
  config.loss.kl_weight = 1e-3

  config.train = ml_collections.ConfigDict()
  config.train.global_batch_size = 8
  config.train.num_steps = 3000
  config.train.learning_rate = 1e-3
  config.train.lr_schedule = 'cosine'
  config.train.warmup_steps = 100
  config.train.b1 = 0.9
  config.train.b2 = 0.999
  config.train.weight_decay = 0.0
  config.train.grad_clip_norm = 1.0
  config.train.log_every_steps = 50
  # The forward pass's dtype: 'bfloat16' is mixed precision (parameters,
  # optimizer and model state, VQ distances and losses stay float32).
  config.train.compute_dtype = 'float32'

  config.eval = ml_collections.ConfigDict()
  config.eval.every_steps = 500
  config.eval.batch_size = 8
  config.eval.num_samples = 4
  config.eval.restore = 'best'  # --mode=eval: 'best' or 'latest' checkpoint
  # Training-time evaluations also write predictions/<step>/*.png (--mode=eval
  # always does).
  config.eval.write_predictions = False
  # LPIPS nets scored beside SSIM/FSIM (metrics lpips_<net>). On a 2-core CPU
  # 100 standard-protocol images take ~1.5 s for 'alex' and ~40 s for 'vgg'.
  config.eval.lpips = ('alex', 'vgg')
  # --mode=eval on another data set's test split (e.g. 'cufsf_face_sketch':
  # a CUHK-trained run on FERET faces), written to predictions/<dataset>/
  # <step>/; None: the run's own data.test_split. Its manual_dir: None for
  # the data set's default.
  config.eval.dataset = ml_collections.config_dict.placeholder(str)
  config.eval.manual_dir = ml_collections.config_dict.placeholder(str)

  # Adversarial training (the 'gan' variants): a conditional PatchGAN
  # discriminator beside the model, hinge loss, both updated in each step.
  # weight 0: off, no discriminator in the train state.
  config.gan = ml_collections.ConfigDict()
  config.gan.weight = 0.0  # of the generator's adversarial term
  config.gan.start_step = 0  # reconstruction-only steps before it counts
  # pix2pixHD's feature matching (L1 between the discriminator's activations
  # on the real and the fake pair), from start_step; 0: off.
  config.gan.feature_matching = 0.0
  # Mescheder et al.'s R1 penalty's gamma: the discriminator's loss adds
  # gamma / 2 times the real pairs' squared input-gradient norm per patch
  # (f2s.training.losses.r1_penalty); 0: off.
  config.gan.r1 = 0.0
  config.gan.features = (32, 64, 128)  # discriminator widths
  # Spectral norm on its convs (SAGAN's); False: plain convs, as pix2pix.
  config.gan.spectral_norm = True
  # pix2pixHD's multi-scale discriminator: this many, each on the pair
  # halved once more (1: one PatchGAN at full size).
  config.gan.scales = 1
  config.gan.learning_rate = 2e-4  # the discriminator's Adam (constant)
  config.gan.b1 = 0.5
  config.gan.b2 = 0.9

  config.checkpoint = ml_collections.ConfigDict()
  config.checkpoint.every_steps = 500
  config.checkpoint.max_to_keep = 2
  config.checkpoint.best_metric = 'ssim'
  config.checkpoint.best_mode = 'max'
  return config


# Run-length overrides per preset (section -> knob -> value); presets not
# listed keep get_config()'s full-length schedule.
SCHEDULES = {
    # The README's first command: under 5 minutes on a 2-core CPU. One
    # evaluation, at the end: each costs ~20 s there (100 faces, PNGs, grid).
    'synthetic': dict(train=dict(num_steps=200),
                      eval=dict(every_steps=200),
                      checkpoint=dict(every_steps=100)),
    'tiny': dict(train=dict(global_batch_size=4, num_steps=20, warmup_steps=0,
                            log_every_steps=5),
                 # No LPIPS: VGG16 alone would outweigh these runs.
                 eval=dict(every_steps=10, batch_size=4, num_samples=2,
                           lpips=()),
                 checkpoint=dict(every_steps=10)),
}


def apply_preset(config: ml_collections.ConfigDict,
                 arg: str | None) -> ml_collections.ConfigDict:
  """Applies a data preset (`PRESETS` key; None or '' -> 'synthetic')."""
  arg = arg or 'synthetic'
  if arg not in PRESETS:
    raise ValueError(f'unknown config argument {arg!r}: expected one of '
                     f'{sorted(PRESETS)} (e.g. --config=configs/casq.py:synthetic)')
  for key, value in PRESETS[arg].items():
    config.data[key] = value
  for section, knobs in SCHEDULES.get(arg, {}).items():
    config[section].update(knobs)
  return config


# The `tiny` preset's model sizes, per (model, variant): seconds-long tests.
TINY_MODELS = {
    ('dae', 'paper'): dict(hidden=(16, 8, 4)),
    ('dae', 'conv'): dict(features=(8, 8, 8), latent_channels=4, num_groups=4),
    ('vae', 'paper'): dict(hidden=(16, 8, 4), latent_dim=2),
    ('vae', 'conv'): dict(features=(8, 8, 8), latent_channels=4, num_groups=4),
    ('casq', 'paper'): dict(features=(8, 8, 8), decoder_features=(8, 8, 8),
                            embedding_dim=8, num_embeddings=16,
                            attention=False),
    ('casq', 'default'): dict(features=(8, 8, 8), decoder_features=(8, 8, 8),
                              num_groups=4, bottleneck_blocks=1,
                              embedding_dim=8, num_embeddings=16),
    ('casq', 'gan'): dict(features=(8, 8, 8), decoder_features=(8, 8, 8),
                          num_groups=4, bottleneck_blocks=1,
                          embedding_dim=8, num_embeddings=16),
}


# Settings outside config.model that a variant brings, per (model, variant).
VARIANT_SETTINGS = {
    # Adversarial from step 100: the discriminator learns real sketches while
    # the reconstruction terms shape the output, then pushes it to strokes.
    ('casq', 'gan'): dict(gan=dict(weight=0.1, start_step=100)),
}


# The tiny preset's discriminator and adversarial schedule.
TINY_GAN = dict(features=(8, 8), start_step=5)


# Named training recipes: dotted knob -> value, set over a model config as
# --config.<knob>=<value> would be (`apply_recipe`).
RECIPES = {
    # casq_gan_cuhk's settings (shipped, the default before casq_drawn_cuhk)
    # beside the gan variant's (its model card's command).
    'shipped': {'model.block': 'plain', 'loss.terms.ssim': 1.0,
                'loss.terms.fsim': 1.0},
    # shipped + the VGG16 perceptual and style terms: on seed 0 CUHK
    # LPIPS-Alex 0.309 -> 0.246, CUFSF 0.414 -> 0.374, FSIM 0.760 -> 0.754
    # (experiments/results/sharp_sketch_notes.md).
    'perceptual': {'model.block': 'plain', 'loss.terms.ssim': 1.0,
                   'loss.terms.fsim': 1.0, 'loss.terms.perceptual': 0.1,
                   'loss.terms.style': 1.0},
    # perceptual + the photo's lighting and camera varied at training time:
    # on seed 0 the best CUFSF row (FSIM 0.642, LPIPS-Alex 0.354; CUHK FSIM
    # 0.753, LPIPS-Alex 0.245).
    'perceptual_photometric': {
        'model.block': 'plain', 'loss.terms.ssim': 1.0,
        'loss.terms.fsim': 1.0, 'loss.terms.perceptual': 0.1,
        'loss.terms.style': 1.0, 'data.photometric.brightness': 0.15,
        'data.photometric.contrast': 0.3, 'data.photometric.gamma': 0.4,
        'data.photometric.shadow': 0.5, 'data.photometric.grey': 0.3,
        'data.photometric.blur': 1.0},
}
# perceptual_photometric with the perceptual term x3 and FSIM x2: the
# shipped casq_drawn_cuhk's (3 seeds: the standard table's casq_gan_drawn).
RECIPES['drawn'] = {**RECIPES['perceptual_photometric'],
                    'loss.terms.perceptual': 0.3, 'loss.terms.fsim': 2.0}
# drawn with a cast-shadow augmentation and each photo scaled to CUHK's face
# exposure (f2s.models.exposure): the shipped casq_exposed_cuhk's (3 seeds:
# the standard table's casq_gan_drawn_cast_exposure).
RECIPES['exposed'] = {**RECIPES['drawn'], 'data.photometric.cast_shadow': 0.6,
                      'model.face_exposure': 0.75}
# exposed with all five VGG16 taps (LPIPS-VGG's) in the feature terms,
# trained for 600 steps (tables.shipped_recipe_config's `steps`): the
# shipped casq_exposed_vgg5_cuhk's (3 seeds: the standard table's
# casq_gan_drawn_cast_exposure_600_vgg5).
RECIPES['exposed_vgg5'] = {**RECIPES['exposed'], 'loss.perceptual_layers': 5}
# exposed_vgg5 with the photo's left-right light slope divided out before
# the exposure (f2s.models.exposure): the shipped default
# casq_balanced_cuhk's (3 seeds: the standard table's
# casq_gan_drawn_cast_exposure_600_vgg5_balance).
RECIPES['balanced'] = {**RECIPES['exposed_vgg5'],
                       'model.face_light_balance': True}


def apply_recipe(config: ml_collections.ConfigDict,
                 name: str) -> ml_collections.ConfigDict:
  """Sets RECIPES[name]'s knobs on `config` (in place) and returns it."""
  if name not in RECIPES:
    raise ValueError(f'unknown recipe {name!r}: expected one of '
                     f'{sorted(RECIPES)}')
  return set_knobs(config, RECIPES[name])


def set_knobs(config: ml_collections.ConfigDict,
              knobs: dict[str, object]) -> ml_collections.ConfigDict:
  """Sets each dotted knob of `knobs` on `config` (in place), as
  --config.<knob>=<value> would, and returns it."""
  for key, value in knobs.items():
    *sections, leaf = key.split('.')
    node = config
    for section in sections:
      node = node[section]
    node[leaf] = value
  return config


def parse_arg(arg: str | None) -> tuple[str, str | None]:
  """`PRESET[,VARIANT]` -> (preset, variant or None); '' -> 'synthetic'."""
  preset, _, variant = (arg or '').partition(',')
  return preset or 'synthetic', variant or None


def model_config(name: str, variant: str,
                 arg: str | None) -> ml_collections.ConfigDict:
  """Defaults with model `name` and the config argument `arg`.

  `arg` is `PRESET` or `PRESET,VARIANT` (e.g. `cuhk_casq,paper`): VARIANT
  replaces the config file's `variant`.
  """
  preset, chosen = parse_arg(arg)
  config = get_config()
  config.model = models.default_config(name, chosen or variant)
  for section, knobs in VARIANT_SETTINGS.get(
      (name, config.model.variant), {}).items():
    config[section].update(knobs)
  config = apply_preset(config, preset)
  if preset == 'tiny':
    config.model.update(TINY_MODELS[(name, config.model.variant)])
    if config.gan.weight:
      config.gan.update(TINY_GAN)
  return config


def load(config_arg: str) -> ml_collections.ConfigDict:
  """The config of `path/to/file.py[:ARG]`, loaded as `--config=` does.

  Raises ValueError naming a missing file.
  """
  path, _, arg = config_arg.partition(':')
  if not os.path.isfile(path):
    here = os.path.dirname(path) or '.'
    files = sorted(f for f in os.listdir(here) if f.endswith('.py')
                   ) if os.path.isdir(here) else []
    raise ValueError(
        f'--config={config_arg}: no such file {path!r}'
        + (f'; config files in {here}/: {files}' if files else ''))
  return runpy.run_path(path)['get_config'](arg or None)


def unknown_key_message(config: ml_collections.ConfigDict, key: str) -> str:
  """`config.<key>` does not exist: a one-line message naming close keys."""
  section, _, leaf = key.rpartition('.')
  node = config
  for part in section.split('.') if section else ():
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      return unknown_key_message(config, section)
    node = node[part]
  if not isinstance(node, ml_collections.ConfigDict):
    return f'--config.{key}: {section} is a value, not a section'
  prefix = f'{section}.' if section else ''
  close = difflib.get_close_matches(leaf, list(node), n=3)
  if close:
    hint = 'did you mean ' + ', '.join(prefix + c for c in close) + '?'
  else:
    hint = f'{section or "the config"} has: ' + ', '.join(sorted(node))
  return f'--config.{key}: no such key; {hint}'
