"""The recipe of the shipped casq_exposed_vgg5_cuhk (f2s.sketch's default), in
one command:

  python -m f2s.main --config=configs/casq_exposed_vgg5.py:cuhk_standard \\
      --workdir=runs/casq_exposed_vgg5

configs/casq_exposed.py's recipe with all five VGG16 taps (relu1_2 to
relu5_3, LPIPS-VGG's) in the perceptual and style terms instead of three,
trained for 600 steps of 8 instead of 300, except under :tiny
(config_lib.RECIPES['exposed_vgg5']). Other presets: :cuhk_casq |
:synthetic | :tiny.
"""
import ml_collections

from f2s import tables

STEPS = 600


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return tables.shipped_recipe_config('exposed_vgg5', arg, steps=STEPS)
