"""The search loop end to end on a tiny synthetic set: trajectory columns, resume equality,
a diverging loss, and bad configs. Scoring uses the synthetic NB201 table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from tiny import TIME_COLUMNS, interrupted_search, tiny_config, tiny_data, tiny_search, without_times

from nasbench_harness import registry
from nasbench_harness.config import PRESETS, build_config, parse_overrides
from nasbench_harness.errors import ConfigError, RunDirError, TrainingError
from nasbench_harness.methods.components.arch_steps import FirstOrderStep
from nasbench_harness.methods.engine.base import Component, Method
from nasbench_harness.tracking import read_alphas, read_trajectory


def test_two_epoch_search_fills_every_column(tmp_path: Path, synthetic_nb201: Any) -> None:
    result = tiny_search(tmp_path, synthetic_nb201)
    assert result.status == "finished" and result.epochs_completed == 2
    table = read_trajectory(result.path)
    rows = table.to_pylist()
    assert [r["epoch"] for r in rows] == [1, 2]
    expected = {
        "train_loss",
        "train_acc",
        "valid_loss",
        "valid_acc",
        "final_valid_acc",
        "gap",
        "genotype",
        "genotype_index",
        "n_skip_connect",
        "n_none",
        "n_parameter_free",
        "nb201_cifar10_valid",
        "nb201_cifar10_test",
        "nb201_cifar100_valid",
        "nb201_cifar100_test",
        "nb201_imagenet16_120_valid",
        "nb201_imagenet16_120_test",
        "regret_valid",
        "regret_test",
        "eigenvalue",
        "lr",
        "arch_lr",
        *TIME_COLUMNS,
    }
    assert expected <= set(table.column_names)
    for row in rows:
        for column in expected:
            assert row[column] is not None, column
        assert row["gap"] == pytest.approx(row["valid_acc"] - row["final_valid_acc"])
        assert synthetic_nb201.query(row["genotype"], "cifar10/ori-test/accuracy@200") == row["nb201_cifar10_test"]
        assert row["regret_test"] >= 0
    assert rows[1]["lr"] < rows[0]["lr"]  # cosine schedule
    alphas = read_alphas(result.path).to_pylist()
    assert len(alphas) == 2 * 30
    assert sum(r["weight"] for r in alphas if r["epoch"] == 2 and r["edge"] == "0->1") == pytest.approx(1.0)
    manifest = (result.path / "manifest.json").read_text()
    assert '"status": "finished"' in manifest and '"split_seed"' in manifest


def test_resumed_run_equals_uninterrupted_run(tmp_path: Path, synthetic_nb201: Any) -> None:
    config = tiny_config(epochs=3, method_options={"order": 2})
    whole = tiny_search(tmp_path, synthetic_nb201, "whole", config=config)

    interrupted_search(tmp_path, synthetic_nb201, "split", after_epoch=2, config=config)
    assert len(read_trajectory(tmp_path / "split").to_pylist()) == 2
    resumed = tiny_search(tmp_path, synthetic_nb201, "split", config=config)
    assert resumed.resumed_from == 2 and resumed.epochs_completed == 3
    assert without_times(read_trajectory(whole.path).to_pylist()) == without_times(
        read_trajectory(resumed.path).to_pylist()
    )
    assert read_alphas(whole.path).to_pylist() == read_alphas(resumed.path).to_pylist()
    a = torch.load(whole.path / "checkpoint.pt", weights_only=False)["net"]
    b = torch.load(resumed.path / "checkpoint.pt", weights_only=False)["net"]
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_rerunning_a_finished_run_does_nothing(tmp_path: Path, synthetic_nb201: Any) -> None:
    first = tiny_search(tmp_path, synthetic_nb201, epochs=1)
    stamp = (first.path / "trajectory.parquet").stat().st_mtime_ns
    again = tiny_search(tmp_path, synthetic_nb201, epochs=1)
    assert again.status == "finished" and (first.path / "trajectory.parquet").stat().st_mtime_ns == stamp


def test_a_different_config_in_the_same_directory_is_refused(tmp_path: Path, synthetic_nb201: Any) -> None:
    tiny_search(tmp_path, synthetic_nb201, epochs=1)
    with pytest.raises(RunDirError, match=r"optim\.lr \(0\.025 vs 0\.05\)"):
        tiny_search(tmp_path, synthetic_nb201, epochs=1, optim={"lr": 0.05})
    with pytest.raises(RunDirError, match="--resume"):
        tiny_search(tmp_path, synthetic_nb201, epochs=1, resume=False)


class _NaNInEpochTwo(Component):
    def extra_loss(self, state: Any, phase: str, weights: torch.Tensor) -> torch.Tensor | None:
        return torch.tensor(float("nan")) if state.epoch == 2 and phase == "weights" else None


def test_a_nan_loss_fails_the_run_and_keeps_the_finished_epochs(
    tmp_path: Path, synthetic_nb201: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nasbench_harness.registry as reg

    monkeypatch.setitem(reg.METHODS, "nan-test", f"{__name__}:_nan_method")
    with pytest.raises(TrainingError, match="epoch 2, step 1"):
        tiny_search(tmp_path, synthetic_nb201, epochs=3, method="nan-test")
    import json

    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "nan" in manifest["error"].lower()
    assert [r["epoch"] for r in read_trajectory(tmp_path / "run").to_pylist()] == [1]


def _nan_method(options: dict[str, Any]) -> Method:
    return Method("nan-test", FirstOrderStep(), [_NaNInEpochTwo()])


class _NaNArchTermAtStepTwo(Component):
    """From epoch 2, step 2 on: an arch-loss term that is NaN (so the alphas' gradient, then the
    alphas and the weights' loss follow)."""

    def extra_loss(self, state: Any, phase: str, weights: torch.Tensor) -> torch.Tensor | None:
        late = (state.epoch, state.step) >= (2, 1)
        return (weights.sum() * float("nan")) if late and phase == "arch" else None


def _nan_arch_method(options: dict[str, Any]) -> Method:
    return Method("nan-arch", FirstOrderStep(), [_NaNArchTermAtStepTwo()])


@pytest.mark.parametrize("sync_every", [1, 2, 100])
def test_a_nan_read_late_still_names_its_first_step_and_cause(
    sync_every: int, tmp_path: Path, synthetic_nb201: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loss and the finiteness flags are read every ``sync_every`` steps, yet the error names the
    step where the first quantity went non-finite (epoch 2, step 2 of 3) and that quantity (the
    component's term, not the gradient or the weight loss that followed from it)."""
    import nasbench_harness.registry as reg

    monkeypatch.setitem(reg.METHODS, "nan-arch", f"{__name__}:_nan_arch_method")
    with pytest.raises(
        TrainingError,
        match=r"_NaNArchTermAtStepTwo added a non-finite term \(nan\) to the arch loss in epoch 2, step 2;",
    ):
        tiny_search(tmp_path, synthetic_nb201, epochs=3, method="nan-arch", tracking={"sync_every": sync_every})
    assert [r["epoch"] for r in read_trajectory(tmp_path / "run").to_pylist()] == [1]


def test_watch_names_the_earliest_and_returns_what_else_was_read() -> None:
    from nasbench_harness.testing import tiny_state

    state = tiny_state("nb201")
    state.epoch = 4
    errors = {name: (lambda where, value, name=name: TrainingError(f"{name} {where}")) for name in "abc"}
    fine, nan = torch.ones(3), torch.tensor([1.0, float("nan")])
    for step, (a, b, c) in enumerate([(fine, fine, fine), (fine, fine, nan), (nan, nan, nan)]):
        state.step = step
        for key, value in zip("abc", (a, b, c), strict=True):
            state.watch(key, value, errors[key])
    with pytest.raises(TrainingError, match=r"^c in epoch 4, step 2$"):  # c first went bad, at step index 1
        state.check_finite()
    state.step = 0
    for key in "ab":  # both bad at the same step: the one watched first is named
        state.watch(key, nan, errors[key])
    with pytest.raises(TrainingError, match=r"^a in epoch 4, step 1$"):
        state.check_finite()
    state.watch("a", fine, errors["a"])
    assert state.check_finite(torch.tensor([2.5, 3.0]), torch.tensor(7)) == [2.5, 3.0, 7.0]
    assert state.check_finite() == []  # nothing pending after a read


def test_unknown_method_preset_and_options() -> None:
    with pytest.raises(ConfigError, match=r"registered methods: .*darts, darts-2nd"):
        registry.make_method("dartz")
    with pytest.raises(ConfigError, match="unknown preset 'gpu'"):
        build_config("gpu")
    with pytest.raises(ConfigError, match="order"):
        registry.make_method("darts", {"order": 3})
    with pytest.raises(ConfigError, match=r"unknown option .unrolled.\. darts accepts: order \(default 1\)"):
        registry.make_method("darts", {"unrolled": True})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optim.lrr=0.1"], r"optim\.lrr: unknown key; known keys here: lr, lr_min"),
        (["epochs=zero"], "epochs: Input should be a valid integer"),
        (["epochs=0"], "epochs: Input should be greater than or equal to 1"),
        (["dataset=mnist"], "dataset: unknown data set 'mnist'; expected one of cifar10"),
        (["space=darts"], "space: .*unknown search space 'darts'; choose one of: nb201"),
    ],
)
def test_bad_overrides_name_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_config("cpu", parse_overrides(overrides))


@pytest.mark.parametrize("item", ["epochs", "=3", "optim..lr=1"])
def test_malformed_override_syntax(item: str) -> None:
    with pytest.raises(ConfigError, match="write key=value"):
        parse_overrides([item])


def test_override_values_parse() -> None:
    assert parse_overrides(["optim.lr=0.05", "data.train_size=none", "model.channels_last=false", "method=darts"]) == {
        "optim": {"lr": 0.05},
        "data": {"train_size": None},
        "model": {"channels_last": False},
        "method": "darts",
    }


def test_presets_differ_where_documented() -> None:
    paper, cpu, common = build_config("paper"), build_config("cpu"), build_config("common")
    assert list(PRESETS) == ["paper", "cpu", "collapse", "common"]  # the CLI lists them in this order
    # common is the published setting for every method; paper adds the method's protocol (darts: NB201's own)
    assert common.protocol is None and paper.protocol is not None and paper.protocol.startswith("darts/nb201 ")
    assert (common.optim, common.arch_optim, common.epochs, common.batch_size) == (
        paper.optim,
        paper.arch_optim,
        paper.epochs,
        paper.batch_size,
    )
    assert (paper.model.channels, paper.model.cells_per_stage, paper.epochs, paper.batch_size) == (16, 5, 50, 64)
    assert paper.data.train_size is None and cpu.data.train_size is not None
    assert (paper.optim.lr, paper.optim.lr_min, paper.arch_optim.lr, paper.arch_optim.betas) == (
        0.025,
        0.001,
        3e-4,
        (0.5, 0.999),
    )


@pytest.mark.parametrize("space", ["nb201", "nb1shot1-3"])
@pytest.mark.parametrize("method", ["darts", "sdarts-rs", "pc-darts"])
def test_cpu_collapse_and_common_ignore_the_methods_protocol(space: str, method: str) -> None:
    """Only paper takes the method's protocol; the other presets are one protocol for every method."""
    for preset in ("cpu", "collapse", "common"):
        mine, darts = build_config(preset, {"space": space, "method": method}), build_config(preset, {"space": space})
        assert mine.protocol is None and mine.model_copy(update={"method": "darts"}) == darts


@pytest.mark.parametrize("space", ["nb201", "nb1shot1-3"])
def test_the_collapse_preset_is_cpu_with_the_alphas_lr_x10_and_100_epochs(space: str) -> None:
    cpu, collapse = build_config("cpu", {"space": space}), build_config("collapse", {"space": space})
    assert (cpu.epochs, cpu.arch_optim.lr, collapse.epochs, collapse.arch_optim.lr) == (50, 3e-4, 100, 3e-3)
    differs = {"epochs", "arch_optim", "preset"}
    assert {k: v for k, v in collapse.to_dict().items() if k not in differs} == {
        k: v for k, v in cpu.to_dict().items() if k not in differs
    }
    assert collapse.arch_optim.model_dump(exclude={"lr"}) == cpu.arch_optim.model_dump(exclude={"lr"})


def test_every_registered_method_is_described_and_builds() -> None:
    assert set(registry.METHOD_HELP) == set(registry.METHODS)
    for name in registry.METHODS:
        method = registry.make_method(name)
        assert method.arch_step is not None and method.name


@pytest.mark.parametrize("space", ["nb201", "nb1shot1-1"])
def test_evaluation_keeps_buffers_and_mode_and_final_nets_use_batch_statistics(
    space: str, tmp_path: Path, synthetic_nb201: Any
) -> None:
    from nasbench_harness.methods.engine.loop import Search
    from nasbench_harness.tracking import RunDir

    config = tiny_config(epochs=1, space=space)
    search = Search(
        config, registry.make_method("darts", {}), tiny_data(), synthetic_nb201, RunDir(tmp_path), torch.device("cpu")
    )
    net, s = search.state.net, search.state
    net.train()
    x, _ = next(iter(search.loaders.train.epoch(1)))
    net(x, s.mixing().detach())  # move the running statistics off their initial values
    before = {k: v.clone() for k, v in net.state_dict().items()}
    weights, mask = s.space.final_net(s.derive(), torch.device("cpu"))
    for batch_stats in (False, True):
        search.evaluate(weights, mask, batch_stats=batch_stats)
        assert net.training
        for key, value in net.state_dict().items():
            assert torch.equal(value, before[key]), key
    # batch statistics everywhere: equal to a training-mode forward, not to an eval-mode one
    images = torch.cat([b[0] for b in search.loaders.evaluation.epoch(0)])
    with torch.no_grad():
        train_logits = net(images, weights, mask=mask)
        net.eval()
        eval_logits = net(images, weights, mask=mask)
        net.train()
    labels = torch.cat([b[1] for b in search.loaders.evaluation.epoch(0)])
    for logits, batch_stats in ((train_logits, True), (eval_logits, False)):
        expected = 100.0 * float((logits.argmax(1) == labels).float().mean())
        assert search.evaluate(weights, mask, batch_stats=batch_stats)[1] == pytest.approx(expected)
    assert not torch.allclose(train_logits, eval_logits)
