"""The example regularizer passes the plugin contract (tests/test_plugins.py also runs it end to end)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasbench_harness.errors import ConfigError
from nasbench_harness.plugins import load_regularizer
from nasbench_harness.testing import check_regularizer

HERE = Path(__file__).parent
REF = f"{HERE / 'skip_penalty.py'}:SkipPenalty"


def test_contract() -> None:
    cls = load_regularizer(REF)
    check_regularizer(cls)
    check_regularizer(cls, params={"ops": ["skip_connect", "avg_pool_3x3"]})


def test_bad_params_are_config_errors() -> None:
    cls = load_regularizer(REF)
    with pytest.raises(ConfigError, match="ops"):
        cls(1.0, {"ops": ["conv_9x9"]})
    with pytest.raises(ConfigError, match="unknown option 'strength'"):
        cls(1.0, {"strength": 2})
