"""ENAS: the LSTM controller (its sampling distribution, log-probabilities and entropies against an
independent computation), the baseline recurrence, the REINFORCE update's direction, the weight
step's controller paths, the ranking, and two-epoch searches on the synthetic NB201 table that
resume exactly and repeat for a seed."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tiny import alphas, interrupted_search, tiny_config, tiny_search, trajectory, without_times

from nasbench_harness.errors import ConfigError
from nasbench_harness.methods.components.controller import Controller, enas_baselines, train_controller
from nasbench_harness.methods.engine.loop import build_state
from nasbench_harness.registry import make_method
from nasbench_harness.spaces.nb201 import NB201Genotype

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"controller_train_steps": 2, "controller_num_aggregate": 3, "num_samples": 3, "final_num_samples": 4}
"""Controller training and ranking shrunk for the tiny runs."""
COLUMNS = ("enas_baseline", "enas_reward", "enas_entropy", "enas_best_oneshot_acc")


def _recomputed(controller: Controller, arch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability and entropy sums of ``arch`` (n, edges) by teacher forcing: the LSTM run
    once over the whole sequence (start vector, then the embeddings of the given ops)."""
    n = arch.shape[0]
    start = controller.input_vars.expand(1, n, -1)
    inputs = torch.cat([start, controller.w_embd(arch[:, :-1].T)], 0)  # (edges, n, size)
    outputs, _ = controller.w_lstm(inputs)
    logits = controller.tanh_constant * torch.tanh(controller.w_pred(outputs) / controller.temperature)
    log_p = F.log_softmax(logits, -1)  # (edges, n, ops)
    chosen = log_p.gather(2, arch.T.unsqueeze(-1))[..., 0].sum(0)
    entropy = -(log_p.exp() * log_p).sum(-1).sum(0)
    return chosen, entropy


def _state(options: dict[str, Any] | None = None) -> tuple[Any, Any]:
    options = options or {}
    config = tiny_config(method="enas", method_options=options)
    method = make_method("enas", options)
    state, _ = build_state(config, method, 10, torch.device("cpu"))
    method.arch_step.setup(state)
    state.epoch, state.epochs, state.steps = 1, 2, 4
    return state, method.arch_step


def _batches(n: int = 48, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 3, 16, 16, generator=g), torch.randint(0, 10, (n,), generator=g)
    return [(x[i : i + 16], y[i : i + 16]) for i in range(0, n, 16)]


# -- the controller ------------------------------------------------------------------------


def test_log_prob_and_entropy_match_a_teacher_forced_recomputation() -> None:
    controller = Controller(6, 5, generator=torch.Generator().manual_seed(1))
    sample = controller(64, torch.Generator().manual_seed(2))
    assert sample.arch.shape == (64, 6) and int(sample.arch.min()) >= 0 and int(sample.arch.max()) <= 4
    log_prob, entropy = _recomputed(controller, sample.arch)
    torch.testing.assert_close(sample.log_prob, log_prob)
    torch.testing.assert_close(sample.entropy, entropy)
    assert bool((sample.entropy <= 6 * math.log(5) + 1e-5).all()) and bool((sample.log_prob < 0).all())


def test_logits_are_bounded_by_the_tanh_constant_after_the_temperature() -> None:
    controller = Controller(6, 5, tanh_constant=2.5, temperature=5.0, generator=torch.Generator().manual_seed(0))
    h = torch.randn(7, 32) * 50
    with torch.no_grad():
        logits = controller.edge_logits(h)
    torch.testing.assert_close(logits, 2.5 * torch.tanh(controller.w_pred(h).detach() / 5.0))
    assert float(logits.abs().max()) <= 2.5 and float(logits.abs().max()) > 2.0  # saturated, not clipped earlier


