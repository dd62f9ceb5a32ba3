"""Perturbation-based selection (DARTS-PT) as a derivation option: the op kept per edge, the
projected mixing weights, the schedule of decisions and fine-tune epochs (the reference's, edge
cases included), and in a search: the ``pt_*`` columns filled while the search itself trains
exactly as without the selection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from tiny import TIME_COLUMNS, tiny_config, tiny_search, trajectory

from nasbench_harness.analysis.runs import load_runs
from nasbench_harness.errors import ConfigError
from nasbench_harness.methods.engine import selection
from nasbench_harness.methods.engine.loop import build_state
from nasbench_harness.registry import METHODS, make_method
from nasbench_harness.spaces.nb201 import NB201Genotype
from nasbench_harness.tracking.scoring import score_columns

pytestmark = pytest.mark.usefixtures("one_thread")


def _state(method: str = "darts") -> Any:
    config = tiny_config(method=method)
    state, _ = build_state(config, make_method(method), 10, torch.device("cpu"))
    with torch.no_grad():
        state.alphas.copy_(torch.randn(state.alphas.shape, generator=torch.Generator().manual_seed(3)))
    return state


def _scripted_evaluate(state: Any, accuracy: Any) -> list[torch.Tensor]:
    """Replace ``state.evaluate`` by ``accuracy(weights)``; return the weights it was asked about."""
    seen: list[torch.Tensor] = []

    def evaluate(weights: torch.Tensor, mask: Any = None, *, batch_stats: bool = False, batches: Any = None) -> Any:
        assert mask is None and batch_stats  # the supernet, batch statistics (train-mode BN, as the reference)
        seen.append(weights.clone())
        acc = float(accuracy(weights))
        return 100.0 - acc, acc

    state.evaluate = evaluate
    return seen


def test_the_op_whose_removal_costs_most_accuracy_is_kept() -> None:
    state = _state()
    weights = state.mixing(phase="eval").detach()
    importance = torch.tensor([0.0, 5.0, 1.0, 9.0, 2.0])  # accuracy lost when an op of edge 2 is removed
    seen = _scripted_evaluate(state, lambda w: 90.0 - float((importance * (w[2] == 0)).sum()))
    assert selection._best_op(state, weights, 2, "acc") == 3
    assert len(seen) == 5  # every op, none included (DARTS derives with none)
    for op, asked in enumerate(seen):
        assert asked[2, op] == 0 and torch.equal(
            asked[2, [o for o in range(5) if o != op]], weights[2, [o for o in range(5) if o != op]]
        )
        assert torch.equal(
            asked[[e for e in range(6) if e != 2]], weights[[e for e in range(6) if e != 2]]
        )  # no renormalisation


def test_ties_keep_the_first_op_and_loss_picks_the_largest() -> None:
    state = _state()
    weights = state.mixing(phase="eval").detach()
    _scripted_evaluate(state, lambda w: 50.0)  # every removal costs the same
    assert selection._best_op(state, weights, 0, "acc") == 0
    lost = torch.tensor([1.0, 3.0, 3.0, 0.0, 2.0])
    _scripted_evaluate(state, lambda w: 90.0 - float((lost * (w[4] == 0)).sum()))  # loss = 100 - acc
    assert selection._best_op(state, weights, 4, "loss") == 1  # highest loss, first of the tie


def test_a_method_deriving_without_none_never_keeps_none() -> None:
    state = _state()
    state.method.include_none = False
    weights = state.mixing(phase="eval").detach()
    seen = _scripted_evaluate(state, lambda w: 90.0 - 50.0 * float(w[1, 0] == 0))  # removing none hurts most
    assert selection._best_op(state, weights, 1, "acc") != 0 and len(seen) == 4


def test_projected_weights_fix_decided_edges_and_cut_their_gradient() -> None:
    state = _state()
    alphas = state.alphas.detach().clone().requires_grad_(True)
    weights = selection.projected(state, {1: 3, 4: 0}, alphas)
    soft = torch.softmax(alphas.detach(), dim=-1)
    assert torch.equal(weights[1].detach(), torch.eye(5)[3]) and torch.equal(weights[4].detach(), torch.eye(5)[0])
    assert torch.allclose(weights[[0, 2, 3, 5]].detach(), soft[[0, 2, 3, 5]])
    (weights * torch.arange(30.0).reshape(6, 5)).sum().backward()
    assert alphas.grad is not None
    assert torch.count_nonzero(alphas.grad[[1, 4]]) == 0 and torch.count_nonzero(alphas.grad[[0, 2, 3, 5]]) > 0


class _Recorder:
    """Stands in for the evaluations and fine-tune epochs of :func:`selection._select`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, keep: dict[int, int]) -> None:
        self.events: list[tuple[str, Any]] = []
        monkeypatch.setattr(selection, "_best_op", self.best_op)
        monkeypatch.setattr(selection, "_fine_tune_epoch", self.fine_tune)
        self.keep = keep

    def best_op(self, state: Any, weights: torch.Tensor, edge: int, criterion: str) -> int:
        self.events.append(("decide", edge))
        return self.keep[edge]

    def fine_tune(self, search: Any, chosen: dict[int, int], *args: Any, **kwargs: Any) -> None:
        self.events.append(("tune", len(chosen)))


