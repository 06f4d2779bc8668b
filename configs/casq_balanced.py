"""The recipe of the standard table's
casq_gan_drawn_cast_exposure_600_vgg5_balance, in one command:

  python -m f2s.main --config=configs/casq_balanced.py:cuhk_standard \\
      --workdir=runs/casq_balanced

configs/casq_exposed_vgg5.py's recipe with the photo's left-right light
slope (log luma across the face) divided out before the face exposure
(`model.face_light_balance`, f2s.models.exposure), trained for 600 steps of
8, except under :tiny (config_lib.RECIPES['balanced']). Other presets:
:cuhk_casq | :synthetic | :tiny.
"""
import ml_collections

from f2s import tables

STEPS = 600


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return tables.shipped_recipe_config('balanced', arg, steps=STEPS)
