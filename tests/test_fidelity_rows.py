"""The fidelity evidence (``benchmarks/fidelity/``) is about the presets that ship: the row measured
on the acceptance seeds is the ``collapse`` preset, key for key, and the NB-1Shot1 rows name presets
that exist. The runs themselves are evidence, not tests (minutes each)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from nasbench_harness.config import PRESETS, build_config

FIDELITY = Path(__file__).parents[1] / "benchmarks" / "fidelity"


@pytest.fixture
def fidelity(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The two scripts, imported as they import each other (from their own folder)."""
    monkeypatch.syspath_prepend(str(FIDELITY))
    return importlib.import_module("collapse_search"), importlib.import_module("nb1shot1_regret")


def test_the_acceptance_row_is_the_collapse_preset(fidelity: Any) -> None:
    collapse_search, _ = fidelity
    overrides, why = collapse_search.SETTINGS["alr10-e100"]
    measured = build_config("cpu", overrides).to_dict()
    shipped = build_config("collapse").to_dict()
    assert measured.pop("preset") == "cpu" and shipped.pop("preset") == "collapse"
    assert measured == shipped and "collapse preset" in why


def test_every_setting_builds_on_both_scripts(fidelity: Any) -> None:
    collapse_search, nb1shot1_regret = fidelity
    for overrides, _ in collapse_search.SETTINGS.values():
        build_config("cpu", overrides)
    for preset, overrides, _ in nb1shot1_regret.ROWS.values():
        assert preset in PRESETS and build_config(preset, overrides).space.startswith("nb1shot1")
