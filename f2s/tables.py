"""The rows of the results tables: each a config file, a preset and overrides.

A row is one `python -m f2s.main` command (`Row.command`), so any single row
is reproduced by hand with the command its results carry;
`experiments/reproduce.py` trains every row of a table for several seeds and
writes `experiments/results/<table>.{json,md}`.

Three recipes:
- `study`: the CASQ study's recipe as far as it states it (Adam 1e-3, batch
  128, 1000 epochs of 150 images ~ 2000 steps, BCE, no augmentation). The
  dense dae/vae paper models train at ~250 images/s at batch 128 in the
  training loop on a 2-core CPU (16-18 min a run); casq_paper's bare step at 7
  (~10 h a run), so its row runs only on an accelerator.
- `f2s`: f2s's own (Adam 1e-3 with 100 warm-up steps and cosine decay,
  gradient clipping at norm 1, batch 8, BCE, flip/shift/scale augmentation),
  300 steps (2400 images, 16 epochs of 150), so that a table with 3 seeds
  finishes on a 2-core CPU in the background.
- `f2s_long`: the same for 3000 steps, for the dense paper models, which
  train faster and are still learning at 300 steps.
"""
import dataclasses
from collections.abc import Mapping
from typing import Any

import ml_collections

from f2s import config_lib

STUDY_REFERENCE = {  # the CASQ study's table (150/38 split, RGB 200x200)
    'dae': {'ssim': 0.4715, 'mse': 0.0499},
    'vae': {'ssim': 0.4701, 'mse': 0.0991},
    'casq': {'ssim': 0.5289, 'mse': 0.0320},
}

F2S_STEPS = 300
F2S_LONG_STEPS = 3000
RECIPES: Mapping[str, dict[str, Any]] = {
    'f2s': {
        'train.num_steps': F2S_STEPS,
        'eval.every_steps': F2S_STEPS,
        'checkpoint.every_steps': 100,
    },
    'f2s_long': {
        'train.num_steps': F2S_LONG_STEPS,
        'eval.every_steps': F2S_LONG_STEPS,
        'checkpoint.every_steps': 500,
    },
    'study': {
        'train.global_batch_size': 128,
        'train.num_steps': 2000,
        'train.lr_schedule': 'constant',
        'train.warmup_steps': 0,
        'train.grad_clip_norm': 0.0,
        'data.augment': False,
        'eval.every_steps': 500,
        'checkpoint.every_steps': 500,
    },
}
RECIPE_TEXT = {
    'f2s': (f'f2s: Adam 1e-3, 100 warm-up steps + cosine, clip 1, batch 8, '
            f'BCE, flip/shift/scale augmentation, {F2S_STEPS} steps'),
    'f2s_long': f'f2s_long: the f2s recipe for {F2S_LONG_STEPS} steps',
    'study': ('study: Adam 1e-3 constant, batch 128, 2000 steps, BCE, no '
              'augmentation'),
}


@dataclasses.dataclass(frozen=True)
class Row:
  """One row of a results table."""
  name: str
  model: str
  variant: str
  preset: str
  recipe: str
  model_overrides: tuple[tuple[str, Any], ...] = ()
  # Other `--config.<key>` overrides (dotted keys), after the recipe's.
  settings: tuple[tuple[str, Any], ...] = ()
  # Rows that take hours on a CPU run only where an accelerator is present.
  needs_accelerator: bool = False

  @property
  def config_arg(self) -> str:
    return f'configs/{self.model}.py:{self.preset},{self.variant}'

  @property
  def overrides(self) -> dict[str, Any]:
    """Every `--config.<key>=value` of the row (recipe, model knobs, then
    settings)."""
    return {**RECIPES[self.recipe],
            **{f'model.{k}': v for k, v in self.model_overrides},
            **dict(self.settings)}

  @property
  def run_id(self) -> str:
    """The folder of the row's runs: rows of equal commands share it."""
    return f'{self.preset}/{self.name}'

  def command(self, seed: int, workdir: str,
              steps: int | None = None) -> list[str]:
    """The `python -m f2s.main` argv of one run (`steps` shortens it)."""
    overrides = {**self.overrides, 'seed': seed}
    if steps is not None:
      overrides.update({'train.num_steps': steps, 'eval.every_steps': steps,
                        'checkpoint.every_steps': min(
                            steps, overrides['checkpoint.every_steps'])})
    return (['python', '-m', 'f2s.main', f'--config={self.config_arg}']
            + [f'--config.{k}={_flag_value(v)}' for k, v in overrides.items()]
            + [f'--workdir={workdir}'])


