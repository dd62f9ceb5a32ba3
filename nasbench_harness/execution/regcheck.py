"""Checking a regularizer against a suite's baselines (``nbh check-regularizer``), in four steps:

1. :func:`plan_check`: the suite's runs (the baselines) and the candidates, i.e. the runs of one
   baseline method again with the regularizer added, each in its own directory
   ``<root>/<suite>/<preset>/candidates/<space>/<dataset>/<method>+<Regularizer>/seed-<k>``;
2. :func:`train_check`: train whatever of both is not finished yet (a sweep: finished runs are
   reused, interrupted ones resume);
3. :func:`compare_check`: the candidate against its baseline method on the final tabular test
   accuracy, per (space, dataset) cell, as ``nbh compare`` does;
4. :func:`write_check_report`: one HTML report of the baselines and the candidates.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasbench_harness.execution.suite import PlannedRun

if TYPE_CHECKING:
    from nasbench_harness.analysis.stats import Comparison
    from nasbench_harness.execution.local import Outcome


@dataclass(frozen=True)
class RegularizerCheck:
    """A planned check: which runs are the baselines, which the candidates, and where they live."""

    suite: str
    preset: str
    root: Path
    regularizer: str  # the regularizer's class name
    baseline_method: str
    baselines: list[PlannedRun]  # every run of the suite's preset
    chosen: list[PlannedRun]  # the runs of baseline_method, which the candidates repeat
    candidates: list[PlannedRun]

    @property
    def sweep_dir(self) -> Path:
        """Where ``sweep.json`` (every run's status) is written: ``<root>/<suite>/<preset>``."""
        return self.root / self.suite / self.preset

    @property
    def label(self) -> str:
        """The candidates' method label, e.g. ``darts+SkipPenalty``."""
        return f"{self.baseline_method}+{self.regularizer}"


def plan_check(
    regularizer: str,
    suite: str | os.PathLike[str],
    *,
    preset: str,
    root: str | os.PathLike[str] = "results",
    baseline_method: str = "darts",
    weight: str | float = "1",
    params: Mapping[str, Any] | None = None,
) -> RegularizerCheck:
    """Plan the check of ``regularizer`` (``file.py:Class``, ``package.module:Class``, a built-in
    or an entry point) on the suite file ``suite``'s ``preset`` variant; ``weight`` is a number or
    ``START:END`` (a linear ramp over the epochs). Nothing is trained."""
    from nasbench_harness.config import validate_config
    from nasbench_harness.errors import ConfigError
    from nasbench_harness.execution.suite import expand, load_suite
    from nasbench_harness.registry import load_regularizer

    cls = load_regularizer(regularizer)
    spec = load_suite(suite)
    baselines = expand(spec, preset, root)
    chosen = [r for r in baselines if r.config.method == baseline_method]
    if not chosen:
        raise ConfigError(f"suite {spec.name!r} has no {baseline_method!r} runs to add the regularizer to")
    plugin = {"ref": regularizer, "weight": weight, "params": dict(params or {})}
    label = f"{baseline_method}+{cls.__name__}"
    candidates = []
    for run in chosen:
        values = {**run.config.to_dict(), "plugins": [plugin]}
        c = run.config
        path = Path(root) / spec.name / preset / "candidates" / c.space / c.dataset / label / run.path.name
        candidates.append(PlannedRun(f"{run.run_id}+{cls.__name__}", validate_config(values), path))
    return RegularizerCheck(spec.name, preset, Path(root), cls.__name__, baseline_method, baselines, chosen, candidates)


def train_check(
    check: RegularizerCheck,
    *,
    workers: int | None = None,
    device: str = "cpu",
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    backend: Any = None,
    placement: Any = None,
) -> list[Outcome]:
    """Train the baselines and the candidates not finished yet, on ``backend`` as ``placement``
    says (default: this machine, ``workers`` runs at once on ``device``); every run's outcome,
    failures included."""
    from nasbench_harness.execution.local import run_sweep

    return run_sweep(
        [*check.baselines, *check.candidates],
        check.sweep_dir,
        workers=workers,
        device=device,
        data_dir=data_dir,
        cache_dir=cache_dir,
        on_outcome=on_outcome,
        backend=backend,
        placement=placement,
    )


def compare_check(check: RegularizerCheck, threshold: float = -0.5) -> list[Comparison]:
    """The candidates against the baseline method's runs on the final tabular test accuracy (in %),
    one comparison per (space, dataset); ``threshold`` (<= 0, points) is the largest tolerated drop."""
    from nasbench_harness.analysis.runs import load_runs
    from nasbench_harness.analysis.stats import compare_runs

    base = load_runs([r.path for r in check.chosen])
    cand = load_runs([r.path for r in check.candidates])
    return compare_runs(base, cand, threshold=threshold)


def default_report_path(check: RegularizerCheck) -> Path:
    """``reports/<suite>-<Regularizer>.html``."""
    return Path("reports") / f"{check.suite}-{check.regularizer}.html"


def write_check_report(check: RegularizerCheck, out: str | os.PathLike[str] | None = None) -> Path:
    """Write the HTML report of the baselines and the candidates (compared with the baseline
    method) to ``out`` (default: :func:`default_report_path`); returns its path."""
    from nasbench_harness.report.build import write_report

    target = Path(out) if out is not None else default_report_path(check)
    write_report(
        [r.path for r in check.baselines] + [r.path for r in check.candidates],
        target,
        f"{check.regularizer} vs {check.suite}",
        check.baseline_method,
    )
    return target
