"""Random search with weight sharing: uniform one-hot paths, the best-of-candidates derivation,
two-epoch searches on NB201 (the synthetic table) and NB-1Shot1 space 1 (a small NB101 table)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tiny import alphas, tiny_config, tiny_search, trajectory

from nasbench_harness.errors import ConfigError
from nasbench_harness.methods.engine.loop import build_state
from nasbench_harness.methods.zoo.rsws import oneshot_accuracy, uniform_genotype
from nasbench_harness.registry import make_method
from nasbench_harness.spaces.nb1shot1_derive import genotype_weights
from nasbench_harness.tabular.nb101 import NB101Benchmark

pytestmark = pytest.mark.usefixtures("one_thread")


def _run(tmp_path: Path, bench: Any, **overrides: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    result = tiny_search(tmp_path, bench, method="rsws", **overrides)
    return trajectory(result), alphas(result)


def _state(options: dict[str, Any], space: str = "nb201") -> Any:
    config = tiny_config(space=space, method="rsws", method_options=options)
    method = make_method("rsws", options)
    state, _ = build_state(config, method, 10, torch.device("cpu"))
    state.epoch = 1
    return state, method


def _batches(n: int = 40, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 3, 16, 16, generator=g), torch.randint(0, 10, (n,), generator=g)
    return [(x[:16], y[:16]), (x[16:32], y[16:32]), (x[32:], y[32:])]


def test_two_epochs_on_nb201(tmp_path: Path, synthetic_nb201: Any) -> None:
    rows, weights = _run(tmp_path, synthetic_nb201, method_options={"n_candidates": 4})
    assert [r["epoch"] for r in rows] == [1, 2]
    for row in rows:
        assert 0.0 <= row["rsws_best_oneshot_acc"] <= 100.0
        # 32 evaluation images < eval_images: the ranking saw exactly what the loop's final-net
        # evaluation sees, with the same batch statistics
        assert row["rsws_best_oneshot_acc"] == pytest.approx(row["final_valid_acc"])
    first, second = ([a["alpha"] for a in weights if a["epoch"] == e] for e in (1, 2))
    assert first == second  # no architecture step


def test_two_epochs_on_nb1shot1(tmp_path: Path, small_nb101: NB101Benchmark) -> None:
    options = {"n_candidates": 3, "eval_images": 16}
    rows, _ = _run(tmp_path, small_nb101, space="nb1shot1-1", method_options=options)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(r["rsws_best_oneshot_acc"] is not None for r in rows)


def test_weight_steps_train_uniform_one_hot_paths_nb201() -> None:
    state, method = _state({})
    torch.manual_seed(0)
    counts = np.zeros((6, 5))
    for step in range(1500):
        state.step = step
        weights = state.mixing(phase="weights")
        assert set(weights.unique().tolist()) <= {0.0, 1.0} and torch.equal(weights.sum(1), torch.ones(6))
        counts += weights.numpy()
    mask = method.arch_step.forward_options(state, "weights")["mask"]
    assert mask == tuple(tuple(bool(v) for v in row) for row in weights.tolist())
    assert np.abs(counts / 1500 - 0.2).max() < 0.05  # every op, `none` included, equally often
    assert method.arch_step.mixing(state, state.alphas, "eval") is None


def test_weight_steps_train_valid_genotypes_nb1shot1() -> None:
    state, _ = _state({}, "nb1shot1-1")
    for step in range(20):
        state.step = step
        weights = state.mixing(phase="weights")
        genotype = state.space.derive(weights, True)
        ops, output, inputs = genotype_weights(genotype)
        expected = np.concatenate([ops.reshape(-1), output, *inputs])
        assert np.array_equal(weights.numpy(), expected)  # exactly one configuration of the space


def test_derive_returns_the_best_candidate_and_is_cached_and_seeded() -> None:
    state, method = _state({"n_candidates": 6, "eval_images": 36})
    state.eval_batches = _batches
    torch.manual_seed(3)
    genotype = state.derive()
    step = method.arch_step
    (x0, y0), (x1, y1), (x2, y2) = _batches()
    cut = [(x0, y0), (x1, y1), (x2[:4], y2[:4])]  # the first 36 images
    accs = [oneshot_accuracy(state, g, cut) for g, _ in step.candidates]
    assert accs == [acc for _, acc in step.candidates]
    assert genotype == step.candidates[int(np.argmax(accs))][0]
    assert step.state_columns()["rsws_best_oneshot_acc"] == max(accs)
    before = list(step.candidates)
    assert state.derive() == genotype and step.candidates == before  # cached for the epoch
    fresh, fresh_method = _state({"n_candidates": 6, "eval_images": 36})  # the same seed builds the same net
    fresh.eval_batches = _batches
    torch.manual_seed(3)  # the loop reseeds torch each epoch; the candidates follow
    assert fresh.derive() == genotype
    assert fresh_method.arch_step.candidates == step.candidates


def test_uniform_genotype_uses_the_given_generator() -> None:
    state, _ = _state({})
    a = uniform_genotype(state, torch.Generator().manual_seed(1))
    assert a == uniform_genotype(state, torch.Generator().manual_seed(1))


def test_missing_validation_images_and_bad_options_are_config_errors() -> None:
    state, _ = _state({})
    with pytest.raises(ConfigError, match="eval_batches"):
        state.derive()
    for options, fragment in [({"n_candidates": 0}, "n_candidates"), ({"eval_images": 0}, "eval_images"),
                              ({"candidates": 5}, "unknown option")]:  # fmt: skip
        with pytest.raises(ConfigError, match=fragment):
            make_method("rsws", options)
