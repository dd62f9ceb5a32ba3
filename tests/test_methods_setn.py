"""SETN: the top-k cells by log-probability against a brute force (ties included), uniform one-hot
paths in the weight step against softmax(alpha) in the arch step, the best-of-candidates pick, a
two-epoch search on the synthetic NB201 table, an exactly resumed run, and the NB-1Shot1 refusal."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tiny import alphas, interrupted_search, tiny_config, tiny_search, trajectory, without_times

from nasbench_harness.errors import ConfigError
from nasbench_harness.methods.engine.loop import build_state
from nasbench_harness.methods.engine.steps import training_step
from nasbench_harness.methods.zoo import setn as setn_module
from nasbench_harness.methods.zoo.rsws import oneshot_accuracy
from nasbench_harness.methods.zoo.setn import _shuffled_passes, all_cells, cell, cell_log_probs, top_cells
from nasbench_harness.registry import make_method
from nasbench_harness.spaces.nb201 import NB201Genotype
from nasbench_harness.supernets.nb201 import derive_genotype
from nasbench_harness.tracking import read_alphas

pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = {"select_num": 4, "eval_images": 16}
COLUMNS = ("setn_best_oneshot_acc", "setn_best_log_prob", "setn_best_rank")


def _state(options: dict[str, Any]) -> Any:
    config = tiny_config(method="setn", method_options=options)
    method = make_method("setn", options)
    state, _ = build_state(config, method, 10, torch.device("cpu"))
    return state, method


def _batches(n: int = 40, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 3, 16, 16, generator=g), torch.randint(0, 10, (n,), generator=g)
    return [(x[:16], y[:16]), (x[16:32], y[16:32]), (x[32:], y[32:])]


def _selection(method: Any) -> Any:
    (selection,) = [c for c in method.components if c.name == "setn-select"]
    return selection


def brute_force_top(alphas: torch.Tensor, k: int) -> tuple[list[tuple[int, ...]], list[float]]:
    """The reference's rule written out: every cell in itertools.product order (the first edge the
    most significant), its log-probability as a Python sum of the 0-dim log-softmax tensors of its
    edges, sorted by the negated value with Python's stable sort."""
    log_p = torch.log_softmax(alphas, dim=-1)
    pairs = [
        (sum(log_p[e, op] for e, op in enumerate(ops)).item(), ops) for ops in itertools.product(range(5), repeat=6)
    ]
    ranked = sorted(pairs, key=lambda pair: -pair[0])[:k]
    return [ops for _, ops in ranked], [value for value, _ in ranked]


