"""Results-table rows: every row's command names real config keys and
validates; rows are looked up by name with clear errors."""
import os

import pytest

from f2s import config_lib, tables
from f2s.training.validate import validate_config

ROOT = os.path.join(os.path.dirname(__file__), '..')


def _row_config(row: tables.Row, seed: int = 0):
  config = config_lib.load(os.path.join(ROOT, row.config_arg))
  for key, value in {**row.overrides, 'seed': seed}.items():
    node = config
    *path, leaf = key.split('.')
    for part in path:
      node = node[part]
    assert leaf in node, f'{row.name}: --config.{key} is not a config key'
    node[leaf] = value
  return config


@pytest.mark.parametrize('table', sorted(tables.TABLES))
def test_every_row_is_a_valid_config(table):
  for row in tables.TABLES[table]:
    config = _row_config(row)
    validate_config(config, device_count=1)
    assert (config.model.name, config.model.variant) == (row.model,
                                                         row.variant)
    assert config.data.protocol == ('standard' if table == 'standard'
                                    else 'casq')


def test_command_is_one_f2s_main_call():
  row = tables.find_row('ablation', 'casq_paper_no_attention')
  argv = row.command(2, 'runs/x', steps=7)
  assert argv[:4] == ['python', '-m', 'f2s.main',
                      '--config=configs/casq.py:cuhk_casq,paper']
  assert '--config.model.attention=false' in argv
  assert '--config.seed=2' in argv and argv[-1] == '--workdir=runs/x'
  assert '--config.train.num_steps=7' in argv
  assert '--config.checkpoint.every_steps=7' in argv


def test_shared_rows_share_their_runs():
  study = tables.find_row('study', 'casq_paper')
  ablation = tables.find_row('ablation', 'casq_paper')
  assert study.run_id == ablation.run_id
  assert study.command(0, 'w') == ablation.command(0, 'w')


def test_unknown_table_or_row_is_named():
  with pytest.raises(ValueError, match="'nope'.*ablation"):
    tables.find_row('nope', 'casq_paper')
  with pytest.raises(ValueError, match="'nope'.*casq_paper"):
    tables.find_row('study', 'nope')
