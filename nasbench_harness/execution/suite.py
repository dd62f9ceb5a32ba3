"""Experiment suites: a YAML grid of spaces x datasets x methods (with option grids) x seeds,
expanded into search runs with stable ids and directories.

A suite file::

    name: nb201-robust
    reproduces: "..."              # what the suite reproduces (shown by --dry-run and in reports)
    command: nbh sweep benchmarks/suites/nb201-robust.yaml
    spaces: [nb201]
    datasets: [cifar10]
    seeds: [0, 1, 2, 3, 4]
    methods:
      - darts
      - name: rdarts-l2
        options: {weight_decay: [0.0009, 0.0081]}   # a grid: one run per combination
    overrides: {tracking: {eigen_every: 2}}          # any `nbh search --set` key, for every run
    variants:                                        # presets with their own overrides
      cpu: {}
      paper: {}

Every run's config is a full :class:`~nasbench_harness.config.SearchConfig`; its
directory is ``<root>/<suite>/<preset>/<space>/<dataset>/<method>[-<options>]/seed-<seed>``, so
the same config always lands in the same directory (a re-run skips or resumes it). Unknown keys,
unknown methods, spaces a method cannot run on, empty grids, bad ``overrides`` and anything
listed twice (a seed, a space, a data set, a method with its options, a grid value: two runs in
one directory) are errors naming the file and line.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from nasbench_harness.errors import ConfigError
from nasbench_harness.spaces.catalog import SPACE_NAMES as SPACES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class MethodGrid(_Strict):
    """A method and a grid of its options (each value a list: one run per combination)."""

    name: str
    options: dict[str, list[Any]] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        from nasbench_harness.registry import METHODS

        if name not in METHODS:
            raise ValueError(f"unknown method {name!r}; registered methods: {', '.join(sorted(METHODS))}")
        return name

    @field_validator("options")
    @classmethod
    def _non_empty(cls, options: dict[str, list[Any]]) -> dict[str, list[Any]]:
        empty = [key for key, values in options.items() if not values]
        if empty:
            raise ValueError(f"option grid(s) {', '.join(empty)} are empty; give at least one value")
        return options

    def combinations(self) -> list[dict[str, Any]]:
        """Every combination of the option grid ({} when there is none)."""
        keys = sorted(self.options)
        return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(self.options[k] for k in keys))]


class Suite(_Strict):
    """A validated suite file (see the module docstring)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    reproduces: str = Field(min_length=1)
    command: str = Field(min_length=1)
    spaces: list[str] = Field(min_length=1)
    datasets: list[str] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    methods: list[MethodGrid] = Field(min_length=1)
    overrides: dict[str, Any] = Field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = Field(min_length=1)
    _source: Path | None = PrivateAttr(None)  # the file it was read from, for errors found later

    @field_validator("methods", mode="before")
    @classmethod
    def _names(cls, methods: Any) -> Any:
        if isinstance(methods, list):
            return [{"name": m} if isinstance(m, str) else m for m in methods]
        return methods

    @field_validator("spaces")
    @classmethod
    def _spaces(cls, spaces: list[str]) -> list[str]:
        unknown = [s for s in spaces if s not in SPACES]
        if unknown:
            raise ValueError(f"unknown space(s) {', '.join(unknown)}; choose from {', '.join(SPACES)}")
        return spaces

    @field_validator("datasets")
    @classmethod
    def _datasets(cls, datasets: list[str]) -> list[str]:
        from nasbench_harness.data import canonical_dataset

        for dataset in datasets:
            canonical_dataset(dataset)
        return datasets

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, seeds: list[int]) -> list[int]:
        if any(seed < 0 for seed in seeds):
            raise ValueError(f"seeds are integers >= 0, got {min(seeds)}")
        return seeds

    @field_validator("variants")
    @classmethod
    def _variants(cls, variants: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        from nasbench_harness.config import PRESETS

        unknown = [v for v in variants if v not in PRESETS]
        if unknown:
            raise ValueError(f"unknown variant(s) {', '.join(unknown)}; a variant is a preset: {', '.join(PRESETS)}")
        return variants


@dataclass(frozen=True)
class PlannedRun:
    """One run of a suite: its id, its config and its directory."""

    run_id: str
    config: Any  # SearchConfig
    path: Path


def load_suite(path: str | os.PathLike[str]) -> Suite:
    """Parse and validate a suite file; errors name the file, the line and what would be right."""
    from nasbench_harness.yaml_loader import load_yaml

    raw = load_yaml(path)
    if not isinstance(raw, dict):
        got = "an empty file" if raw is None else f"a {type(raw).__name__}"
        raise ConfigError(f"{path}: a suite is a mapping of keys (name, reproduces, spaces, ...), got {got}")
    try:
        suite = Suite.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError("; ".join(_problems(Path(path), exc.errors(), ()))) from None
    suite._source = Path(path)
    _check_repeats(suite, Path(path))
    _check_overrides(suite, Path(path))
    return suite


def _check_repeats(suite: Suite, path: Path) -> None:
    """ConfigError at the second of two equal entries (a seed, space, data set, method with its
    options, or option value): both would plan the same runs, which then report each other busy."""
    from nasbench_harness.data import canonical_dataset

    lists: list[tuple[tuple[Any, ...], list[Any]]] = [
        (("seeds",), list(suite.seeds)),
        (("spaces",), list(suite.spaces)),
        (("datasets",), [canonical_dataset(d) for d in suite.datasets]),
        (("methods",), [(m.name, sorted(m.options.items(), key=repr)) for m in suite.methods]),
    ]
    for i, grid in enumerate(suite.methods):
        lists += [(("methods", i, "options", key), values) for key, values in grid.options.items()]
    for loc, values in lists:
        for j, value in enumerate(values):
            if value in values[:j]:
                shown = value[0] if loc == ("methods",) else value
                raise ConfigError(
                    f"{path}, line {_line_of(path, (*loc, j))}: {'.'.join(map(str, loc))}: {shown!r:.80} is listed "
                    "twice (it would plan the same runs twice); list it once"
                )


def _problems(path: Path, errors: list[Any], prefix: tuple[Any, ...], fallback: int | None = None) -> list[str]:
    """One ``file, line N: key: message`` per pydantic error (locations under ``prefix``)."""
    problems = []
    for err in errors:
        loc = prefix + tuple(err["loc"])
        line = _line_of(path, loc) or fallback
        where = ".".join(map(str, loc)) or "(suite)"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        elif err["type"] != "value_error":
            message += f" (got {str(err.get('input'))[:80]})"
        problems.append(f"{path}{f', line {line}' if line else ''}: {where}: {message}")
    return problems


def _check_overrides(suite: Suite, path: Path) -> None:
    """Validate ``overrides`` under each variant as every run will see them; errors name the file,
    the line of the bad key (in ``variants.<preset>`` or in ``overrides``) and the key."""
    from nasbench_harness.config import SearchConfig, config_values, merge_overrides

    for variant, space in itertools.product(suite.variants, suite.spaces):
        dataset = suite.datasets[0] if space == "nb201" else "cifar10"
        values = merge_overrides(suite.overrides, suite.variants[variant])
        run = {"space": space, "dataset": dataset, "method": suite.methods[0].name, "seed": suite.seeds[0]}
        try:
            SearchConfig.model_validate(config_values(variant, merge_overrides(values, run)))
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                loc = tuple(err["loc"])
                set_in = ("variants", variant) if _line_of(path, ("variants", variant, *loc), exact=True) else None
                prefix = set_in or ("overrides",)
                problems += _problems(path, [err], prefix, fallback=_line_of(path, prefix))
            raise ConfigError("; ".join(problems)) from None


def expand(suite: Suite, variant: str, root: str | os.PathLike[str] = "results") -> list[PlannedRun]:
    """The runs of ``variant``: spaces x datasets x methods x option combinations x seeds.

    NB-1Shot1 spaces take cifar10 only (other datasets are skipped for them); a method that
    cannot run on a space is an error naming both.
    """
    from nasbench_harness.config import build_config, merge_overrides
    from nasbench_harness.registry import make_method

    if variant not in suite.variants:
        raise ConfigError(f"suite {suite.name!r} has no variant {variant!r}; it has {', '.join(suite.variants)}")
    runs: list[PlannedRun] = []
    planned: set[str] = set()
    for space, dataset, (index, grid) in itertools.product(suite.spaces, suite.datasets, enumerate(suite.methods)):
        if space != "nb201" and dataset != "cifar10":
            continue
        for options in grid.combinations():
            try:
                make_method(grid.name, options).check_space(space)
            except ConfigError as exc:
                raise ConfigError(f"{_where(suite, ('methods', index))}{exc}") from None
            for seed in suite.seeds:
                values = merge_overrides(suite.overrides, suite.variants[variant])
                run = {"space": space, "dataset": dataset, "method": grid.name, "seed": seed}
                values = merge_overrides(values, run)
                values["method_options"] = {**values.get("method_options", {}), **options}
                try:
                    config = build_config(variant, values)
                except ConfigError as exc:
                    raise ConfigError(f"{_where(suite, ('overrides',))}{exc}") from None
                label = grid.name + (f"-{_options_label(options)}" if options else "")
                path = Path(root) / suite.name / variant / space / config.dataset / label / f"seed-{seed}"
                run_id = f"{suite.name}/{variant}/{space}/{config.dataset}/{label}/seed-{seed}"
                if run_id in planned:  # e.g. option values whose labels coincide ("a/b" and "a_b")
                    raise ConfigError(
                        f"{_where(suite, ('methods', index))}methods.{index}: plans the run {run_id} a second "
                        "time (two entries give it the same directory); list each run once"
                    )
                planned.add(run_id)
                runs.append(PlannedRun(run_id, config, path))
    if not runs:
        raise ConfigError(f"suite {suite.name!r} expands to no runs (NB-1Shot1 spaces take cifar10 only)")
    return runs


def _where(suite: Suite, loc: tuple[Any, ...]) -> str:
    """``file, line N: `` of ``loc`` in the suite's file (``suite NAME: `` when not read from one)."""
    source = suite._source
    if source is None:
        return f"suite {suite.name}: "
    line = _line_of(source, loc)
    return f"{source}{f', line {line}' if line else ''}: "


def _options_label(options: dict[str, Any]) -> str:
    """A readable, filesystem-safe label of option values, e.g. ``weight_decay=0.0081``."""
    text = ",".join(f"{k}={options[k]}" for k in sorted(options))
    return re.sub(r"[^A-Za-z0-9_.,=+-]", "_", text)


def _line_of(path: Path, loc: tuple[Any, ...], exact: bool = False) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (the deepest existing one; with ``exact``, None
    unless all of ``loc`` exists), or None."""
    import yaml

    try:
        node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, yaml.YAMLError):
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if match is None:
                return None if exact else line
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return None if exact else line
    return line