def _one_hot_like(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 10.0 * torch.nn.functional.one_hot(torch.randint(0, 5, (6,), generator=g), 5).float()


@pytest.mark.parametrize(
    ("kind", "k"),
    [("random", 100), ("random-wide", 300), ("equal", 100), ("one-hot", 100), ("one-hot", 15625)],
)
def test_top_cells_equal_a_brute_force(kind: str, k: int) -> None:
    g = torch.Generator().manual_seed(k)
    alphas = {
        "random": 1e-3 * torch.randn(6, 5, generator=g),
        "random-wide": torch.randn(6, 5, generator=g),
        "equal": torch.zeros(6, 5),
        "one-hot": _one_hot_like(k),
    }[kind]
    codes, log_probs = top_cells(alphas, k)
    expected_ops, expected_values = brute_force_top(alphas, k)
    assert [tuple(int(op) for op in all_cells()[c]) for c in codes] == expected_ops
    assert log_probs.tolist() == expected_values  # the same float32 sums, bit for bit
    if kind in ("equal", "one-hot"):  # ties decided by the enumeration order
        assert len(set(expected_values)) < len(expected_values)
    if kind == "equal":
        assert codes.tolist() == list(range(k))
    assert cell(int(codes[0])) == derive_genotype(alphas)  # the most probable cell is the argmax


def test_the_enumeration_is_the_code_order() -> None:
    cells = all_cells()
    assert cells.shape == (15625, 6) and not cells.flags.writeable
    for code in (0, 1, 7, 3124, 15624):
        assert cell(code) == NB201Genotype.from_code(code)
    assert [tuple(r) for r in cells[:7].tolist()] == list(itertools.islice(itertools.product(range(5), repeat=6), 7))


def test_log_probs_sum_the_edges() -> None:
    alphas = torch.randn(6, 5, generator=torch.Generator().manual_seed(4))
    log_p = torch.log_softmax(alphas.double(), -1)
    values = cell_log_probs(alphas)
    for code in (0, 999, 15624):
        ops = all_cells()[code]
        assert values[code] == pytest.approx(float(sum(log_p[e, int(o)] for e, o in enumerate(ops))), rel=1e-6)
    assert np.exp(values.astype(np.float64)).sum() == pytest.approx(1.0, rel=1e-5)  # a distribution over cells


def test_weight_step_trains_uniform_paths_and_arch_step_softmax_alphas() -> None:
    state, method = _state(SMALL)
    state.epoch, state.steps = 1, 40
    seen: list[tuple[str, torch.Tensor, dict[str, Any], torch.Tensor]] = []
    forward = state.forward

    def recording(x: torch.Tensor, weights: torch.Tensor, phase: str) -> torch.Tensor:
        options = {}
        for component in method.all_components:
            options.update(component.forward_options(state, phase))
        seen.append((phase, weights.detach().clone(), options, x))
        return forward(x, weights, phase)

    state.forward = recording
    torch.manual_seed(0)
    before = state.alphas.detach().clone()
    counts = np.zeros((6, 5))
    for step in range(40):
        state.step = step
        train, valid = _batches(seed=2 * step)[0], _batches(seed=2 * step + 1)[1]
        alphas_now = state.alphas.detach().clone()
        training_step(state, train, valid)
        (arch, weights) = seen[-2:]
        assert arch[0] == "arch" and arch[3] is valid[0] and "mask" not in arch[2]
        assert torch.equal(arch[1], torch.softmax(alphas_now, dim=-1))  # joint mode: softmax(alpha)
        assert weights[0] == "weights" and weights[3] is train[0]
        w = weights[1]
        assert set(w.unique().tolist()) <= {0.0, 1.0} and torch.equal(w.sum(1), torch.ones(6))
        assert weights[2]["mask"] == tuple(tuple(bool(v) for v in row) for row in w.tolist())
        counts += w.numpy()
    assert not torch.equal(state.alphas.detach(), before)  # the arch step trains the alphas
    assert counts.min() > 0  # every op, `none` included, is drawn
    assert state.mixing(phase="eval").equal(torch.softmax(state.alphas, -1))


def test_weight_step_paths_are_uniform() -> None:
    state, _ = _state(SMALL)
    state.epoch = 1
    torch.manual_seed(1)
    counts = np.zeros((6, 5))
    for step in range(1500):
        state.step = step
        counts += state.mixing(phase="weights").numpy()
    assert np.abs(counts / 1500 - 0.2).max() < 0.05


@pytest.mark.parametrize("mode", ["same", "next"])
def test_derive_picks_the_best_scored_of_the_most_probable_cells(mode: str) -> None:
    state, method = _state({"select_num": 6, "eval_images": 12, "candidate_images": mode})
    with torch.no_grad():
        state.alphas.copy_(torch.randn(6, 5, generator=torch.Generator().manual_seed(5)))
    state.eval_batches = _batches
    state.epoch = 0  # before training, as the reference's initial genotype
    torch.manual_seed(3)
    genotype = state.derive()
    selection = _selection(method)
    codes, log_probs = top_cells(state.alphas, 6)
    assert [g for g, _, _ in selection.candidates] == [cell(int(c)) for c in codes]
    assert [p for _, p, _ in selection.candidates] == log_probs.tolist()
    if mode == "same":
        x, y = _batches()[0]
        images = [[(x[:12], y[:12])]] * 6
    else:
        torch.manual_seed(3)
        passes = _shuffled_passes(_batches(), 12, int(torch.randint(0, 2**62, ())))
        images = [next(passes) for _ in range(6)]
        assert not torch.equal(images[0][0][1], images[1][0][1])  # candidates see different images
    scores = [oneshot_accuracy(state, g, b) for (g, _, _), b in zip(selection.candidates, images, strict=True)]
    assert [acc for _, _, acc in selection.candidates] == scores
    best = int(np.argmax(scores))
    assert genotype == selection.candidates[best][0]
    assert selection.state_columns() == dict(
        zip(COLUMNS, [scores[best], float(log_probs[best]), best + 1], strict=True)
    )
    before = list(selection.candidates)
    assert state.derive() == genotype and selection.candidates == before  # cached for the epoch


def test_the_pick_is_the_argmax_of_the_scores_ties_to_the_more_probable(monkeypatch: pytest.MonkeyPatch) -> None:
    state, method = _state({"select_num": 5, "candidate_images": "same"})
    state.eval_batches = _batches
    scores = iter([10.0, 30.0, 20.0, 30.0, 5.0, 7.0, 7.0, 7.0, 7.0, 7.0])
    monkeypatch.setattr(setn_module, "oneshot_accuracy", lambda *_: next(scores))
    state.epoch = 1
    codes, _ = top_cells(state.alphas, 5)
    assert state.derive() == cell(int(codes[1]))  # the first of the two best
    assert _selection(method).state_columns()["setn_best_rank"] == 2
    state.epoch = 2  # all equal: the most probable cell, the argmax of the alphas
    assert state.derive() == cell(int(codes[0])) == derive_genotype(state.alphas)


def test_two_epochs_on_nb201_and_a_resumed_run_equals_the_uninterrupted_one(
    tmp_path: Path, synthetic_nb201: Any
) -> None:
    config = tiny_config(method="setn", method_options=SMALL)
    whole = tiny_search(tmp_path, synthetic_nb201, "whole", config=config)
    rows = trajectory(whole)
    assert [r["epoch"] for r in rows] == [1, 2]
    weights = alphas(whole)
    first, second = ([a["alpha"] for a in weights if a["epoch"] == e] for e in (1, 2))
    assert first != second  # the arch step trains the alphas
    for row in rows:
        assert 0.0 <= row["setn_best_oneshot_acc"] <= 100.0 and 1 <= row["setn_best_rank"] <= 4
        epoch_alphas = torch.tensor(
            [[a["alpha"] for a in weights if a["epoch"] == row["epoch"] and a["edge"] == e] for e in _edges(weights)]
        )
        codes, log_probs = top_cells(epoch_alphas, 4)
        rank = row["setn_best_rank"]
        assert row["genotype"] == cell(int(codes[rank - 1])).to_string()  # one of the epoch's 4 most probable
        assert row["setn_best_log_prob"] == pytest.approx(float(log_probs[rank - 1]))

    interrupted_search(tmp_path, synthetic_nb201, "split", after_epoch=1, config=config)
    resumed = tiny_search(tmp_path, synthetic_nb201, "split", config=config)
    assert resumed.resumed_from == 1 and resumed.epochs_completed == 2
    assert without_times(rows) == without_times(trajectory(resumed))
    assert read_alphas(whole.path).to_pylist() == read_alphas(resumed.path).to_pylist()


def _edges(weights: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(a["edge"] for a in weights))


def test_nb1shot1_is_refused_and_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"method 'setn' cannot run on nb1shot1-2: .*parent sets"):
        make_method("setn").check_space("nb1shot1-2")
    make_method("setn").check_space("nb201")
    bad = [
        ({"select_num": 0}, "select_num"),
        ({"select_num": 15626}, "select_num"),
        ({"eval_images": 0}, "eval_images"),
        ({"candidate_images": "all"}, "candidate_images"),
        ({"n_candidates": 5}, "unknown option"),
    ]
    for options, fragment in bad:
        with pytest.raises(ConfigError, match=fragment):
            make_method("setn", options)