def _flag_value(value: Any) -> str:
  if isinstance(value, bool):
    return str(value).lower()
  return str(value)


def _casq_gan_plain_ssim(preset: str) -> Row:
  """casq_gan with plain blocks (one conv per stage) and an SSIM loss term
  beside BCE."""
  return Row('casq_gan_plain_ssim', 'casq', 'gan', preset, 'f2s',
             (('block', 'plain'),), settings=(('loss.terms.ssim', 1.0),))


def _casq_gan_plain_fsim(preset: str) -> Row:
  """casq_gan_plain_ssim with an FSIM loss term too: the sharp-sketch recipe."""
  row = _casq_gan_plain_ssim(preset)
  return dataclasses.replace(row, name='casq_gan_plain_fsim',
                             settings=row.settings + (('loss.terms.fsim', 1.0),))


def _casq_gan_drawn(preset: str, name: str = 'casq_gan_drawn',
                    extra: Mapping[str, Any] | None = None) -> Row:
  """The sharp-sketch recipe (config_lib.RECIPES['drawn']: plain blocks,
  SSIM, FSIM x2, VGG16 perceptual and style terms, the photo's lighting and
  camera varied) with the `extra` settings (dotted keys)."""
  settings = {**config_lib.RECIPES['drawn'], **(extra or {})}
  return Row(name, 'casq', 'gan', preset, 'f2s',
             settings=tuple(settings.items()))


# drawn_cast's change to drawn, which the rows after it build on, and the
# face exposure that the exposed recipe adds to it.
_CAST = {'data.photometric.cast_shadow': 0.6}
_EXPOSED = config_lib.RECIPES['exposed']
# The balanced recipe's row (_600_vgg5 with the light balance), which the
# rows after it change one knob of.
_BALANCED = {**_EXPOSED, 'train.num_steps': 600, 'eval.every_steps': 600,
             'loss.perceptual_layers': 5, 'model.face_light_balance': True}


def _casq_unet_ssim3_grey(preset: str) -> Row:
  """casq_gan_plain_ssim's network without its discriminator (which adds
  nothing measurable in 300 steps), the SSIM term at weight 3 and one grey
  output channel repeated to RGB (the CASQ protocol's sketches are grey)."""
  row = _casq_gan_plain_ssim(preset)
  return dataclasses.replace(
      row, name='casq_unet_ssim3_grey',
      model_overrides=row.model_overrides + (('grey_output', True),),
      settings=(('gan.weight', 0.0), ('loss.terms.ssim', 3.0)))


def _study_rows() -> tuple[Row, ...]:
  rows = []
  for model in ('dae', 'vae', 'casq'):
    rows.append(Row(f'{model}_paper_study', model, 'paper', 'cuhk_casq',
                    'study', needs_accelerator=model == 'casq'))
  for model in ('dae', 'vae', 'casq'):
    rows.append(Row(f'{model}_paper', model, 'paper', 'cuhk_casq', 'f2s'))
  for model in ('dae', 'vae'):
    rows.append(Row(f'{model}_paper_long', model, 'paper', 'cuhk_casq',
                    'f2s_long'))
  for model, variant in (('dae', 'conv'), ('vae', 'conv'),
                         ('casq', 'default')):
    rows.append(Row(f'{model}_{variant}', model, variant, 'cuhk_casq', 'f2s'))
  # The standard table's best CASQ (the shipped model's recipe).
  rows.append(_casq_gan_plain_ssim('cuhk_casq'))
  # Tuned for this protocol's SSIM (the study's metric).
  unet = _casq_unet_ssim3_grey('cuhk_casq')
  rows.append(unet)
  # Without the horizontal flip: the sketches' scanner wedges are mostly on
  # the right edge, and the flip costs MSE in the frame (README).
  rows.append(dataclasses.replace(
      unet, name='casq_unet_ssim3_grey_noflip',
      settings=unet.settings + (('data.flip', False),)))
  return tuple(rows)


