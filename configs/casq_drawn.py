"""The sharp-sketch recipe of the shipped casq_drawn_cuhk, in one command:

  python -m f2s.main --config=configs/casq_drawn.py:cuhk_standard \\
      --workdir=runs/casq_drawn

CASQ's `gan` variant with plain blocks against the PatchGAN discriminator;
BCE + SSIM + FSIM x2 + VGG16 perceptual (0.3) and style (1.0) terms; the
photo's lighting and camera varied at training time
(config_lib.RECIPES['drawn']); 300 steps of 8, the schedule of every
standard-table row (f2s.tables.RECIPES['f2s']), except under :tiny, which
keeps its seconds-long one. Other presets: :cuhk_casq | :synthetic | :tiny.
"""
import ml_collections

from f2s import tables


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return tables.shipped_recipe_config('drawn', arg)
