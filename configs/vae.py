"""Convolutional variational autoencoder baseline (KL weighted by loss.kl_weight).

--config=configs/vae.py:synthetic | :cuhk_casq | :cuhk_standard | :tiny
(append ,paper for the study's dense sizes: configs/vae.py:cuhk_casq,paper)
"""
import ml_collections

from f2s import config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return config_lib.model_config('vae', 'conv', arg)
