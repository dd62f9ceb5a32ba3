"""The re-cut's promises: one regularizer family with schedulable weights, one list of spaces that
every consumer reads, adapters that answer what methods used to ask by space name, and the
deprecated plugin module still importable."""

from __future__ import annotations

import importlib
import sys
import warnings
from typing import Any

import pytest
import torch

from nasbench_harness.config import build_config
from nasbench_harness.errors import ConfigError
from nasbench_harness.methods.components.regularizers import BetaDecay, Entropy, as_schedule, beta_decay_loss
from nasbench_harness.methods.components.samplers import sampled_groups
from nasbench_harness.methods.components.schedules import LinearSchedule
from nasbench_harness.methods.engine.adapters import get_search_space
from nasbench_harness.registry import build_method, make_method
from nasbench_harness.spaces.catalog import SPACE_NAMES, SPACES, get_space_info
from nasbench_harness.testing import check_regularizer, tiny_state


@pytest.mark.parametrize(
    ("given", "start", "end"),
    [(0.5, 0.5, 0.5), ("2", 2.0, 2.0), ("0:50", 0.0, 50.0), ({"start": 1, "end": 0}, 1.0, 0.0)],
)
def test_a_regularizer_weight_is_a_constant_or_a_ramp(given: Any, start: float, end: float) -> None:
    assert as_schedule(given) == LinearSchedule(start, end)


@pytest.mark.parametrize("bad", ["a:b", "fast", {"start": 1}, {"start": 0, "x": 2}])
def test_a_bad_weight_names_the_accepted_forms(bad: Any) -> None:
    with pytest.raises(ConfigError, match=r"START:END|start: X"):
        as_schedule(bad)


def test_a_ramped_weight_follows_the_epochs() -> None:
    state = tiny_state("nb201")
    reg = BetaDecay("0:50")
    expected = float(beta_decay_loss(state.alphas.detach(), state.space.group_sizes))
    for epoch, weight in ((1, 0.0), (2, 25.0), (3, 50.0)):
        state.epoch, state.epochs = epoch, 3
        extra = reg.extra_loss(state, "arch", state.mixing())
        if weight == 0.0:
            assert extra is None
        else:
            assert float(extra.detach()) == pytest.approx(weight * expected, rel=1e-6)
        assert reg.state_columns()["reg_beta_decay_weight"] == weight
    assert reg.extra_loss(state, "weights", state.mixing()) is None  # an arch penalty only


def test_the_plugin_spec_takes_a_ramp_and_the_method_gets_it() -> None:
    config = build_config("cpu", {"plugins": [{"ref": "entropy", "weight": "0:2"}]})
    assert config.plugins[0].weight.start == 0.0 and config.plugins[0].weight.end == 2.0
    method, provenance = build_method(config)
    (reg,) = [c for c in method.components if isinstance(c, Entropy)]
    assert reg.schedule == LinearSchedule(0.0, 2.0) and provenance[0]["weight"] == {"start": 0.0, "end": 2.0}
    for bad in ("nan", "-1", "inf"):
        with pytest.raises(ConfigError):
            build_config("cpu", {"plugins": [{"ref": "entropy", "weight": float(bad)}]})


@pytest.mark.parametrize("name", ["entropy", "beta-decay", "zero-one"])
def test_every_builtin_regularizer_meets_the_plugin_contract(name: str) -> None:
    from nasbench_harness.plugins import BUILTIN_REGULARIZERS

    check_regularizer(BUILTIN_REGULARIZERS[name], spaces=["nb201", "nb1shot1-2"])


def test_the_methods_regularizers_are_the_plugin_family() -> None:
    from nasbench_harness.plugins import Regularizer

    for name, kind in (("beta-darts", "BetaDecay"), ("fair-darts", "ZeroOneLoss")):
        (reg,) = [c for c in make_method(name, {}).components if isinstance(c, Regularizer)]
        assert type(reg).__name__ == kind


def test_the_old_plugin_module_still_works_and_says_it_moved() -> None:
    sys.modules.pop("nasbench_harness.methods.plugins", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = importlib.import_module("nasbench_harness.methods.plugins")
    moved = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert moved and "import the plugin API from nasbench_harness.plugins" in str(moved[0].message)
    from nasbench_harness import plugins

    assert old.Regularizer is plugins.Regularizer and old.BetaDecayPenalty is plugins.BetaDecay
    assert old.ALL_SPACES == SPACE_NAMES


def test_one_list_of_spaces_feeds_config_suites_and_adapters() -> None:
    from nasbench_harness.execution.suite import SPACES as SUITE_SPACES

    assert SUITE_SPACES == SPACE_NAMES == ("nb201", "nb1shot1-1", "nb1shot1-2", "nb1shot1-3")
    for name in SPACE_NAMES:
        assert build_config("cpu", {"space": name}).space == name
        assert get_search_space(name).name == name
    for where in (lambda: build_config("cpu", {"space": "nb301"}), lambda: get_space_info("nb301")):
        with pytest.raises(ConfigError, match="nb201, nb1shot1-1, nb1shot1-2, nb1shot1-3"):
            where()
    assert get_space_info("nb1shot1-3").number == 3 and SPACES["nb201"].benchmark == "nb201"


@pytest.mark.parametrize("name", SPACE_NAMES)
def test_adapters_say_which_groups_choose_ops_and_build_partial_channel_nets(name: str) -> None:
    space = get_search_space(name)
    assert len(space.op_groups) == len(space.group_sizes)
    if name == "nb201":
        assert all(space.op_groups)
    else:  # NB-1Shot1: one op group per choice block; the output and input groups choose topology
        assert sum(space.op_groups) == space.layout.blocks and not all(space.op_groups)
    assert sampled_groups(space, only_ops=True) == space.op_groups
    model = build_config("cpu", {"space": name, "model": {"channels": 8}}).model
    net = space.build_net(model, 10, partial_channels=4)
    assert getattr(net, "partial_channels", None) == 4
    x = torch.randn(2, 3, 16, 16)
    assert net(x, space.softmax(space.init_alphas(torch.Generator().manual_seed(0), 1e-3))).shape == (2, 10)
