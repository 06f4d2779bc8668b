"""The recipe of the shipped casq_exposed_cuhk (f2s.sketch's default), in one
command:

  python -m f2s.main --config=configs/casq_exposed.py:cuhk_standard \\
      --workdir=runs/casq_exposed

configs/casq_drawn.py's recipe with a cast-shadow augmentation (a soft blob
darkening the photo by up to 0.6) and each photo scaled so that its face's
mean luma is CUHK's 0.75 (`model.face_exposure`, f2s.models.exposure), at
training and at sketching time (config_lib.RECIPES['exposed']); 300 steps
of 8, except under :tiny. Other presets: :cuhk_casq | :synthetic | :tiny.
"""
import ml_collections

from f2s import tables


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return tables.shipped_recipe_config('exposed', arg)
