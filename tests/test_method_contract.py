"""Every registered method, the same checks: two epochs on the synthetic NB201 table with every
column filled, and on NB-1Shot1 either two epochs or a clear refusal. In both, the trajectory
holds exactly the engine's and the space's columns (``tracking.schema``) and the columns the
method's components declare (``state_columns()``, asked of the components the run used, after the
run: some declare theirs only once an epoch has set them), each documented for that method."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from tiny import tiny_search, trajectory

from nasbench_harness.errors import ConfigError
from nasbench_harness.methods.engine.base import Method
from nasbench_harness.methods.engine.loop import Search
from nasbench_harness.methods.engine.selection import COLUMNS as SELECTION_COLUMNS
from nasbench_harness.registry import METHODS, make_method
from nasbench_harness.tracking import schema

FILLED = {
    "epoch", "schedule_epoch", "train_loss", "train_acc", "valid_loss", "valid_acc", "final_valid_acc", "gap",
    "genotype", "regret_valid", "regret_test", "eigenvalue", "lr", "arch_lr", "epoch_time_s", "tracking_time_s",
    "wall_time_s",
}  # fmt: skip
"""Columns never null on NB201 in the tiny run (the eigenvalue is measured every epoch)."""
OPTIONAL = {"spearman_valid", *SELECTION_COLUMNS}
"""Engine columns written only when configured (``tracking.correlation_sample``, ``selection.perturbation``)."""
LATE = {"es_local_avg", "es_growth"}
"""Declared columns that need several epochs' eigenvalues before they hold a number."""


pytestmark = pytest.mark.usefixtures("one_thread")


def engine_columns(space: str) -> set[str]:
    """The columns the loop and the space adapter write for every method (the schema's scopes)."""
    scopes = [scope for scope in schema.search_scopes(space) if scope != "method"]
    return {column.name for scope in scopes for column in schema.columns(scope)}


def documented_for(column: str) -> list[str]:
    """The methods the schema documents ``column`` for (plugins' columns: "plugins")."""
    entry = schema.lookup(column, ("method",))
    if entry is None:
        return []
    return [p.strip().split()[-1] for p in re.sub(r"\(.*?\)", "", entry.methods).split(",")]


def run_and_capture(tmp_path: Path, bench: Any, method: str, space: str) -> tuple[list[dict[str, Any]], Method]:
    """The tiny run's trajectory rows and the method object the run built (its components as
    they stand after the last epoch)."""
    built: list[Method] = []
    original = Search.run

    def run(self: Search, *args: Any, **kwargs: Any) -> Any:
        built.append(self.state.method)
        return original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Search, "run", run)
        rows = trajectory(tiny_search(tmp_path, bench, method=method, space=space))
    (used,) = built
    return rows, used


def declared_columns(method: Method) -> dict[str, list[str]]:
    """Column -> the names of the components declaring it."""
    out: dict[str, list[str]] = {}
    for component in method.all_components:
        for column in component.state_columns():
            out.setdefault(column, []).append(f"{type(component).__name__} ({component.name})")
    return out


def check_columns(rows: list[dict[str, Any]], method: Method, space: str) -> set[str]:
    """Assert the trajectory's columns are the engine's, the space's and the declared ones; return the declared."""
    by_column = declared_columns(method)
    declared = set(by_column)
    common = engine_columns(space)
    undocumented = {c for c in declared if method.name not in documented_for(c)}
    assert not undocumented, f"{method.name}: columns tracking/schema.py does not document for it: {undocumented}"
    twice = {c: who for c, who in by_column.items() if len(who) > 1}
    assert not twice, f"{method.name}: columns declared by more than one component (the last one wins): {twice}"
    clash = declared & common
    assert not clash, f"{method.name}: components declare engine/space columns they would overwrite: {clash}"
    before = set(make_method(method.name).state_columns())
    assert before <= declared, f"{method.name}: declared before the run but not after: {before - declared}"
    for row in rows:
        missing = (common - OPTIONAL | declared) - set(row)
        assert not missing, f"{method.name}: columns missing from the trajectory: {missing}"
        undeclared = set(row) - common - declared
        assert not undeclared, f"{method.name}: trajectory columns no component declares: {undeclared}"
    return declared


@pytest.mark.parametrize("method", list(METHODS))
def test_two_epochs_on_nb201_fill_every_column(method: str, tmp_path: Path, synthetic_nb201: Any) -> None:
    rows, used = run_and_capture(tmp_path, synthetic_nb201, method, "nb201")
    assert [r["epoch"] for r in rows] == [1, 2]
    declared = check_columns(rows, used, "nb201")
    for row in rows:
        for column in FILLED:
            assert row[column] is not None, column
        assert 0 <= row["valid_acc"] <= 100 and 0 <= row["final_valid_acc"] <= 100
    last = rows[-1]
    filled = {c for c in declared if last[c] is not None}
    assert filled >= declared - LATE, declared - filled


@pytest.mark.parametrize("method", list(METHODS))
def test_on_nb1shot1_a_method_runs_or_refuses_clearly(method: str, tmp_path: Path, small_nb101: Any) -> None:
    refusal = None
    try:
        make_method(method).check_space("nb1shot1-1")
    except ConfigError as exc:
        refusal = str(exc)
    if refusal is not None:
        assert refusal.startswith(f"method {method!r} cannot run on nb1shot1-1: ") and len(refusal) > 60
        with pytest.raises(ConfigError, match="cannot run on nb1shot1-1"):
            tiny_search(tmp_path, small_nb101, method=method, space="nb1shot1-1")
        return
    rows, used = run_and_capture(tmp_path, small_nb101, method, "nb1shot1-1")
    assert [r["epoch"] for r in rows] == [1, 2] and all(r["module_hash"] for r in rows)
    check_columns(rows, used, "nb1shot1-1")
