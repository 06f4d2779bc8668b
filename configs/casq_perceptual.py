"""CASQ against a PatchGAN discriminator (the shipped model's recipe: plain
blocks, BCE + SSIM + FSIM) plus VGG16 perceptual and style terms.

--config=configs/casq_perceptual.py:cuhk_standard | :cuhk_casq | :synthetic
| :tiny; append ,photometric for the recipe that also varies the photo's
lighting and camera (config_lib.RECIPES['perceptual_photometric']). The
single-seed runs behind both (300 steps, as the shipped model):
experiments/results/sharp_sketch_notes.md.
"""
import ml_collections

from f2s import config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  arg, _, extra = (arg or '').partition(',')
  if extra not in ('', 'photometric'):
    raise ValueError(f'configs/casq_perceptual.py: unknown suffix {extra!r}; '
                     'expected PRESET or PRESET,photometric')
  recipe = 'perceptual_photometric' if extra else 'perceptual'
  return config_lib.apply_recipe(
      config_lib.model_config('casq', 'gan', arg or None), recipe)
