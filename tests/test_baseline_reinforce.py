"""REINFORCE on the NB201 table (baselines.reinforce): its gradient, optimizer, reward baseline,
learning on a toy table, reproducibility, trace and CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from test_cli import nbh

from nasbench_harness.baselines.reinforce import (
    Adam,
    ExponentialMovingAverage,
    Policy,
    check_reinforce_options,
    log_prob_gradient,
    log_softmax,
    policy_entropy,
    reinforce,
    sample_actions,
)
from nasbench_harness.baselines.tabular import TabularTrace, random_search, write_trace
from nasbench_harness.errors import ConfigError, NotInBenchmarkError
from nasbench_harness.spaces.nb201 import NUM_CELLS, NUM_EDGES, NUM_OPS, NB201Genotype
from nasbench_harness.tabular.nb201 import NB201Benchmark
from nasbench_harness.tabular.nb201_metrics import resolve_metric
from nasbench_harness.tracking import read_trajectory, schema
from nasbench_harness.tracking.manifest import read_manifest_file

TARGET = (3, 1, 2, 3, 0, 4)
"""The best op of each edge in the toy table."""


def _objective(logits: np.ndarray, actions: np.ndarray, advantage: float) -> float:
    """sum_e log pi(a_e) * advantage, the quantity whose gradient the policy step uses."""
    return float(log_softmax(logits)[np.arange(logits.shape[0]), actions].sum() * advantage)


def _finite_difference(logits: np.ndarray, actions: np.ndarray, advantage: float, h: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(logits)
    for index in np.ndindex(logits.shape):
        up, down = logits.copy(), logits.copy()
        up[index] += h
        down[index] -= h
        grad[index] = (_objective(up, actions, advantage) - _objective(down, actions, advantage)) / (2 * h)
    return grad


@pytest.fixture(scope="module")
def toy_nb201(synthetic_nb201: NB201Benchmark) -> NB201Benchmark:
    """Every metric of a cell = 60 + 5 x (edges carrying the TARGET op): one best cell, at 90%."""
    matches = np.array(
        [sum(a == b for a, b in zip(NB201Genotype.from_index(i).ops, TARGET, strict=True)) for i in range(NUM_CELLS)]
    )
    matrix = np.tile(60.0 + 5.0 * matches, (len(synthetic_nb201.metrics), 1))
    return NB201Benchmark(synthetic_nb201.path, synthetic_nb201.info, matrix)


# -- the pieces, against hand and finite-difference computations -------------------------------
@pytest.mark.parametrize(
    "scale",
    [1e-3, 1.0, 30.0],  # near-uniform (the initial policy), softmax, nearly one-hot edges
)
def test_policy_gradient_matches_finite_differences(scale: float) -> None:
    rng = np.random.default_rng(int(scale * 1000))
    logits = scale * rng.standard_normal((NUM_EDGES, NUM_OPS))
    actions = rng.integers(NUM_OPS, size=NUM_EDGES)
    if scale == 30.0:
        actions[0] = int(np.argmin(logits[0]))  # an action of probability ~0: gradient ~ +advantage there
        actions[1] = int(np.argmax(logits[1]))  # an action of probability ~1: gradient ~0 on that edge
    advantage = -3.7
    analytic = advantage * log_prob_gradient(logits, actions)
    numeric = _finite_difference(logits, actions, advantage)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-7)
    p = np.exp(log_softmax(logits))
    assert np.allclose(analytic.sum(axis=1), 0.0)  # onehot - p sums to 0 on each edge
    assert analytic[0, actions[0]] == pytest.approx(advantage * (1 - p[0, actions[0]]))


def test_adam_matches_two_hand_computed_steps() -> None:
    adam = Adam(0.5)
    p0 = np.array([1.0, -2.0])
    g1, g2 = np.array([2.0, 0.0]), np.array([-1.0, 3.0])
    p1 = adam.step(p0, g1)
    # step 1: m = 0.1 g, v = 0.001 g^2, bias corrections 0.1 and 0.001
    expected1 = p0 - 0.5 * (0.1 * g1 / 0.1) / (np.sqrt(0.001 * g1**2) / math.sqrt(0.001) + 1e-8)
    np.testing.assert_allclose(p1, expected1, rtol=1e-13)
    assert p1[0] == pytest.approx(0.5, rel=1e-7)  # about lr against the gradient's sign
    assert p1[1] == p0[1]  # a zero gradient does not move the parameter
    p2 = adam.step(p1, g2)
    m2 = 0.9 * (0.1 * g1) + 0.1 * g2
    v2 = 0.999 * (0.001 * g1**2) + 0.001 * g2**2
    expected2 = p1 - 0.5 / (1 - 0.9**2) * m2 / (np.sqrt(v2) / math.sqrt(1 - 0.999**2) + 1e-8)
    np.testing.assert_allclose(p2, expected2, rtol=1e-13)
    assert adam.t == 2


def test_ema_baseline_is_bias_corrected() -> None:
    ema = ExponentialMovingAverage(0.9)
    values = []
    for reward in (90.0, 80.0, 70.0):
        ema.update(reward)
        values.append(ema.value())
    # numerators 9, 16.1, 21.49 over denominators 0.1, 0.19, 0.271
    assert values == pytest.approx([90.0, 16.1 / 0.19, 21.49 / 0.271], rel=1e-12)
    assert values[1] == pytest.approx(84.736842105, rel=1e-9)


def test_update_takes_the_reward_into_the_baseline_first() -> None:
    policy = Policy(np.random.default_rng(0), learning_rate=0.5, ema_momentum=0.9)
    start = policy.logits.copy()
    actions = np.array(TARGET)
    assert policy.update(actions, 90.0) == pytest.approx(0.0, abs=1e-12)  # baseline = the first reward
    np.testing.assert_allclose(policy.logits, start, rtol=0, atol=1e-9)  # so (almost) no first move
    advantage = policy.update(actions, 80.0)
    assert advantage == pytest.approx(80.0 - 16.1 / 0.19)
    p = policy.probabilities()
    assert (p[np.arange(NUM_EDGES), actions] < np.exp(log_softmax(start))[np.arange(NUM_EDGES), actions]).all()


def test_one_step_matches_torch_on_the_reference_loss() -> None:
    """The reference's step (Categorical log_prob, loss -(log_prob * (r - b)).sum(), torch Adam) in float64."""
    torch = pytest.importorskip("torch")
    policy = Policy(np.random.default_rng(5), learning_rate=0.5)
    theta = torch.nn.Parameter(torch.tensor(policy.logits))
    optimizer = torch.optim.Adam([theta], lr=0.5)
    ema = ExponentialMovingAverage(0.9)
    rng = np.random.default_rng(6)
    for reward in (70.0, 85.0, 60.0, 91.0):
        actions = sample_actions(policy.logits, rng)
        policy.update(actions, reward)
        ema.update(reward)
        log_prob = torch.distributions.Categorical(torch.softmax(theta, dim=-1)).log_prob(torch.tensor(actions))
        loss = (-log_prob * (reward - ema.value())).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        np.testing.assert_allclose(policy.logits, theta.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_sampling_follows_the_policy() -> None:
    logits = np.log(np.array([[0.1, 0.2, 0.3, 0.4, 1e-12]] * NUM_EDGES))
    draws = np.stack([sample_actions(logits, np.random.default_rng(s)) for s in range(4000)])
    freq = np.stack([(draws == op).mean(axis=0) for op in range(NUM_OPS)], axis=1)
    np.testing.assert_allclose(freq, np.exp(log_softmax(logits)), atol=0.03)
    assert draws.max() < NUM_OPS - 1  # the near-zero op is never drawn
    assert policy_entropy(np.zeros((NUM_EDGES, NUM_OPS))) == pytest.approx(NUM_EDGES * math.log(NUM_OPS))


# -- learning, on a toy table -----------------------------------------------------------------
def test_policy_learns_the_best_cell_of_a_toy_reward() -> None:
    rng = np.random.default_rng(1)
    policy = Policy(rng, learning_rate=0.1)
    edges, target = np.arange(NUM_EDGES), np.array(TARGET)
    before = policy.probabilities()[edges, target].prod()
    assert before == pytest.approx(NUM_OPS**-NUM_EDGES, rel=0.05)  # near-uniform start (1e-3 N(0,1) logits)
    for _ in range(150):
        actions = sample_actions(policy.logits, rng)
        policy.update(actions, 60.0 + 5.0 * float((actions == target).sum()))
    assert policy.probabilities()[edges, target].prod() > 0.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reinforce_finds_the_toy_optimum(toy_nb201: NB201Benchmark, seed: int) -> None:
    trace = reinforce(toy_nb201, "nb201", "cifar10", 150, seed, learning_rate=0.1)
    best = NB201Genotype(TARGET).to_string()
    last = trace.rows[-1]
    assert last["incumbent"] == best
    assert last["regret_valid"] == 0.0 and last["regret_test"] == 0.0
    entropy = [r["policy_entropy"] for r in trace.rows]
    assert entropy[0] == pytest.approx(NUM_EDGES * math.log(NUM_OPS), abs=1e-4)
    assert entropy[1] == pytest.approx(entropy[0], abs=1e-9)  # the first advantage is 0 (up to rounding)
    assert entropy[-1] < 0.3 * entropy[0]  # the policy has concentrated
    late = [r["genotype"] for r in trace.rows[-20:]]
    assert late.count(best) >= 10  # and it now samples the best cell most of the time
    rewards = [r["valid_acc"] for r in trace.rows]
    assert np.mean(rewards[-20:]) > np.mean(rewards[:20]) + 15  # 5 points per edge learnt


# -- bookkeeping, on the synthetic table ------------------------------------------------------
@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "ImageNet16-120"])
def test_trace_is_consistent_with_the_table(synthetic_nb201: NB201Benchmark, dataset: str) -> None:
    valid, test = resolve_metric(dataset, "valid"), resolve_metric(dataset, "test")
    trace = reinforce(synthetic_nb201, "nb201", dataset, 40, 3)
    assert (trace.method, trace.space, trace.dataset) == ("reinforce", "nb201", dataset)
    assert trace.options == {"learning_rate": 0.5, "ema_momentum": 0.9}
    rows = trace.rows
    assert [r["evaluation"] for r in rows] == list(range(1, 41))
    values = np.array([r["valid_acc"] for r in rows])
    assert np.array_equal([r["incumbent_valid_acc"] for r in rows], np.maximum.accumulate(values))
    for row in rows:
        assert row["parent"] is None
        assert row["valid_acc"] == synthetic_nb201.query(row["genotype"], valid)
        assert row["incumbent_test_acc"] == synthetic_nb201.query(row["incumbent"], test)
        assert row["regret_test"] == pytest.approx(synthetic_nb201.regret(row["incumbent"], test))
        assert 0 <= row["policy_entropy"] <= NUM_EDGES * math.log(NUM_OPS) + 1e-9
    assert all(schema.lookup(name, ("baseline",)) for name in rows[0])  # every column documented