def _search(state: Any, tune_epochs: int) -> Any:
    config = tiny_config(selection={"perturbation": True, "tune_epochs": tune_epochs})
    return type("FakeSearch", (), {"state": state, "config": config})()


@pytest.mark.parametrize(
    ("tune_epochs", "decided_at", "tune_epochs_total"),
    [
        (5, [0, 5, 10, 15, 20, 24], 25),  # the reference's --proj_intv 5: 6 decisions in 25 epochs
        (2, [0, 2, 4, 6, 8, 9], 10),
        (1, [0, 1, 2, 3, 4], 5),  # only 5 decisions: the last edge keeps its argmax, as the reference
        (0, [0, 0, 0, 0, 0, 0], 0),  # no fine-tuning: every edge at once
    ],
)
def test_the_schedule_of_decisions_and_fine_tune_epochs(
    monkeypatch: pytest.MonkeyPatch, tune_epochs: int, decided_at: list[int], tune_epochs_total: int
) -> None:
    state = _state()
    keep = {0: 1, 1: 2, 2: 3, 3: 4, 4: 0, 5: 1}
    recorder = _Recorder(monkeypatch, keep)
    genotype = selection._select(_search(state, tune_epochs), epoch=1)
    tunes = [e for e in recorder.events if e[0] == "tune"]
    assert len(tunes) == tune_epochs_total
    epochs_before = [
        sum(1 for e in recorder.events[:i] if e[0] == "tune") for i, e in enumerate(recorder.events) if e[0] == "decide"
    ]
    assert epochs_before == decided_at
    decided = [edge for kind, edge in recorder.events if kind == "decide"]
    assert len(set(decided)) == len(decided)  # each edge once, in a random order
    expected = [keep[e] if e in decided else int(state.mixing(phase="eval")[e].argmax()) for e in range(6)]
    assert genotype == NB201Genotype.from_ops(expected)


def test_perturbation_selection_needs_nb201() -> None:
    with pytest.raises(ConfigError, match=r"selection.perturbation \(DARTS-PT\) decides NB201's edges"):
        tiny_config(space="nb1shot1-1", selection={"perturbation": True})


def test_a_search_gets_pt_columns_and_trains_as_without_them(tmp_path: Path, synthetic_nb201: Any) -> None:
    plain = trajectory(tiny_search(tmp_path, synthetic_nb201, "plain"))
    options = {"perturbation": True, "every": 1, "tune_epochs": 1}
    with_pt = trajectory(tiny_search(tmp_path, synthetic_nb201, "pt", selection=options))
    again = trajectory(tiny_search(tmp_path, synthetic_nb201, "pt-again", selection=options))
    for row, base in zip(with_pt, plain, strict=True):
        # the selection works on a copy: the search's own numbers are those of a run without it
        assert {k: v for k, v in row.items() if not k.startswith("pt_") and k not in TIME_COLUMNS} == {
            k: v for k, v in base.items() if k not in TIME_COLUMNS
        }
        genotype = NB201Genotype.from_string(row["pt_genotype"])
        scores = score_columns(synthetic_nb201, genotype, "cifar10")
        assert row["pt_regret_test"] == scores["regret_test"] and row["pt_regret_valid"] == scores["regret_valid"]
        assert row["pt_test_acc_table"] == scores["nb201_cifar10_test"]
        assert row["pt_regret_valid"] >= 0 and row["pt_regret_test"] >= 0 and row["pt_time_s"] > 0
        assert 0 <= row["pt_test_acc_table"] <= 100
    assert [r["pt_genotype"] for r in with_pt] == [r["pt_genotype"] for r in again]  # reproducible
    loaded = load_runs([tmp_path / "pt"]).epochs.sort_values("epoch")  # what the selection figure draws
    assert loaded["pt_test_regret"].tolist() == [r["pt_regret_test"] for r in with_pt]


def test_without_every_only_the_last_epoch_selects(tmp_path: Path, synthetic_nb201: Any) -> None:
    rows = trajectory(tiny_search(tmp_path, synthetic_nb201, selection={"perturbation": True, "tune_epochs": 0}))
    assert rows[0]["pt_genotype"] is None and rows[0]["pt_regret_test"] is None
    assert rows[1]["pt_genotype"] is not None


SMALL = {
    "rsws": {"n_candidates": 2},
    "setn": {"select_num": 2},
    "enas": {"controller_train_steps": 1, "controller_num_aggregate": 1, "num_samples": 1, "final_num_samples": 1},
}
"""Method options shrunk for a one-epoch run."""


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_gets_a_perturbation_selection(method: str, tmp_path: Path, synthetic_nb201: Any) -> None:
    """The selection runs beside every registered method (its eval mixing, its arch-step switch)."""
    selection_options = {"perturbation": True, "tune_epochs": 1}
    (row,) = trajectory(
        tiny_search(
            tmp_path,
            synthetic_nb201,
            method=method,
            epochs=1,
            method_options=SMALL.get(method, {}),
            selection=selection_options,
        )
    )
    genotype = NB201Genotype.from_string(row["pt_genotype"])
    assert row["pt_regret_test"] == score_columns(synthetic_nb201, genotype, "cifar10")["regret_test"]
