"""R-DARTS's methods: the eigenvalue early-stopping rule, DARTS-ES's stop and answer epoch,
DARTS-ADA's rollback to the exact snapshot with a larger weight decay, R-DARTS(L2) and (DP)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from tiny import merged, tiny_config, tiny_data, tiny_search, without_times

from nasbench_harness.config import build_config
from nasbench_harness.errors import ConfigError
from nasbench_harness.methods.components.arch_steps import FirstOrderStep
from nasbench_harness.methods.components.early_stopping import (
    EarlyStopOptions,
    EigenvalueEarlyStop,
    EigenvalueTracker,
)
from nasbench_harness.methods.engine import loop
from nasbench_harness.registry import make_method
from nasbench_harness.tracking import read_alphas, read_trajectory

NO_EIGEN = {"tracking": {"eigen_every": 0}}
"""The loop's own eigenvalue column off: these methods measure their own."""
FAST_RULE = {"every": 1, "window": 1, "delta": 1, "factor": 1.5, "start_epoch": 1}


def _run(tmp_path: Path, bench: Any, name: str = "run", **overrides: Any) -> Any:
    return tiny_search(tmp_path, bench, name, **merged(NO_EIGEN, overrides))


@pytest.fixture
def doubling_eigenvalue(monkeypatch: pytest.MonkeyPatch) -> None:
    """The eigenvalue doubles every epoch, so the early-stopping rule fires when it may."""

    def fake(self: loop.Search, batch: Any = None, weight_decay: float = 0.0) -> float:
        return float(2**self.state.epoch)

    monkeypatch.setattr(loop.Search, "eigenvalue", fake)


def test_tracker_centres_the_local_average_as_the_authors_code() -> None:
    tracker = EigenvalueTracker(every=2, window=5)
    for epoch, value in zip(range(2, 22, 2), [1, 1, 1, 1, 1, 2, 3, 4, 5, 6], strict=True):
        tracker.add(epoch, float(value))
    # the first average needs ceil(5/2) = 3 values; an average belongs to 2 * (5 // 2) = 4 epochs back
    assert tracker.averages[0] == (2, 1.0)
    assert tracker.averages[-1] == (16, pytest.approx((2 + 3 + 4 + 5 + 6) / 5))
    earlier_epoch, growth = tracker.growth(4)  # type: ignore[misc]
    assert earlier_epoch == 8 and growth == pytest.approx(4.0 / ((1 + 1 + 1 + 1 + 2) / 5))


def test_rules_code_and_paper() -> None:
    code = EarlyStopOptions().resolved()
    # the authors' flags; their es_start_epoch=10 counts epochs from 0
    assert (code["every"], code["window"], code["delta"], code["factor"], code["start_epoch"]) == (2, 5, 4, 1.3, 11)
    paper = EarlyStopOptions(rule="paper").resolved()
    assert paper["every"] * paper["delta"] == 5 and 1 / paper["factor"] == pytest.approx(0.75)
    assert EarlyStopOptions(rule="paper", factor=2.0).resolved()["factor"] == 2.0


def test_darts_es_stops_and_answers_with_the_earlier_epoch(
    tmp_path: Path, synthetic_nb201: Any, doubling_eigenvalue: None
) -> None:
    result = _run(tmp_path, synthetic_nb201, method="darts-es", method_options=FAST_RULE, epochs=5)
    rows = read_trajectory(result.path).to_pylist()
    # averages of single values: growth 2x > 1.5 as soon as two exist, i.e. after epoch 2
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[1]["es_growth"] == pytest.approx(2.0) and rows[1]["es_local_avg"] == pytest.approx(4.0)
    assert "grew 2.00x" in rows[1]["action"]
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["result_epoch"] == 1 and "grew" in manifest["stopped_early"]
    assert result.stopped_early == manifest["stopped_early"] and result.result_epoch == 1


def test_the_search_summary_prints_the_early_stops_answer_not_the_last_epoch(
    tmp_path: Path, synthetic_nb201: Any, doubling_eigenvalue: None, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nasbench_harness.cli.search import _summary

    result = _run(tmp_path, synthetic_nb201, method="darts-es", method_options=FAST_RULE, epochs=5)
    table = read_trajectory(result.path)
    rows = table.to_pylist()
    # make the last epoch's cell recognisable: it must not be printed as the answer
    rows[1].update(genotype="|last-epoch|", regret_test=rows[0]["regret_test"] + 7.25)
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), result.path / "trajectory.parquet")
    _summary(result, build_config("cpu", {"dataset": "cifar10"}))
    out = capsys.readouterr().out
    assert "answer: epoch 1's cell" in out and rows[0]["genotype"] in out and "|last-epoch|" not in out
    assert f"test regret {rows[0]['regret_test']:.2f} points" in out