TABLES: Mapping[str, tuple[Row, ...]] = {
    'study': _study_rows(),
    'standard': tuple(
        Row(f'{model}_{variant}', model, variant, 'cuhk_standard', 'f2s')
        for model, variant in (('dae', 'conv'), ('vae', 'conv'),
                               ('casq', 'default'), ('casq', 'gan'))) + (
        # What the GAN variant's two changes each buy: its network (skips)
        # without the discriminator.
        Row('casq_gan_no_adversarial', 'casq', 'gan', 'cuhk_standard', 'f2s',
            settings=(('gan.weight', 0.0),)),
        _casq_gan_plain_ssim('cuhk_standard'),
        # casq_gan_cuhk's recipe (shipped, the default before the next).
        _casq_gan_plain_fsim('cuhk_standard'),
        # The default shipped model's (casq_drawn_cuhk) and single-seed
        # variants of it (README "Towards drawn sketches").
        _casq_gan_drawn('cuhk_standard'),
        _casq_gan_drawn('cuhk_standard', 'casq_gan_drawn_grey',
                        {'model.grey_input': True}),
        _casq_gan_drawn('cuhk_standard', 'casq_gan_drawn_plain_disc',
                        {'gan.spectral_norm': False}),
        _casq_gan_drawn('cuhk_standard', 'casq_gan_drawn_plain_disc_vgg5',
                        {'gan.spectral_norm': False,
                         'loss.perceptual_layers': 5}),
        _casq_gan_drawn('cuhk_standard', 'casq_gan_drawn_600',
                        {'train.num_steps': 600, 'eval.every_steps': 600}),
        _casq_gan_drawn('cuhk_standard', 'casq_gan_drawn_1200',
                        {'train.num_steps': 1200, 'eval.every_steps': 1200}),
        # LPIPS-VGG's five taps in the feature terms at 600 steps: the two
        # changes that each brought CUHK LPIPS-VGG nearest 0.30.
        _casq_gan_drawn('cuhk_standard', 'casq_gan_drawn_600_vgg5',
                        {'train.num_steps': 600, 'eval.every_steps': 600,
                         'loss.perceptual_layers': 5}),
        # Does a discriminator that learns faster, or counts more, draw?
        _casq_gan_drawn('cuhk_standard', 'casq_gan_drawn_dlr',
                        {'gan.learning_rate': 1e-3}),
        _casq_gan_drawn('cuhk_standard', 'casq_gan_drawn_adv03',
                        {'gan.weight': 0.3}),
        # FERET photos' cast shadows, drawn as dark bands: a cast-shadow
        # augmentation (f2s.data.photometric).
        _casq_gan_drawn('cuhk_standard', 'casq_gan_drawn_cast', _CAST),
        # LPIPS-Alex rewards the artist's paper and pencil texture (README,
        # "Beyond CUHK"): does a 5x style (Gram) term draw it?
        _casq_gan_drawn('cuhk_standard', 'casq_gan_drawn_cast_style5',
                        {**_CAST, 'loss.terms.style': 5.0}),
        _casq_gan_drawn('cuhk_standard', 'casq_gan_drawn_cast_style20',
                        {**_CAST, 'loss.terms.style': 20.0}),
        # FERET's blond hair and pale faces drawn light: a gamma varying
        # across the photo (f2s.data.photometric.local_gamma).
        _casq_gan_drawn('cuhk_standard', 'casq_gan_drawn_cast_lgamma',
                        {**_CAST, 'data.photometric.local_gamma': 1.2}),
        # FERET's faces are darker than CUHK's (the face's mean luma 0.39
        # against 0.75) and drawn as dark smudges: every photo scaled to
        # CUHK's face exposure, in training and sketching alike
        # (f2s.models.exposure).
        # (config_lib.RECIPES['exposed']: the shipped casq_exposed_cuhk's.)
        _casq_gan_drawn('cuhk_standard', 'casq_gan_drawn_cast_exposure',
                        _EXPOSED),
        # That with _600_vgg5's two changes (config_lib.RECIPES
        # ['exposed_vgg5'] for 600 steps: the shipped
        # casq_exposed_vgg5_cuhk's).
        _casq_gan_drawn('cuhk_standard',
                        'casq_gan_drawn_cast_exposure_600_vgg5',
                        {**_EXPOSED,
                         'train.num_steps': 600, 'eval.every_steps': 600,
                         'loss.perceptual_layers': 5}),
        # That with _style5's style term, which cut drawn_cast's CUFSF
        # LPIPS-Alex by 0.005 (for 0.004 of CUFSF FSIM).
        _casq_gan_drawn('cuhk_standard',
                        'casq_gan_drawn_cast_exposure_600_vgg5_style5',
                        {**_EXPOSED,
                         'train.num_steps': 600, 'eval.every_steps': 600,
                         'loss.perceptual_layers': 5,
                         'loss.terms.style': 5.0}),
        # A face lit from one side was still drawn darker on that side: its
        # left-right light slope divided out (model.face_light_balance;
        # config_lib.RECIPES['balanced']: the shipped casq_balanced_cuhk's).
        _casq_gan_drawn('cuhk_standard',
                        'casq_gan_drawn_cast_exposure_600_vgg5_balance',
                        _BALANCED),
        # That with pix2pixHD's feature matching: the discriminator's
        # activations on the real pair as targets, weighted 10x the
        # adversarial term as in pix2pixHD (where the GAN term has weight 1).
        _casq_gan_drawn('cuhk_standard',
                        'casq_gan_drawn_cast_exposure_600_vgg5_balance_fm',
                        {**_BALANCED, 'gan.feature_matching': 1.0}),
        # That with Mathieu et al.'s gradient difference term instead, which
        # asks for edges as steep as the artist's (the jaw line, CUFSF
        # FSIM's gradient part): at weight 5, 0.23 of the loss's 2.15 at
        # step 250 (seed 0's metrics.jsonl).
        _casq_gan_drawn('cuhk_standard',
                        'casq_gan_drawn_cast_exposure_600_vgg5_balance_grad',
                        {**_BALANCED, 'loss.terms.gradient': 5.0}),
        # _fm's term was under 1% of the loss: the same at 10x its weight.
        _casq_gan_drawn('cuhk_standard',
                        'casq_gan_drawn_cast_exposure_600_vgg5_balance_fm10',
                        {**_BALANCED, 'gan.feature_matching': 10.0}),
        # Its discriminator judges ~46-pixel patches: strokes, not the jaw
        # line. pix2pixHD's multi-scale stack adds two on the pair halved
        # and quartered (~92- and ~184-pixel patches).
        _casq_gan_drawn('cuhk_standard',
                        'casq_gan_drawn_cast_exposure_600_vgg5_balance_ms3',
                        {**_BALANCED, 'gan.scales': 3}),
        # CUFSF's aligned faces are framed unlike CUHK's (scaling every
        # prediction by 0.97 about the centre lifts its FSIM by 0.005): the
        # pair's geometric jitter widened from +-8 px and +-5% to +-16 px
        # and +-12%.
        _casq_gan_drawn('cuhk_standard',
                        'casq_gan_drawn_cast_exposure_600_vgg5_balance_geo',
                        {**_BALANCED, 'data.max_shift': 16,
                         'data.max_scale': 0.12}),
        # The style term asks for the artist's texture mix everywhere: on
        # CUFSF the model grains the skin where the artist shades it
        # smoothly. Gram matrices per cell of a 4x4 grid over each tap ask
        # for each part's own texture; the weight cut to 0.2 because the
        # term is ~5.6x larger so (0.64 against 0.12 for _balance seed 0's
        # CUHK test sketches).
        _casq_gan_drawn('cuhk_standard',
                        'casq_gan_drawn_cast_exposure_600_vgg5_balance_sg4',
                        {**_BALANCED, 'loss.style_grid': 4,
                         'loss.terms.style': 0.2}),
        # How far training harder on FSIM carries to CUFSF, whose FSIM the
        # recipe leaves 0.026 short of its target: the FSIM term x3
        # instead of x2 (in the README's one-seed 300-step plain-block runs
        # under "Sharp sketches", x3 instead of x1 raised CUHK FSIM from
        # 0.759 to 0.768).
        _casq_gan_drawn('cuhk_standard',
                        'casq_gan_drawn_cast_exposure_600_vgg5_balance_fsim3',
                        {**_BALANCED, 'loss.terms.fsim': 3.0}),
        # Its discriminator barely learns (hinge 1.79 of 2 at step 600).
        # Mescheder et al.'s R1 instead of the spectral norm, with 5x its
        # learning rate: a discriminator free to learn faster, its
        # gradient on the real pairs held down instead. At gamma 10 (their
        # CelebA-HQ value; losses.r1_penalty's per-patch scale) it was
        # flattened (hinge 1.996 at steps 100 and 150; stopped): gamma 1.
        _casq_gan_drawn('cuhk_standard',
                        'casq_gan_drawn_cast_exposure_600_vgg5_balance_r1',
                        {**_BALANCED, 'gan.spectral_norm': False,
                         'gan.learning_rate': 1e-3, 'gan.r1': 1.0}),),
    'ablation': (
        Row('casq_paper', 'casq', 'paper', 'cuhk_casq', 'f2s'),
        Row('casq_paper_no_attention', 'casq', 'paper', 'cuhk_casq', 'f2s',
            (('attention', False),)),
        Row('casq_paper_no_quantizer', 'casq', 'paper', 'cuhk_casq', 'f2s',
            (('quantizer', 'none'),)),
        Row('casq_paper_plain_vq', 'casq', 'paper', 'cuhk_casq', 'f2s',
            (('quantizer', 'plain'),)),
        Row('dae_conv', 'dae', 'conv', 'cuhk_casq', 'f2s'),
    ),
}
TABLE_DESCRIPTIONS = {
    'study': ('The CASQ study\'s protocol: CUHK pooled, 150 train / 38 test, '
              'RGB 200x200 centre crop; SSIM and FSIM per image, averaged; MSE '
              'over the whole test array. casq_gan_plain_ssim: CASQ with '
              'U-Net skips and plain blocks against a PatchGAN '
              'discriminator, SSIM loss term beside BCE (the standard '
              'table\'s best SSIM row); casq_unet_ssim3_grey: the same '
              'network without the discriminator, the SSIM term at weight 3 '
              'and one grey output channel repeated to RGB '
              '(`model.grey_output`); casq_unet_ssim3_grey_noflip: the same '
              'without the horizontal-flip augmentation (`data.flip`).'),
    'standard': ('The standard protocol: CUHK 88 train / 100 test, greyscale '
                 '250x200. casq_gan: casq_default with U-Net skips, trained '
                 'against a PatchGAN discriminator from step 100; '
                 'casq_gan_no_adversarial: the same network without it; '
                 'casq_gan_plain_ssim: casq_gan with plain blocks (one conv '
                 'per stage) and an SSIM loss term (weight 1) beside BCE; '
                 'casq_gan_plain_fsim: the same with an FSIM loss term '
                 '(1 - FSIM, weight 1) too; casq_gan_drawn: that with FSIM '
                 'at weight 2, VGG16 perceptual (0.3) and style (1) terms '
                 'and the photo\'s lighting and camera varied '
                 '(config_lib.RECIPES[\'drawn\']; the shipped '
                 'casq_drawn_cuhk is its seed 0); _grey: the photo\'s luma '
                 'alone (model.grey_input); _plain_disc: a discriminator '
                 'without spectral norm; _vgg5: all five VGG16 taps in the '
                 'feature terms; _600, _1200: 600 or 1200 steps instead of '
                 '300; _dlr: the discriminator\'s learning rate 1e-3 instead '
                 'of 2e-4; _adv03: the adversarial term\'s weight 0.3 '
                 'instead of 0.1; _cast: a cast shadow (a soft blob '
                 'darkening the photo by up to 0.6) added to the '
                 'photometric augmentation; _style5, _style20: '
                 'that with the style term at weight 5 or 20; _lgamma: that '
                 'with a gamma varying smoothly across the photo (3x3 '
                 'log-exponents up to 1.2); _cast_exposure: _cast with each '
                 'photo scaled so that its face\'s mean luma is 0.75, '
                 'CUHK\'s (model.face_exposure); _600_vgg5: drawn for 600 '
                 'steps with all five VGG16 taps; _cast_exposure_600_vgg5: '
                 'both; _style5, _balance after it: that with the style term '
                 'at weight 5, or with the photo\'s left-right light slope '
                 '(log luma over the face) divided out first '
                 '(model.face_light_balance); _fm, _fm10, _grad after that: '
                 'with pix2pixHD\'s feature matching (gan.feature_matching '
                 '1.0 or 10.0), or with the gradient difference term (L1 '
                 'between the sketches\' pixel differences, '
                 'loss.terms.gradient 5.0); _ms3 after _balance: with '
                 'pix2pixHD\'s multi-scale discriminator, three PatchGANs '
                 'on the pair at full, half and quarter size '
                 '(gan.scales 3); _geo, _sg4 after _balance: with the '
                 'pair\'s geometric jitter widened to +-16 px and +-12% '
                 '(data.max_shift, data.max_scale), or with the style '
                 'term\'s Gram matrices per cell of a 4x4 grid over each '
                 'VGG16 tap, at weight 0.2 (loss.style_grid); _fsim3 '
                 'after _balance: with the FSIM term at weight 3 instead '
                 'of 2; _r1 after _balance: its discriminator without '
                 'spectral norm, at learning rate 1e-3, with the R1 '
                 'penalty at gamma 1 (gan.r1).'),
    'ablation': ('CASQ\'s parts on the study protocol at one recipe: '
                 'attention, the quantizer (none = a plain 1x1 bottleneck), '
                 'EMA vs plain VQ, and the conv DAE.'),
}