def test_seeds_make_runs_reproducible(synthetic_nb201: NB201Benchmark) -> None:
    first = reinforce(synthetic_nb201, "nb201", "cifar10", 30, 7)
    assert reinforce(synthetic_nb201, "nb201", "cifar10", 30, 7) == first
    other = reinforce(synthetic_nb201, "nb201", "cifar10", 30, 8)
    assert [r["genotype"] for r in other.rows] != [r["genotype"] for r in first.rows]
    slower = reinforce(synthetic_nb201, "nb201", "cifar10", 30, 7, learning_rate=0.01)
    assert slower.rows[0] == first.rows[0]  # same first draw; the learning rate acts from the second update
    assert [r["policy_entropy"] for r in slower.rows] != [r["policy_entropy"] for r in first.rows]


def test_partial_table_skips_missing_cells(synthetic_nb201: NB201Benchmark) -> None:
    matrix = np.stack([synthetic_nb201.values(m) for m in synthetic_nb201.metrics])
    missing = np.random.default_rng(0).random(NUM_CELLS) < 0.5
    matrix[:, missing] = np.nan
    partial = NB201Benchmark(synthetic_nb201.path, synthetic_nb201.info, matrix)
    trace = reinforce(partial, "nb201", "cifar10", 30, 0, learning_rate=0.01)
    assert len(trace.rows) == 30 and trace.skipped_not_in_benchmark > 0
    assert not any(missing[NB201Genotype.from_string(r["genotype"]).index] for r in trace.rows)
    one_cell = np.full_like(matrix, np.nan)
    one_cell[:, 0] = matrix[:, 0]
    sparse = NB201Benchmark(synthetic_nb201.path, synthetic_nb201.info, one_cell)
    with pytest.raises(NotInBenchmarkError, match=r"only [01] of the 2 requested evaluations on nb201"):
        reinforce(sparse, "nb201", "cifar10", 2, 0)  # gives up after 100 skips per evaluation


