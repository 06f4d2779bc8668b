"""CASQ against a PatchGAN discriminator (the shipped model's recipe: plain
blocks, BCE + SSIM + FSIM) plus VGG16 perceptual and style terms.

--config=configs/casq_perceptual.py:cuhk_standard | :cuhk_casq | :synthetic
| :tiny; the single-seed runs behind it (300 steps, as the shipped model):
experiments/results/sharp_sketch_notes.md.
"""
import ml_collections

from f2s import config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return config_lib.apply_recipe(config_lib.model_config('casq', 'gan', arg),
                                 'perceptual')
