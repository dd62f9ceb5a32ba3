"""The plugin API: loading regularizers from files, modules, built-ins and entry points, with clear
errors; the contract kit on every built-in; a user regularizer end to end through `nbh search`."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from test_cli import nbh

from nasbench_harness import plugins, registry
from nasbench_harness.errors import ConfigError
from nasbench_harness.plugins import BUILTIN_REGULARIZERS, Regularizer, load_regularizer
from nasbench_harness.testing import ContractError, check_regularizer, tiny_state
from nasbench_harness.tracking import read_trajectory

EXAMPLE = Path(__file__).parents[1] / "examples" / "skip_penalty.py"


@pytest.mark.parametrize("name", sorted(BUILTIN_REGULARIZERS))
def test_builtin_regularizers_keep_the_contract(name: str) -> None:
    check_regularizer(BUILTIN_REGULARIZERS[name])


def test_entropy_value() -> None:
    state = tiny_state("nb201")
    reg = BUILTIN_REGULARIZERS["entropy"]()
    p = torch.softmax(state.alphas.detach(), dim=-1)
    expected = -(p * p.log()).sum()
    assert float(reg.penalty(state, state.mixing(), "arch").detach()) == pytest.approx(float(expected), rel=1e-5)


def _write(tmp_path: Path, body: str) -> Path:
    file = tmp_path / "my_reg.py"
    file.write_text(textwrap.dedent(body))
    return file


def test_load_from_file_module_and_builtin(tmp_path: Path) -> None:
    file = _write(
        tmp_path,
        """
        from nasbench_harness.plugins import Regularizer

        class L1(Regularizer):
            def penalty(self, state, weights, phase):
                return state.alphas.abs().sum()
        """,
    )
    cls = load_regularizer(f"{file}:L1")
    assert issubclass(cls, Regularizer) and cls.__name__ == "L1"
    assert load_regularizer("nasbench_harness.plugins:Entropy") is plugins.Entropy
    assert load_regularizer("entropy") is plugins.Entropy
    check_regularizer(cls, spaces=["nb201", "nb1shot1-2"])


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("missing_dir/nothing.py:Reg", "does not exist"),
        ("nasbench_harness.no_such_module:Reg", "cannot import plugin module"),
        ("nasbench_harness.plugins:Nope", "has no 'Nope'.*Entropy"),
        ("nasbench_harness.methods.zoo.darts:FirstOrderStep", "is not a Regularizer class"),
        ("nasbench_harness.plugins:Entropy.penalty", "has no 'Entropy.penalty'"),
        ("entropyy", "unknown regularizer 'entropyy'.*entropy, beta-decay, zero-one"),
    ],
)
def test_bad_references_are_explained(ref: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_regularizer(ref)


def test_a_file_that_fails_to_import_is_explained(tmp_path: Path) -> None:
    file = _write(tmp_path, "import nothing_here_at_all\n")
    with pytest.raises(ConfigError, match=r"importing plugin file .* failed: ModuleNotFoundError"):
        load_regularizer(f"{file}:Reg")


def test_wrong_parameter_types_are_config_errors() -> None:
    cls = load_regularizer(f"{EXAMPLE}:SkipPenalty")
    with pytest.raises(ConfigError, match=r"ops.*got 3"):
        cls(1.0, {"ops": 3})


def test_entry_points_and_name_clashes(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeEntryPoint:
        def __init__(self, name: str, value: str) -> None:
            self.name, self.value, self.dist = name, value, None

        def load(self) -> Any:
            return plugins.ZeroOneLoss

    points = [FakeEntryPoint("fancy", "pkg.mod:Fancy"), FakeEntryPoint("entropy", "other.pkg:Entropy")]
    monkeypatch.setattr(registry, "entry_points", lambda group: points if group == plugins.ENTRY_POINT_GROUP else [])
    assert load_regularizer("fancy") is plugins.ZeroOneLoss
    with pytest.raises(ConfigError, match=r"both built in \(.*Entropy\) and the entry point other\.pkg:Entropy"):
        load_regularizer("entropy")


def test_the_contract_kit_catches_broken_regularizers() -> None:
    class NotScalar(Regularizer):
        def penalty(self, state, weights, phase):  # type: ignore[no-untyped-def]
            return state.alphas

    class Constant(Regularizer):
        def penalty(self, state, weights, phase):  # type: ignore[no-untyped-def]
            return torch.tensor(1.0)

    class NaN(Regularizer):
        def penalty(self, state, weights, phase):  # type: ignore[no-untyped-def]
            return state.alphas.sum() * float("nan")

    with pytest.raises(ContractError, match="0-dim"):
        check_regularizer(NotScalar, spaces=["nb201"])
    with pytest.raises(ContractError, match="does not depend on the alphas"):
        check_regularizer(Constant, spaces=["nb201"])
    with pytest.raises(ContractError, match="not finite"):
        check_regularizer(NaN, spaces=["nb201"])


def test_a_space_the_plugin_does_not_declare_is_refused() -> None:
    from nasbench_harness.config import build_config
    from nasbench_harness.registry import build_method

    config = build_config("cpu", {"space": "nb1shot1-1", "plugins": [{"ref": f"{EXAMPLE}:SkipPenalty"}]})
    with pytest.raises(ConfigError, match="cannot run on nb1shot1-1: SkipPenalty declares the spaces nb201 only"):
        build_method(config)


def test_a_user_regularizer_runs_end_to_end_from_its_file(
    tmp_path: Path, synthetic_data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_cli_search import TINY

    out_dir = tmp_path / "run"
    code, _, err = nbh(
        capsys, monkeypatch, "search", "--epochs", "2", "--out", str(out_dir), "--data-dir", str(synthetic_data_dir),
        "--regularizer", f"{EXAMPLE}:SkipPenalty", "--reg-weight", "0.5:1",
        "--reg-param", 'ops=["skip_connect"]', *TINY,
    )  # fmt: skip
    assert code == 0, err
    rows = read_trajectory(out_dir).to_pylist()
    assert len(rows) == 2 and all(0 < r["reg_skip_penalty"] < 1 for r in rows)
    assert [r["reg_skip_penalty_weight"] for r in rows] == [0.5, 1.0]  # the ramp, first to last epoch
    manifest = json.loads((out_dir / "manifest.json").read_text())
    (plugin,) = manifest["plugins"]
    assert plugin["weight"] == {"start": 0.5, "end": 1.0}
    assert plugin["file"] == str(EXAMPLE) and len(plugin["sha256"]) == 64
    code, _, err = nbh(capsys, monkeypatch, "search", "--reg-weight", "2", "--out", str(tmp_path / "x"), *TINY)
    assert code == 1 and "need --regularizer" in err


def test_other_plugin_kinds_run_from_the_config(tmp_path: Path, small_nb101: Any) -> None:
    from tiny import tiny_config, tiny_search

    file = _write(
        tmp_path,
        """
        import torch
        from nasbench_harness.methods.engine.options import Options
        from nasbench_harness.plugins import EarlyStopper, Perturbation

        class Shrink(Perturbation):
            class Params(Options):
                factor: float = 0.5

            def perturb(self, state, weights):
                return weights * self.params.factor

        class StopAtTwo(EarlyStopper):
            def should_stop(self, state, row):
                return "two epochs are enough" if row["epoch"] == 2 else None
        """,
    )
    plugins = [{"ref": f"{file}:Shrink", "params": {"factor": 0.25}}, {"ref": f"{file}:StopAtTwo"}]
    result = tiny_search(
        tmp_path, small_nb101, space="nb1shot1-1", epochs=4, tracking={"eigen_every": 0}, plugins=plugins
    )
    assert result.stopped_early == "two epochs are enough" and len(read_trajectory(result.path).to_pylist()) == 2
    bad = tiny_config(plugins=[{"ref": f"{file}:Shrink", "weight": 2.0}])
    with pytest.raises(ConfigError, match="not a regularizer: it takes no weight"):
        tiny_search(tmp_path, small_nb101, "bad", config=bad)