def test_darts_es_does_not_stop_before_start_epoch(
    tmp_path: Path, synthetic_nb201: Any, doubling_eigenvalue: None
) -> None:
    result = _run(
        tmp_path, synthetic_nb201, method="darts-es", method_options={**FAST_RULE, "start_epoch": 9}, epochs=3
    )
    rows = read_trajectory(result.path).to_pylist()
    assert len(rows) == 3 and result.stopped_early is None
    assert all(r["es_eigenvalue"] is not None for r in rows)  # the rule's own measurement, every epoch
    assert all(r["eigenvalue"] is None for r in rows)  # the fixed-batch column follows tracking.eigen_every (0)


def test_darts_ada_rolls_back_to_the_exact_snapshot_with_ten_times_the_weight_decay(
    tmp_path: Path, synthetic_nb201: Any, doubling_eigenvalue: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    states: dict[int, dict[str, Any]] = {}  # schedule epoch -> state right after its tracking
    restored: list[dict[str, Any]] = []
    original_track, original_restore = loop.Search.track, loop.Search.restore

    def track(self: loop.Search, epoch: int) -> dict[str, Any]:
        row = original_track(self, epoch)
        states.setdefault(epoch, copy.deepcopy(self.checkpoint(epoch, components=False)))
        return row

    def restore(self: loop.Search, checkpoint: dict[str, Any], components: bool = True) -> int:
        epoch = original_restore(self, checkpoint, components)
        restored.append(copy.deepcopy(self.checkpoint(epoch, components=False)))
        return epoch

    monkeypatch.setattr(loop.Search, "track", track)
    monkeypatch.setattr(loop.Search, "restore", restore)
    options = FAST_RULE  # from the preset's 5e-4, one adaptation to 5e-3 stays within max_weight_decay 0.03
    result = _run(tmp_path, synthetic_nb201, method="darts-ada", method_options=options, epochs=4)
    rows = read_trajectory(result.path).to_pylist()
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["schedule_epoch"] for r in rows] == [1, 2, 2, 3, 4]  # epoch 2 again after the rollback to 1
    assert "rolled back to epoch 1" in rows[1]["action"]
    assert [r["ada_adaptations"] for r in rows] == [0, 1, 1, 1, 1]
    wd = rows[0]["weight_decay"]
    assert [r["weight_decay"] for r in rows] == pytest.approx([wd, wd, 10 * wd, 10 * wd, 10 * wd])
    # the state after the rollback is the state after epoch 1, exactly, but for the weight decay
    (after,) = restored
    before = states[1]
    for key, value in before["net"].items():
        assert torch.equal(after["net"][key], value), key
    assert torch.equal(after["alphas"], before["alphas"])
    assert after["scheduler"] == before["scheduler"]
    for key, value in before["w_optim"]["state"].items():
        assert torch.equal(after["w_optim"]["state"][key]["momentum_buffer"], value["momentum_buffer"])
    assert after["w_optim"]["param_groups"][0]["weight_decay"] == pytest.approx(10 * wd)
    epoch1 = [r["alpha"] for r in read_alphas(result.path).to_pylist() if r["epoch"] == 1]
    assert torch.allclose(after["alphas"].flatten(), torch.tensor(epoch1))


def test_darts_ada_resumed_after_the_rollback_equals_the_uninterrupted_run(
    tmp_path: Path, synthetic_nb201: Any, doubling_eigenvalue: None
) -> None:
    options = FAST_RULE
    whole = _run(tmp_path, synthetic_nb201, "whole", method="darts-ada", method_options=options, epochs=3)

    class Interrupt(Exception):
        pass

    def stop_after_two(kind: str, info: dict[str, Any]) -> None:
        if kind == "epoch" and info["epoch"] == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        _run(tmp_path, synthetic_nb201, "split", method="darts-ada", method_options=options, epochs=3,
             progress=stop_after_two)  # fmt: skip
    resumed = _run(tmp_path, synthetic_nb201, "split", method="darts-ada", method_options=options, epochs=3)
    strip = without_times(read_trajectory(whole.path).to_pylist())
    again = without_times(read_trajectory(resumed.path).to_pylist())
    assert again == strip and [r["schedule_epoch"] for r in again] == [1, 2, 2, 3]