def test_write_trace_reads_back(synthetic_nb201: NB201Benchmark, tmp_path: Path) -> None:
    trace = reinforce(synthetic_nb201, "nb201", "cifar100", 25, 0, learning_rate=0.2, ema_momentum=0.5)
    run = write_trace(trace, tmp_path / "rl")
    table = pq.read_table(run / "trajectory.parquet")
    assert table.column_names == ["method", "seed", *trace.rows[0]]
    assert table.num_rows == 25
    assert table.column("policy_entropy").to_pylist() == [r["policy_entropy"] for r in trace.rows]
    assert str(table.schema.field("policy_entropy").type) == "double"
    rs = pq.read_table(
        write_trace(random_search(synthetic_nb201, "nb201", "cifar100", 5, 0), tmp_path / "rs") / "trajectory.parquet"
    )
    assert table.schema.remove(table.schema.get_field_index("policy_entropy")) == rs.schema  # shared columns alike
    manifest = read_manifest_file(run / "manifest.json")
    assert manifest["status"] == "finished"
    expected = {"kind": "tabular-baseline", "method": "reinforce", "space": "nb201", "dataset": "cifar100", "n": 25}
    assert expected.items() <= manifest.items()
    assert (manifest["learning_rate"], manifest["ema_momentum"]) == (0.2, 0.5)
    assert (manifest["population"], manifest["sample"]) == (None, None)
    assert manifest["incumbent"] == trace.rows[-1]["incumbent"]


