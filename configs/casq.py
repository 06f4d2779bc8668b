"""CASQ (self-attentive VQ autoencoder), the study's sizes.

--config=configs/casq.py:synthetic | :cuhk_casq | :cuhk_standard | :tiny
(append ,default for the wider residual variant: configs/casq.py:cuhk_casq,default)
"""
import ml_collections

from f2s import config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return config_lib.model_config('casq', 'paper', arg)
