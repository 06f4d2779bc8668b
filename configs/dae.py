"""Deep autoencoder baseline, convolutional variant.

--config=configs/dae.py:synthetic | :cuhk_casq | :cuhk_standard | :tiny
(append ,paper for the study's dense sizes: configs/dae.py:cuhk_casq,paper)
"""
import importlib.util
import os

import ml_collections


def _default():
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'default.py')
  spec = importlib.util.spec_from_file_location('f2s_configs_default', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  default = _default()
  config = default.model_config('dae', 'conv', arg)
  if arg == 'tiny':  # the tiny sizes of the conv variant
    config.model.update(features=(8, 8, 8), latent_channels=4, num_groups=4)
  return config