# -- bad options (no data) ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"learning_rate": 0.0}, r"learning_rate must be a finite number > 0, got 0\.0"),
        ({"learning_rate": -0.5}, r"learning_rate must be a finite number > 0, got -0\.5"),
        ({"learning_rate": math.nan}, r"learning_rate must be a finite number > 0, got nan"),
        ({"learning_rate": math.inf}, r"learning_rate must be a finite number > 0, got inf"),
        ({"learning_rate": True}, r"learning_rate must be a finite number > 0, got True"),
        ({"learning_rate": "0.5"}, r"learning_rate must be a finite number > 0, got '0\.5'"),
        ({"ema_momentum": 1.0}, r"ema_momentum must be a number in \[0, 1\), got 1\.0"),
        ({"ema_momentum": -0.1}, r"ema_momentum must be a number in \[0, 1\), got -0\.1"),
        ({"n": 0}, r"n must be an integer in 1..1000000, got 0"),
        ({"seed": -1}, r"seed must be an integer >= 0, got -1"),
        (
            {"space": "nb1shot1-2"},
            r"reinforce runs on the nb201 space only.*use random-search or regularized-evolution",
        ),
        ({"space": "nb101"}, r"unknown search space 'nb101'"),
        ({"dataset": "mnist"}, r"unknown NB201 dataset 'mnist'"),
        ({}, r"nb201 is scored on an NB201Benchmark, got object"),
    ],
)
def test_bad_options_raise_config_errors(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"space": "nb201", "dataset": "cifar10", "n": 10, "seed": 0} | kwargs
    with pytest.raises(ConfigError, match=message):
        reinforce(object(), **args)  # type: ignore[arg-type]