def test_sampling_follows_the_controllers_distribution() -> None:
    controller = Controller(6, 5, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        controller.w_pred.bias.copy_(torch.tensor([0.0, 3.0, -3.0, 6.0, 1.0]))  # a skewed first edge
        sample = controller(20000, torch.Generator().manual_seed(4))
        first = F.softmax(controller.edge_logits(controller.w_lstm(controller.input_vars)[0][0, 0]), -1)
    counts = torch.bincount(sample.arch[:, 0], minlength=5).double() / 20000
    assert float((counts - first.double()).abs().max()) < 0.015
    # the second edge depends on the first op: its frequencies given op 3 follow the conditional
    with torch.no_grad():
        _, hidden = controller.w_lstm(controller.input_vars)
        out, _ = controller.w_lstm(controller.w_embd(torch.tensor([[3]])), hidden)
        second = F.softmax(controller.edge_logits(out[0, 0]), -1)
    given = sample.arch[sample.arch[:, 0] == 3, 1]
    freq = torch.bincount(given, minlength=5).double() / len(given)
    assert float((freq - second.double()).abs().max()) < 0.03


def test_initialisation_is_the_references() -> None:
    controller = Controller(6, 5, generator=torch.Generator().manual_seed(0))
    for param in (controller.input_vars, controller.w_lstm.weight_ih_l0, controller.w_lstm.weight_hh_l0):
        assert float(param.detach().abs().max()) <= 0.1 and float(param.detach().abs().max()) > 0.09
    for param in (controller.w_embd.weight, controller.w_pred.weight):
        assert float(param.detach().abs().max()) <= 0.1
    bound = 1 / math.sqrt(32)
    assert 0.1 < float(controller.w_lstm.weight_hh_l1.detach().abs().max()) <= bound  # PyTorch's default, kept
    same = Controller(6, 5, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(controller.parameters(), same.parameters(), strict=True))


# -- the baseline and the REINFORCE update -----------------------------------------------------


def test_the_baseline_recurrence_by_hand() -> None:
    rewards, top1 = [0.6, 0.2, 0.8], [0.59, 0.19, 0.79]
    # the reference: every sample from the epoch-start baseline 0.5, decay 0.9
    values, carried = enas_baselines(rewards, top1, 0.5, 0.9)
    assert values == pytest.approx([0.51, 0.47, 0.53]) and carried == pytest.approx(0.53)
    # no baseline yet (the first epoch): each sample's own top-1, the last one carried
    values, carried = enas_baselines(rewards, top1, None, 0.9)
    assert values == top1 and carried == 0.79
    # the moving average over samples
    values, carried = enas_baselines(rewards, top1, 0.5, 0.9, per_sample=True)
    assert values == pytest.approx([0.51, 0.479, 0.5111]) and carried == pytest.approx(0.5111)


def _favouring(edge: int, op: int) -> Any:
    return lambda ops: 1.0 if ops[edge] == op else 0.0


def _prob(controller: Controller, edge: int, op: int, n: int = 4000) -> float:
    with torch.no_grad():
        arch = controller(n, torch.Generator().manual_seed(99)).arch
    return float((arch[:, edge] == op).double().mean())


def _train(controller: Controller, score: Any, baseline: float | None, steps: int = 30, **kw: Any) -> Any:
    adam = torch.optim.Adam(controller.parameters(), lr=0.01, betas=(0.0, 0.999), eps=1e-3)
    args = {"steps": steps, "aggregate": 8, "entropy_weight": 1e-4, "baseline_decay": 0.99, "grad_clip": 5.0}
    return train_controller(
        controller, adam, score, baseline=baseline, generator=torch.Generator().manual_seed(5), **{**args, **kw}
    )


def test_reinforce_raises_the_probability_of_the_rewarded_op() -> None:
    controller = Controller(6, 5, generator=torch.Generator().manual_seed(0))
    before = _prob(controller, 2, 4)
    record = _train(controller, _favouring(2, 4), baseline=0.2)
    assert _prob(controller, 2, 4) > before + 0.3
    assert len(record.reward) == 30 * 8 and all(
        b == pytest.approx(0.2 * 0.99 + 0.01 * r) for b, r in zip(record.baseline, record.reward, strict=True)
    )
    assert np.mean(record.top1[-40:]) > np.mean(record.top1[:40])


def test_without_a_baseline_only_the_entropy_bonus_is_the_advantage() -> None:
    """The reference's first epoch: baseline = top1, so the reward's accuracy part cancels and
    the controller barely moves, whatever the accuracy says."""
    controller = Controller(6, 5, generator=torch.Generator().manual_seed(0))
    before = _prob(controller, 2, 4)
    record = _train(controller, _favouring(2, 4), baseline=None, steps=10)
    assert abs(_prob(controller, 2, 4) - before) < 0.03
    assert record.baseline == record.top1 and record.carried == record.top1[-1]


def test_one_update_is_the_hand_computed_gradient() -> None:
    """One step of 4 samples: the gradient of -sum(log_prob * (reward - baseline)) / 4 with the
    reward's entropy keeping its gradient, as ENAS.py computes it (checked before Adam moves)."""
    controller = Controller(6, 5, generator=torch.Generator().manual_seed(2))
    reference = Controller(6, 5, generator=torch.Generator().manual_seed(2))
    scores = iter([0.25, 0.5, 0.75, 1.0])
    sgd = torch.optim.SGD(controller.parameters(), lr=1.0)
    train_controller(
        controller, sgd, lambda ops: next(scores), steps=1, aggregate=4, entropy_weight=0.1,
        baseline_decay=0.9, baseline=0.4, grad_clip=None, generator=torch.Generator().manual_seed(7),
    )  # fmt: skip
    sample = reference(4, torch.Generator().manual_seed(7))
    reward = torch.tensor([0.25, 0.5, 0.75, 1.0]) + 0.1 * sample.entropy
    baseline = 0.4 - 0.1 * (0.4 - reward)
    loss = -(sample.log_prob * (reward - baseline)).sum() / 4
    loss.backward()
    for new, old in zip(controller.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(old.detach() - new.detach(), old.grad, rtol=1e-4, atol=1e-6)


# -- the method in the search state ----------------------------------------------------------


def test_weight_steps_train_the_controllers_one_hot_paths() -> None:
    state, step = _state()
    with torch.no_grad():
        step.controller.w_pred.bias.copy_(torch.tensor([-20.0, -20.0, -20.0, 20.0, -20.0]))  # op 3 everywhere, nearly
    torch.manual_seed(0)
    counts = np.zeros((6, 5))
    for s in range(4):
        state.step = s
        weights = state.mixing(phase="weights")
        assert set(weights.unique().tolist()) <= {0.0, 1.0} and torch.equal(weights.sum(1), torch.ones(6))
        assert step.forward_options(state, "weights")["mask"] == tuple(
            tuple(bool(v) for v in row) for row in weights.tolist()
        )
        counts += weights.numpy()
    assert counts[:, 3].sum() >= 0.8 * counts.sum()
    assert step.mixing(state, state.alphas, "eval") is None and not state.arch_step_on()


def test_controller_training_and_ranking_read_search_valid_batches() -> None:
    state, step = _state({**SMALL, "num_samples": 5})
    passes: list[int] = []

    def valid(k: int) -> Any:
        passes.append(k)
        return itertools.cycle(_batches())

    state.valid_batches = valid
    torch.manual_seed(3)
    genotype = state.derive()
    assert passes == [1, 3]  # controller training on pass `epoch`, the ranking on pass `epochs + epoch`
    record = step.last
    assert len(record.top1) == 2 * 3 and record.carried == record.top1[-1]  # first epoch: no baseline yet
    accs = [step._score(state, g, b) for (g, _), b in zip(step.candidates, itertools.cycle(_batches()), strict=False)]
    assert accs == [acc for _, acc in step.candidates] and len(accs) == 5
    assert genotype == step.candidates[int(np.argmax(accs))][0] and isinstance(genotype, NB201Genotype)
    columns = step.state_columns()
    assert columns["enas_best_oneshot_acc"] == max(accs) and columns["enas_baseline"] == record.carried
    assert columns["enas_reward"] == pytest.approx(np.mean(record.reward))
    assert state.derive() == genotype and passes == [1, 3]  # cached until the next weight pass
    state.epoch = 2  # the last epoch ranks final_num_samples
    state.step = 0
    state.mixing(phase="weights")
    state.derive()
    assert len(step.candidates) == 4 and passes == [1, 3, 2, 4]
    assert step.state_columns()["enas_baseline"] != record.carried


def test_missing_validation_batches_bad_options_and_nb1shot1_are_config_errors() -> None:
    state, _ = _state()
    with pytest.raises(ConfigError, match="valid_batches"):
        state.derive()
    for options, fragment in [({"controller_num_aggregate": 0}, "controller_num_aggregate"),
                              ({"controller_betas": [1.0, 0.9]}, "controller_betas"),
                              ({"baseline_update": "step"}, "baseline_update"),
                              ({"samples": 5}, "unknown option")]:  # fmt: skip
        with pytest.raises(ConfigError, match=fragment):
            make_method("enas", options)
    with pytest.raises(ConfigError, match=r"cannot run on nb1shot1-2: .*nb201 only"):
        make_method("enas").check_space("nb1shot1-2")


# -- searches --------------------------------------------------------------------------------


def test_two_epochs_on_nb201_resume_exactly(tmp_path: Path, synthetic_nb201: Any) -> None:
    config = tiny_config(method="enas", method_options=SMALL)
    whole = tiny_search(tmp_path, synthetic_nb201, "whole", config=config)
    rows = trajectory(whole)
    assert [r["epoch"] for r in rows] == [1, 2]
    for row in rows:
        assert all(row[c] is not None for c in COLUMNS)
        assert 0.0 <= row["enas_best_oneshot_acc"] <= 100.0 and 0.0 <= row["enas_baseline"] <= 1.0
        assert 0.0 < row["enas_entropy"] <= 6 * math.log(5)
    first, second = ([a["alpha"] for a in alphas(whole) if a["epoch"] == e] for e in (1, 2))
    assert first == second  # the alphas are never trained

    interrupted_search(tmp_path, synthetic_nb201, "split", after_epoch=1, config=config)
    after_one = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)
    resumed = tiny_search(tmp_path, synthetic_nb201, "split", config=config)
    assert resumed.resumed_from == 1 and resumed.epochs_completed == 2
    assert without_times(rows) == without_times(trajectory(resumed))
    a = torch.load(whole.path / "checkpoint.pt", weights_only=True)
    b = torch.load(resumed.path / "checkpoint.pt", weights_only=True)
    (ca,), (cb,) = a["components"], b["components"]
    assert all(torch.equal(ca["controller"][k], cb["controller"][k]) for k in ca["controller"])
    assert ca["baseline"] == cb["baseline"] == rows[-1]["enas_baseline"]
    assert all(torch.equal(a["net"][k], b["net"][k]) for k in a["net"])
    # the controller learnt in epoch 2 and its Adam state is in the checkpoint
    (c1,) = after_one["components"]
    assert not all(torch.equal(c1["controller"][k], ca["controller"][k]) for k in ca["controller"])
    assert c1["optimizer"]["state"] and int(ca["optimizer"]["state"][0]["step"]) == 2 * SMALL["controller_train_steps"]


def test_a_seed_repeats_its_search_and_another_differs(tmp_path: Path, synthetic_nb201: Any) -> None:
    config = tiny_config(method="enas", method_options=SMALL, epochs=1)
    one = without_times(trajectory(tiny_search(tmp_path, synthetic_nb201, "a", config=config)))
    again = without_times(trajectory(tiny_search(tmp_path, synthetic_nb201, "b", config=config)))
    assert one == again
    other = tiny_config(method="enas", method_options=SMALL, epochs=1, seed=1)
    different = without_times(trajectory(tiny_search(tmp_path, synthetic_nb201, "c", config=other)))
    assert [r["enas_reward"] for r in different] != [r["enas_reward"] for r in one]
