"""The trajectory-column schema: results/README.md shows exactly its tables, the searches write
only columns it documents, and the names other modules use come from it."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
from tiny import TINY, TINY_1SHOT1

from nasbench_harness.config import build_config
from nasbench_harness.data import synthetic_search_data
from nasbench_harness.errors import ConfigError, UnknownMetricError
from nasbench_harness.methods.engine.run import run_search
from nasbench_harness.registry import METHODS
from nasbench_harness.tracking import read_trajectory, schema

ROOT = Path(__file__).resolve().parents[1]


def _render_tool() -> Any:
    spec = importlib.util.spec_from_file_location("render_columns", ROOT / "tools" / "render_columns.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_readme_shows_the_schema() -> None:
    text = (ROOT / "results" / "README.md").read_text()
    blocks = re.findall(r"<!-- columns:(\w+) -->", text)
    assert sorted(blocks) == sorted(schema.SCOPES)  # every scope has its table, once
    assert _render_tool().render(text) == text, "results/README.md is stale: run python tools/render_columns.py"


def test_render_replaces_a_stale_table() -> None:
    stale = "intro\n<!-- columns:nb201 -->\n| old | table |\n<!-- /columns -->\nafter\n"
    rendered = _render_tool().render(stale)
    assert "| old | table |" not in rendered and "`nb201_cifar10_test`" in rendered
    assert rendered.startswith("intro\n") and rendered.endswith("after\n")


def test_entries_are_unique_and_complete() -> None:
    for scope in schema.SCOPES:
        names = [c.name for c in schema.columns(scope)]
        assert len(names) == len(set(names)), scope
    for column in schema.COLUMNS:
        assert column.meaning and column.meaning == " ".join(column.meaning.split())
        assert column.unit in ("", "%", "points", "nats", "s", "edges", "blocks")
        assert (column.scope == "method") == bool(column.methods)


def test_method_columns_name_registered_methods() -> None:
    for column in schema.columns("method"):
        parts = [p.strip() for p in re.sub(r"\(.*?\)", "", column.methods).split(",")]
        named = [p for p in parts if not p.endswith("plugins")]  # "`--regularizer` plugins": any user's
        assert named, column.name
        for name in named:
            assert name in METHODS, f"{column.name}: {name!r} is not a registered method"


def test_lookup_prefers_the_most_specific_entry() -> None:
    assert schema.lookup("reg_beta_decay").name == "reg_<name>"
    assert schema.lookup("reg_beta_decay_weight").name == "reg_<name>_weight"
    assert schema.lookup("nb201_cifar10_test", ("nb1shot1",)) is None
    assert schema.lookup("regret_test", ("nb1shot1",)).scope == "nb1shot1"
    assert schema.lookup("no_such_column") is None


@pytest.mark.parametrize(
    ("dataset", "split", "column"),
    [
        ("cifar10", "test", "nb201_cifar10_test"),
        ("cifar10-valid", "valid", "nb201_cifar10_valid"),
        ("cifar100", "valid", "nb201_cifar100_valid"),
        ("ImageNet16-120", "test", "nb201_imagenet16_120_test"),
        ("imagenet16_120", "valid", "nb201_imagenet16_120_valid"),
    ],
)
def test_nb201_table_column(dataset: str, split: str, column: str) -> None:
    assert schema.nb201_table_column(dataset, split) == column
    assert schema.lookup(column, ("nb201",)) is not None


def test_nb201_table_column_errors() -> None:
    with pytest.raises(ConfigError, match="valid and test"):
        schema.nb201_table_column("cifar10", "train")
    with pytest.raises(UnknownMetricError):
        schema.nb201_table_column("mnist", "test")


def _search(tmp_path: Path, bench: Any, settings: dict[str, Any], method: str) -> list[str]:
    config = build_config("cpu", {**settings, "epochs": 2, "method": method})
    data = synthetic_search_data(n_train=32, n_valid=32, image_size=16, seed=0)
    result = run_search(config, tmp_path / method, device="cpu", data=data, bench=bench)
    return read_trajectory(result.path).column_names


def _undocumented(names: list[str], space: str) -> list[str]:
    return [n for n in names if schema.lookup(n, schema.search_scopes(space)) is None]


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("method", ["darts-es", "beta-darts"])
def test_nb201_search_writes_documented_columns(tmp_path: Path, synthetic_nb201: Any, method: str) -> None:
    settings = {
        **TINY,
        "tracking": {**TINY["tracking"], "correlation_sample": 4},
        "selection": {"perturbation": True, "tune_epochs": 0},
    }
    names = _search(tmp_path, synthetic_nb201, settings, method)
    assert not _undocumented(names, "nb201")
    assert {c.name for c in schema.columns("common")} <= set(names)
    assert {c.name for c in schema.columns("nb201")} <= set(names)


@pytest.mark.usefixtures("one_thread")
def test_nb1shot1_search_writes_documented_columns(tmp_path: Path, small_nb101: Any) -> None:
    names = _search(tmp_path, small_nb101, TINY_1SHOT1, "darts")
    assert not _undocumented(names, "nb1shot1")
    assert {c.name for c in schema.columns("nb1shot1")} <= set(names)
    assert not {"genotype_index", "nb201_cifar10_test"} & set(names)
