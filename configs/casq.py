"""CASQ (self-attentive VQ autoencoder), the study's sizes.

--config=configs/casq.py:synthetic | :cuhk_casq | :cuhk_standard | :tiny
(append ,default for the wider residual variant: configs/casq.py:cuhk_casq,default)
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
  config = default.model_config('casq', 'paper', arg)
  config.train.learning_rate = 1e-3
  if arg == 'tiny':  # the tiny sizes of the paper variant
    config.model.update(features=(8, 8, 8), decoder_features=(8, 8, 8),
                        embedding_dim=8, num_embeddings=16, attention=False)
  return config