# The generalisation table scores the standard table's runs (CUHK-trained)
# on CUFSF, beside baselines and the shipped models (f2s.generalisation).
GENERALISATION = 'generalisation'
GENERALISATION_SOURCE = 'standard'
GENERALISATION_DATASET = 'cufsf_face_sketch'
GENERALISATION_DESCRIPTION = (
    'Trained on CUHK (the standard table\'s runs), scored on CUFSF\'s FERET '
    'pairs, which no run sees: photo and artist sketch both aligned to the '
    'CUHK frame by f2s.align, scored as the standard protocol scores '
    '(250x200 grey). Baselines on the same crops: grey_photo, the photo '
    'itself in grey; mean_sketch, the mean of the aligned artist sketches '
    'for every photo. Shipped models: as f2s.sketch draws with them.')


def shipped_recipe_config(recipe: str, arg: str | None,
                          steps: int = F2S_STEPS) -> ml_collections.ConfigDict:
  """casq/gan under preset `arg` with config_lib.RECIPES[recipe] and the
  standard table's schedule (RECIPES['f2s'], for `steps` steps; :tiny keeps
  its seconds-long one): a shipped model's config file in one call."""
  config = config_lib.apply_recipe(
      config_lib.model_config('casq', 'gan', arg), recipe)
  if config_lib.parse_arg(arg)[0] != 'tiny':
    config_lib.set_knobs(config, {**RECIPES['f2s'], 'train.num_steps': steps,
                                  'eval.every_steps': steps})
  return config


def find_row(table: str, name: str) -> Row:
  """The row `name` of `table`; ValueError naming what exists otherwise."""
  if table not in TABLES:
    raise ValueError(f'unknown table {table!r}: expected one of '
                     f'{sorted(TABLES)}')
  for row in TABLES[table]:
    if row.name == name:
      return row
  raise ValueError(f'unknown row {name!r} of table {table!r}: expected one '
                   f'of {[r.name for r in TABLES[table]]}')