def test_rdarts_l2_sets_the_weight_decay(tmp_path: Path, synthetic_nb201: Any) -> None:
    result = _run(tmp_path, synthetic_nb201, method="rdarts-l2", method_options={"weight_decay": 81e-4}, epochs=2)
    assert [r["weight_decay"] for r in read_trajectory(result.path).to_pylist()] == [81e-4, 81e-4]
    saved = torch.load(result.path / "checkpoint.pt", weights_only=False)
    assert saved["w_optim"]["param_groups"][0]["weight_decay"] == 81e-4


@pytest.mark.parametrize("space", ["nb201", "nb1shot1-1"])
def test_rdarts_dp_schedules_the_drop_probability(
    space: str, tmp_path: Path, synthetic_nb201: Any, small_nb101: Any
) -> None:
    bench = synthetic_nb201 if space == "nb201" else small_nb101
    result = _run(tmp_path, bench, method="rdarts-dp", method_options={"drop_prob": 0.4}, epochs=3, space=space)
    assert [r["drop_prob"] for r in read_trajectory(result.path).to_pylist()] == pytest.approx([0.0, 0.2, 0.4])


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("darts-es", {"factor": "big"}, "factor"),
        ("darts-es", {"rule": "book"}, "rule"),
        ("darts-ada", {"wd_factor": 1.0}, "wd_factor"),
        ("rdarts-l2", {"weight_decay": -1}, "weight_decay"),
        ("rdarts-dp", {"drop_prob": 1.0}, "drop_prob"),
        ("rdarts-dp", {"p": 0.2}, "unknown option 'p'"),
    ],
)
def test_bad_options_are_config_errors(name: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_method(name, options)


# -- the rule as RobustDARTS runs it ------------------------------------------------------------


def reference_stop(
    values: list[float], epochs: int, every: int, window: int, delta: int, factor: float, start: int
) -> tuple[int, int] | None:
    """RobustDARTS's decision, re-derived from its code (``src/search/train_search.py`` lines
    373-425, ``src/utils.py`` ``EVLocalAvg.update``/``early_stop``), in its 0-based epochs:
    (epoch at which it stops, stop epoch whose genotype it answers with), or None."""
    ev: list[float] = []
    averages: list[float] = []
    centre: dict[int, int] = {}
    half_up, half_down = -(-window // 2), window // 2
    for e in range(epochs):
        if not (e % every == 0 or e == epochs - 1):
            continue
        ev.append(values[e])
        if len(ev) >= half_up and e < epochs - 1:
            averages.append(sum(ev[-window:]) / len(ev[-window:]))
            centre[e] = e - every * half_down
        elif len(ev) < half_up:
            centre[e] = -1
        if e != epochs - 1 and centre[e] - every * delta >= start and averages[-1] / averages[-1 - delta] > factor:
            return e, centre[e] - every * delta
    return None


def drive(component: Any, values: list[float], epochs: int) -> tuple[int, Any]:
    """Run ``component``'s end-of-epoch hook over 1-based epochs with eigenvalue ``values[epoch - 1]``;
    (the epoch of the first action, the action), or (0, None)."""
    state = SimpleNamespace(
        epochs=epochs,
        epoch=0,
        arch_batch=object(),
        eigenvalue=lambda batch, wd: values[state.epoch - 1],
        a_optim=SimpleNamespace(param_groups=[{"weight_decay": 1e-3}]),
    )
    for epoch in range(1, epochs + 1):
        state.epoch = epoch
        action = component.end_of_epoch(state, {})
        if action is not None:
            return epoch, action
    return 0, None


def test_rule_decides_as_robustdarts_on_random_eigenvalue_paths() -> None:
    rng = np.random.default_rng(0)
    stops = 0
    for trial in range(300):
        epochs = int(rng.integers(12, 60))
        growth = np.where(rng.random(epochs) < 0.15, rng.uniform(1.2, 2.0, epochs), rng.uniform(0.9, 1.1, epochs))
        values = list(np.cumprod(growth) * rng.uniform(0.05, 0.5))
        every, window, delta = int(rng.integers(1, 4)), int(rng.integers(1, 7)), int(rng.integers(1, 5))
        factor, start = float(rng.uniform(1.05, 1.6)), int(rng.integers(0, 14))
        rule = EarlyStopOptions(every=every, window=window, delta=delta, factor=factor, start_epoch=start + 1)
        at, action = drive(EigenvalueEarlyStop(rule), values, epochs)
        expected = reference_stop(values, epochs, every, window, delta, factor, start)
        ours = None if action is None else (at - 1, action.result_epoch - 1)
        assert ours == expected, (trial, epochs, every, window, delta, factor, start)
        stops += expected is not None
    assert 50 < stops < 250  # both outcomes are exercised


def test_rule_never_stops_after_the_last_epoch() -> None:
    """A trigger possible only after the last epoch does not fire (the reference skips early_stop there)."""
    values = [1.0, 1.0, 8.0]
    at, action = drive(EigenvalueEarlyStop(EarlyStopOptions(**FAST_RULE)), values, epochs=3)
    assert action is None
    at, action = drive(EigenvalueEarlyStop(EarlyStopOptions(**FAST_RULE)), [*values, 8.0], epochs=4)
    assert (at, action.result_epoch) == (3, 2)


def test_es_measures_the_last_arch_batch_with_the_arch_weight_decay_at_the_references_epochs(
    tmp_path: Path, synthetic_nb201: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, Any, float]] = []
    arch_batches: dict[int, Any] = {}
    original_step = FirstOrderStep.step

    def step(self: FirstOrderStep, state: Any, train: Any, valid: Any) -> Any:
        arch_batches[state.epoch] = valid
        return original_step(self, state, train, valid)

    def fake(self: loop.Search, batch: Any = None, weight_decay: float = 0.0) -> float:
        calls.append((self.state.epoch, batch, weight_decay))
        return 1.0

    monkeypatch.setattr(FirstOrderStep, "step", step)
    monkeypatch.setattr(loop.Search, "eigenvalue", fake)
    overrides = {"arch_optim": {"weight_decay": 2e-3}}
    result = _run(tmp_path, synthetic_nb201, method="darts-es", epochs=6, **overrides)
    rows = read_trajectory(result.path).to_pylist()
    assert [epoch for epoch, _, _ in calls] == [1, 3, 5, 6]  # 0-based 0, 2, 4 and the last
    for epoch, batch, weight_decay in calls:
        assert batch is arch_batches[epoch] and weight_decay == 2e-3
    assert [r["es_eigenvalue"] for r in rows] == [1.0, None, 1.0, None, 1.0, 1.0]


def test_the_loops_eigenvalue_takes_a_batch_and_the_arch_weight_decay() -> None:
    """What ES calls: the Hessian on the given batch (not the fixed one) plus wd on the diagonal."""
    config = tiny_config(method="darts-es", **NO_EIGEN)
    search = loop.Search(config, make_method("darts-es"), tiny_data(), None, None, torch.device("cpu"))  # type: ignore[arg-type]
    assert search.state.eigenvalue is not None
    batch = next(iter(search.loaders.valid.epoch(1)))
    plain = search.state.eigenvalue(batch, 0.0)
    assert search.state.eigenvalue(batch, 0.5) == pytest.approx(plain + 0.5, rel=1e-9, abs=1e-12)
    assert search.eigenvalue() != pytest.approx(plain)


def test_darts_ada_restores_the_eigenvalue_history_so_it_can_trigger_again_at_once(
    tmp_path: Path, synthetic_nb201: Any, doubling_eigenvalue: None
) -> None:
    options = {**FAST_RULE, "max_weight_decay": 1.0}  # 5e-4 -> 5e-3 -> 5e-2 -> 0.5, then 5 would pass 1.0
    result = _run(tmp_path, synthetic_nb201, method="darts-ada", method_options=options, epochs=3)
    rows = read_trajectory(result.path).to_pylist()
    # after each rollback to epoch 1 the history holds epoch 1's value, so epoch 2 triggers again
    assert [r["schedule_epoch"] for r in rows] == [1, 2, 2, 2, 2, 3]
    assert [r["ada_adaptations"] for r in rows] == [0, 1, 2, 3, 3, 3]
    assert [r["weight_decay"] for r in rows] == pytest.approx([5e-4, 5e-4, 5e-3, 5e-2, 0.5, 0.5])
    assert rows[4]["action"] is None and rows[4]["es_growth"] == pytest.approx(2.0)  # would trigger; wd is at its cap


@pytest.mark.parametrize(
    ("start", "factor", "maximum", "expected"),
    [(3e-4, 10.0, 0.03, [3e-3, 3e-2]), (5e-4, 10.0, 0.03, [5e-3]), (3e-4, 3.0, 243e-4, [9e-4, 27e-4, 81e-4, 243e-4])],
)
def test_darts_ada_adapts_until_the_weight_decay_would_pass_its_maximum(
    start: float, factor: float, maximum: float, expected: list[float]
) -> None:
    """RobustDARTS's script: 3e-4 -> 3e-3 -> 3e-2 with max 0.03 (its final_iteration test); its
    argparse defaults (x3, max 243e-4) give four steps."""
    component = make_method("darts-ada", {"wd_factor": factor, "max_weight_decay": maximum}).components[0]
    reached, wd = [], start
    while component.can_adapt(wd):
        wd *= factor
        reached.append(wd)
    assert reached == pytest.approx(expected)
