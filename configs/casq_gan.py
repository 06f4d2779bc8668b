"""CASQ against a PatchGAN discriminator, with U-Net skips: sharp sketches.

--config=configs/casq_gan.py:cuhk_standard | :cuhk_casq | :synthetic | :tiny
(the `gan` variant of configs/casq.py; `--config.gan.weight=0` trains the same
network without the discriminator, `--config.model.skip_connections=false`
without the skips)
"""
import ml_collections

from f2s import config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return config_lib.model_config('casq', 'gan', arg)