def test_edges_of_the_allowed_options_pass() -> None:
    check_reinforce_options("nb201", 1, 0)  # an integer rate, and momentum 0 (baseline = the reward)
    check_reinforce_options("nb201", 1e-6, 0.999)


# -- CLI, on the synthetic table ----------------------------------------------------------------
def test_cli_runs_reinforce(
    tmp_path: Path, synthetic_data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out_dir = tmp_path / "rl"
    args = ["baseline", "--method", "reinforce", "--n", "20", "--seed", "3", "--learning-rate", "0.2"]
    code, out, err = nbh(capsys, monkeypatch, *args, "--out", str(out_dir), "--data-dir", str(synthetic_data_dir))
    assert code == 0, err
    assert "reinforce on nb201/cifar10, seed 3: 20 evaluations" in out and "test regret" in out
    rows = read_trajectory(out_dir).to_pylist()
    assert len(rows) == 20 and all(r["method"] == "reinforce" for r in rows)
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert (manifest["learning_rate"], manifest["ema_momentum"]) == (0.2, 0.9)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--learning-rate", "0"], "learning_rate must be a finite number > 0, got 0.0"),
        (["--learning-rate", "-1"], "learning_rate must be a finite number > 0, got -1.0"),
        (["--ema-momentum", "1"], "ema_momentum must be a number in [0, 1), got 1.0"),
        (["--ema-momentum", "nan"], "ema_momentum must be a number in [0, 1), got nan"),
        (["--space", "nb1shot1-1"], "reinforce runs on the nb201 space only"),
    ],
)
def test_cli_rejects_bad_options(
    tmp_path: Path,
    synthetic_data_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    out_dir = tmp_path / "rl"
    base = ["baseline", "--method", "reinforce", "--out", str(out_dir), "--data-dir", str(synthetic_data_dir)]
    code, _, err = nbh(capsys, monkeypatch, *base, *args)
    assert code == 1
    assert message in " ".join(err.split())
    assert "Traceback" not in err
    assert not out_dir.exists()  # refused before any work


# -- the real NB201 table -----------------------------------------------------------------------
@pytest.mark.data
def test_known_behaviour_on_nb201_cifar10(real_nb201: NB201Benchmark) -> None:
    def traces(learning_rate: float) -> list[TabularTrace]:
        return [reinforce(real_nb201, "nb201", "cifar10", 100, s, learning_rate) for s in range(20)]

    default_traces = traces(0.5)
    default, slower = [t.rows[-1] for t in default_traces], [t.rows[-1] for t in traces(0.1)]
    test_default = float(np.mean([r["incumbent_test_acc"] for r in default]))
    test_slower = float(np.mean([r["incumbent_test_acc"] for r in slower]))
    assert test_default > 93.3  # measured 93.71 (seeds 20-39: 93.64, 40-59: 93.50); random search: 93.81
    assert np.mean([r["policy_entropy"] for r in default]) < 2.0  # measured 1.02 nats: collapsed (uniform: 9.66)
    distinct = np.mean([len({r["genotype"] for r in t.rows}) for t in default_traces])
    assert distinct < 40  # measured 27.2 distinct cells in 100 evaluations
    assert test_slower > test_default  # measured 93.99 (seeds 20-39: 93.90, 40-59: 93.96)
