"""Two baselines without weight sharing that run on the tabular benchmarks alone.

Random search and regularized ("aging") evolution (Real et al. 2019) pick architectures by the
table's validation accuracy and report the incumbent's test accuracy. NB201 uses the searched
dataset's valid/test metrics of :func:`resolve_metric`. NB-1Shot1 (CIFAR-10 only) uses NB101's
108-epoch validation/test accuracy, averaged over repeats, with the space's reference optimum
from :class:`SearchSpace`. Accuracies are in %, and regrets are optimum minus incumbent, in
accuracy points. A cell that the imported table lacks cannot be evaluated (the shared NB101
table is partial). It does not use up an evaluation: it is skipped and added to the running
``skipped_not_in_benchmark`` count. REINFORCE (:mod:`~nasbench_harness.baselines.reinforce`)
uses the same problems, log and trace. This module never imports torch.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nasbench_harness.errors import ConfigError, GenotypeError, NotInBenchmarkError, RunDirError, UnknownMetricError
from nasbench_harness.spaces.catalog import get_space_info
from nasbench_harness.spaces.nb1shot1 import NB1Shot1Genotype, get_space, random_genotype
from nasbench_harness.spaces.nb101 import OPS as NB101_OPS
from nasbench_harness.spaces.nb201 import NUM_CELLS, NUM_EDGES, NUM_OPS, NB201Genotype
from nasbench_harness.tabular.nb1shot1 import TEST, VALID, score
from nasbench_harness.tabular.nb101 import NB101Benchmark
from nasbench_harness.tabular.nb201 import NB201Benchmark
from nasbench_harness.tabular.nb201_metrics import canonical_dataset, resolve_metric
from nasbench_harness.tracking import MANIFEST_FILE, TRAJECTORY_FILE, RunDir, git_commit, versions

RANDOM_SEARCH, REGULARIZED_EVOLUTION = "random-search", "regularized-evolution"
MAX_SKIPS_PER_EVALUATION = 100
"""A run gives up (NotInBenchmarkError) after this many skipped cells per requested evaluation."""
MAX_EVALUATIONS = 1_000_000
"""Most table queries a baseline may make (NB201 has 15,625 cells): a larger ``n`` is taken for a typo."""
Genotype = NB201Genotype | NB1Shot1Genotype
STRING_COLUMNS = ("method", "genotype", "parent", "incumbent")
INT_COLUMNS = ("seed", "evaluation", "skipped_not_in_benchmark")
"""Column types of ``trajectory.parquet``; every other column is float64."""


@dataclass(frozen=True)
class TabularTrace:
    """One run of a baseline: a row for each evaluated architecture, in evaluation order.

    Row keys: ``evaluation`` (1-based), ``genotype``, ``parent`` (None for random draws),
    ``valid_acc`` (%), ``incumbent`` (best validation accuracy so far, first of ties),
    ``incumbent_valid_acc`` / ``incumbent_test_acc`` (%), ``regret_valid`` / ``regret_test``
    (points), ``skipped_not_in_benchmark`` (cells skipped so far because the table lacks them),
    then the method's own columns (REINFORCE: ``policy_entropy``). ``options``: the method's
    other settings (REINFORCE: ``learning_rate``, ``ema_momentum``), written to the manifest.
    """

    method: str
    space: str
    dataset: str
    seed: int
    rows: list[dict[str, Any]]
    population: int | None = None
    sample: int | None = None
    options: dict[str, float] = field(default_factory=dict)

    @property
    def skipped_not_in_benchmark(self) -> int:
        """How many cells the run skipped in total because the table lacks them."""
        return int(self.rows[-1]["skipped_not_in_benchmark"]) if self.rows else 0


@dataclass(frozen=True)
class _Problem:
    """A space, its table and its optimum, in the form the baselines need."""

    space: str
    dataset: str
    optimum: tuple[float, float]
    candidates: Callable[[np.random.Generator], Iterator[Genotype]]
    """Distinct configurations in uniformly random order."""
    evaluate: Callable[[Genotype], tuple[float, float] | None]
    """(valid %, test %), or None when the table lacks the cell."""


def random_search(bench: NB201Benchmark | NB101Benchmark, space: str, dataset: str, n: int, seed: int) -> TabularTrace:
    """Evaluate ``n`` distinct configurations drawn uniformly (numpy Generator seeded by ``seed``)."""
    check_options(n, seed)
    problem = make_problem(bench, space, dataset)
    log = EvaluationLog(problem, n)
    for genotype in problem.candidates(np.random.default_rng(seed)):
        log.offer(genotype)
        if log.done:
            break
    log.check_done()
    return TabularTrace(RANDOM_SEARCH, problem.space, problem.dataset, seed, log.rows())


def regularized_evolution(
    bench: NB201Benchmark | NB101Benchmark,
    space: str,
    dataset: str,
    n: int,
    seed: int,
    population: int = 10,
    sample: int = 3,
) -> TabularTrace:
    """Aging evolution with ``n`` evaluations: P random members, then tournaments of S, mutate, drop the oldest.

    The first ``population`` evaluations are distinct random configurations. In each later cycle,
    ``sample`` members are drawn from the population without replacement, and the one with the
    best validation accuracy (the first drawn, on ties) becomes the parent. Its :func:`mutate`
    child joins the population and the oldest member leaves. A child that the table lacks is
    skipped and the cycle is repeated.
    """
    check_options(n, seed, population, sample)
    problem = make_problem(bench, space, dataset)
    rng = np.random.default_rng(seed)
    log = EvaluationLog(problem, n)
    members: deque[tuple[Genotype, float]] = deque()
    for genotype in problem.candidates(rng):
        if len(members) == population or log.done:
            break
        valid = log.offer(genotype)
        if valid is not None:
            members.append((genotype, valid))
    log.check_done(min(population, n))
    while not log.done:
        drawn = rng.choice(len(members), size=sample, replace=False)
        parent = max((members[int(i)] for i in drawn), key=lambda member: member[1])[0]
        child = mutate(parent, rng)
        valid = log.offer(child, parent)
        if valid is not None:
            members.append((child, valid))
            members.popleft()
    return TabularTrace(REGULARIZED_EVOLUTION, problem.space, problem.dataset, seed, log.rows(), population, sample)


def mutate(genotype: Genotype, rng: np.random.Generator) -> Genotype:
    """A neighbour that differs from ``genotype`` in exactly one decision, chosen uniformly.

    NB201: one edge gets a different op. NB-1Shot1: one block gets a different op, or one node
    (a block or the output) with more than one allowed parent set gets a different one.
    """
    if isinstance(genotype, NB201Genotype):
        ops = list(genotype.ops)
        edge = int(rng.integers(NUM_EDGES))
        ops[edge] = _other(list(range(NUM_OPS)), ops[edge], rng)
        return NB201Genotype(tuple(ops))
    if isinstance(genotype, NB1Shot1Genotype):
        space = get_space(genotype.space)
        nodes = range(1, space.output_node + 1)
        decisions = [("op", b) for b in range(space.num_choice_blocks)]
        decisions += [("parents", node - 1) for node in nodes if len(space.parent_choices(node)) > 1]
        kind, i = decisions[int(rng.integers(len(decisions)))]
        if kind == "op":
            ops = list(genotype.ops)
            ops[i] = _other(list(NB101_OPS), ops[i], rng)
            return NB1Shot1Genotype(genotype.space, tuple(ops), genotype.parents)
        parents = list(genotype.parents)
        parents[i] = _other(list(space.parent_choices(i + 1)), parents[i], rng)
        return NB1Shot1Genotype(genotype.space, genotype.ops, tuple(parents))
    raise GenotypeError(f"mutate() takes an NB201Genotype or an NB1Shot1Genotype, got {type(genotype).__name__}")


def write_trace(trace: TabularTrace, run_dir: str | Path) -> Path:
    """Write the trace as a run directory (:class:`~nasbench_harness.tracking.RunDir`): its
    ``trajectory.parquet`` (one row per evaluation) and ``manifest.json`` (kind
    "tabular-baseline", status "finished")."""
    if not trace.rows:
        raise ConfigError(f"a trace to write needs at least one evaluated row; the {trace.method} trace has none")
    path = Path(run_dir)
    taken = [name for name in (MANIFEST_FILE, TRAJECTORY_FILE) if (path / name).exists()]
    if taken:
        raise RunDirError(f"{path} already holds {', '.join(taken)}; write the trace to an empty or new directory")
    valid_metric, test_metric = problem_metrics(trace.space, trace.dataset)
    run = RunDir(path)
    run.create(
        {
            "kind": "tabular-baseline",
            "method": trace.method,
            "space": trace.space,
            "dataset": trace.dataset,
            "seed": trace.seed,
            "n": len(trace.rows),
            "population": trace.population,
            "sample": trace.sample,
            **trace.options,
            "metrics": {"valid": valid_metric, "test": test_metric},
            "versions": versions(torch=False),
            "git": git_commit(),
        }
    )
    rows = [{"method": trace.method, "seed": trace.seed, **row} for row in trace.rows]
    kinds = {**dict.fromkeys(rows[0], "float"), **dict.fromkeys(STRING_COLUMNS, "str")}
    run.write_table(rows, {**kinds, **dict.fromkeys(INT_COLUMNS, "int")})
    last = trace.rows[-1]
    run.update_manifest(
        skipped_not_in_benchmark=trace.skipped_not_in_benchmark,
        incumbent=last["incumbent"],
        incumbent_test_acc=last["incumbent_test_acc"],
        regret_test=last["regret_test"],
    )
    run.set_status("finished")
    return path


# -- shared by the baselines -------------------------------------------------------------------
class EvaluationLog:
    """The evaluations of one run, plus the cells skipped because the table lacks them."""

    def __init__(self, problem: _Problem, n: int) -> None:
        self.problem, self.n = problem, n
        self.entries: list[tuple[str, str | None, float, float, int]] = []
        self.skipped = 0

    @property
    def done(self) -> bool:
        return len(self.entries) >= self.n

    def offer(self, genotype: Genotype, parent: Genotype | None = None) -> float | None:
        """Evaluate ``genotype``: its validation accuracy (%), or None when it was skipped."""
        scores = self.problem.evaluate(genotype)
        if scores is None:
            self.skipped += 1
            if self.skipped > MAX_SKIPS_PER_EVALUATION * self.n:
                self._give_up(f"{self.skipped:,} cells were not in it")
            return None
        parent_text = None if parent is None else parent.to_string()
        self.entries.append((genotype.to_string(), parent_text, scores[0], scores[1], self.skipped))
        return scores[0]

    def check_done(self, wanted: int | None = None) -> None:
        """Raise NotInBenchmarkError when the space ran out before ``wanted`` (default n) evaluations."""
        if len(self.entries) < (self.n if wanted is None else wanted):
            self._give_up(f"every configuration was tried ({self.skipped:,} were not in it)")

    def _give_up(self, why: str) -> None:
        raise NotInBenchmarkError(
            f"only {len(self.entries)} of the {self.n} requested evaluations on {self.problem.space} found a cell "
            f"in the imported table: {why}. Ask for fewer evaluations, or import a table that covers more "
            "of the space (e.g. the full nasbench_only108.tfrecord)"
        )

    def rows(self) -> list[dict[str, Any]]:
        """Trace rows, with the incumbent (first of ties) found by a running maximum."""
        names, parents, valid_list, test_list, skipped = zip(*self.entries, strict=True)
        valid, test = np.array(valid_list), np.array(test_list)
        best = np.maximum.accumulate(valid)
        improved = valid > np.concatenate(([-np.inf], best[:-1]))
        incumbent = np.maximum.accumulate(np.where(improved, np.arange(valid.size), 0))
        opt_valid, opt_test = self.problem.optimum
        return [
            {
                "evaluation": k + 1,
                "genotype": names[k],
                "parent": parents[k],
                "valid_acc": float(valid[k]),
                "incumbent": names[i],
                "incumbent_valid_acc": float(valid[i]),
                "incumbent_test_acc": float(test[i]),
                "regret_valid": float(opt_valid - valid[i]),
                "regret_test": float(opt_test - test[i]),
                "skipped_not_in_benchmark": int(skipped[k]),
            }
            for k, i in enumerate(incumbent.tolist())
        ]


def make_problem(bench: object, space: str, dataset: str) -> _Problem:
    """The problem of ``space``/``dataset`` on ``bench``: a ConfigError when the table does not fit."""
    valid_metric, test_metric = problem_metrics(space, dataset)
    number = get_space_info(space).number
    if number is None:
        if not isinstance(bench, NB201Benchmark):
            raise ConfigError(f"space nb201 is scored on an NB201Benchmark, got {type(bench).__name__}")
        valid, test = bench.values(valid_metric), bench.values(test_metric)
        optimum = (bench.optimum(valid_metric).value, bench.optimum(test_metric).value)

        def candidates(rng: np.random.Generator) -> Iterator[Genotype]:
            return (NB201Genotype.from_index(int(i)) for i in rng.permutation(NUM_CELLS))

        def evaluate(genotype: Genotype) -> tuple[float, float] | None:
            v, t = valid[genotype.index], test[genotype.index]  # type: ignore[union-attr]
            return None if np.isnan(v) or np.isnan(t) else (float(v), float(t))

        return _Problem(space, canonical_dataset(dataset), optimum, candidates, evaluate)

    if not isinstance(bench, NB101Benchmark):
        raise ConfigError(f"space {space} is scored on an NB101Benchmark (NB101 table), got {type(bench).__name__}")
    s = get_space(number)

    def distinct(rng: np.random.Generator) -> Iterator[Genotype]:
        seen: set[NB1Shot1Genotype] = set()
        while len(seen) < s.num_configurations:
            genotype = random_genotype(number, rng)
            if genotype not in seen:
                seen.add(genotype)
                yield genotype

    def score_pct(genotype: Genotype) -> tuple[float, float] | None:
        result = score(bench, genotype)  # type: ignore[arg-type]
        return (100.0 * result.validation_accuracy, 100.0 * result.test_accuracy) if result.in_benchmark else None

    optimum = (100.0 * (1.0 - s.valid_min_error), 100.0 * (1.0 - s.test_min_error))
    return _Problem(space, "cifar10", optimum, distinct, score_pct)


def problem_metrics(space: str, dataset: str) -> tuple[str, str]:
    """Names of the (validation, test) metrics a run on ``space`` and ``dataset`` is scored with."""
    info = get_space_info(space)
    try:
        canonical = canonical_dataset(dataset)
    except UnknownMetricError as exc:
        raise ConfigError(str(exc)) from None
    if info.benchmark == "nb101":
        if canonical != "cifar10":
            raise ConfigError(
                f"{space} is scored on NB101, which trained on CIFAR-10 only; use dataset 'cifar10', not {dataset!r}"
            )
        return str(VALID), str(TEST)
    return str(resolve_metric(canonical, "valid")), str(resolve_metric(canonical, "test"))


def check_options(n: int, seed: int, population: int | None = None, sample: int | None = None) -> None:
    """The baselines' integer options (``population`` and ``sample``: evolution's), checked before
    any table is read: a :class:`ConfigError` naming the first bad one and what it may be."""
    _check_int("n", n, 1, MAX_EVALUATIONS)
    _check_int("seed", seed, 0)
    if population is not None:
        _check_int("population", population, 2, MAX_EVALUATIONS)
        _check_int("sample", sample, 1, population, f"an integer in 1..population ({population})")


def _check_int(name: str, value: object, low: int, high: int | None = None, allowed: str = "") -> None:
    ok = isinstance(value, int | np.integer) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):  # type: ignore[operator]
        allowed = allowed or (f"an integer >= {low}" if high is None else f"an integer in {low}..{high}")
        raise ConfigError(f"{name} must be {allowed}, got {value!r}")


def _other(choices: list[Any], current: Any, rng: np.random.Generator) -> Any:
    """A uniformly drawn element of ``choices`` other than ``current``."""
    rest = [c for c in choices if c != current]
    return rest[int(rng.integers(len(rest)))]
