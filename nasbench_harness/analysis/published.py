"""Published numbers beside reproduced ones: the ``<suite>.published.yaml`` files next to the
suites, and the rows of the report's "Published vs reproduced" section.

A published file (``benchmarks/suites/nb201-robust.published.yaml`` beside ``nb201-robust.yaml``)::

    suite: nb201-robust              # the suite it belongs to (optional)
    entries:                         # one per published number (may be empty: [])
      - method: darts                # the harness's method name, as in the suite
        space: nb201
        dataset: cifar10             # the searched data set
        metric: test_acc             # test_acc (the searched data set's) or nb201_<d>_test
        mean: 54.30                  # in %, as published
        std: 0.00                    # null where the paper gives none
        n: null                      # runs behind mean and std; null where not stated
        preset: paper                # the preset whose runs it is comparable with
        source: "paper, table, row; owner/repo@commit file:line"
        note: "..."                  # optional
    not_sourced:                     # optional: suite cells with no number to cite, and why
      - {methods: [gdas], spaces: [nb201], datasets: [cifar10], reason: "..."}

Every key but ``note`` is required in an entry (``std`` and ``n`` may be null, which says "not
reported" explicitly); anything else is a :class:`ConfigError` naming the file and the entry.

**Verdicts** (:func:`compare_published`), per entry, from the finished runs of its method, space
and data set (as :func:`~nasbench_harness.analysis.runs.final_table` counts them; mean and sample
std from :func:`~nasbench_harness.analysis.aggregate.summarize`):

``within``
    our mean is at most ``max(std, MIN_TOLERANCE)`` from the published mean;
``outside``
    it is further away;
``not comparable``
    there are runs, but none at the entry's preset (ours is still shown: the runs' presets);
``no runs``
    no run of that method, space and data set finished with the metric.

Why a floor of :data:`MIN_TOLERANCE` (0.5 points): a published std of 0.00 means every seed ended
on the same cell (DARTS's collapse to 54.30 on CIFAR-10, DrNAS's 94.36), and without a floor any
other cell would be "outside", even one a few hundredths away: the same cell scored from another
release of the NB201 table, or a mean over our seeds that found two cells a tenth apart. Half a
point tells "the same result" from "a different one" where the results these suites reproduce
differ by whole points (54.30 against 94.36). Where no std was published it is the whole band.
The verdict compares means only; it is not a test, and the n columns say how much ours rests on.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from nasbench_harness.analysis.aggregate import SeedSummary, summarize
from nasbench_harness.analysis.runs import Runs
from nasbench_harness.errors import ConfigError
from nasbench_harness.presets import PRESETS
from nasbench_harness.tracking.schema import NB201_TEST_COLUMNS

__all__ = [
    "MIN_TOLERANCE",
    "NotSourced",
    "PublishedComparison",
    "PublishedEntry",
    "PublishedFile",
    "as_published",
    "compare_published",
    "load_published",
    "published_for_suite",
]

MIN_TOLERANCE = 0.5
"""The narrowest band (accuracy points) a published mean gets: see the module docstring."""
METRICS = ("test_acc", *NB201_TEST_COLUMNS)
"""The final accuracies an entry may name (the loader's ``final_<metric>`` columns)."""
COMPARABLE_PRESETS = (*PRESETS, "table")
"""An entry's ``preset``: a search preset, or ``table`` for a table-only baseline."""
PUBLISHED_SUFFIX = ".published.yaml"
_EPSILON = 1e-9  # |difference| <= tolerance up to float rounding (85.1 - 85.0 is 0.0999...)

_TOP_KEYS = {"suite", "entries", "not_sourced"}
_ENTRY_KEYS = ("method", "space", "dataset", "metric", "mean", "std", "n", "preset", "source")
_GAP_KEYS = ("methods", "spaces", "datasets", "reason")


@dataclass(frozen=True)
class PublishedEntry:
    """One published number: ``mean`` ± ``std`` (%) over ``n`` runs of ``method`` on ``space``,
    searched on ``dataset``, comparable with our runs at ``preset``; ``source`` says where it is written."""

    method: str
    space: str
    dataset: str
    metric: str
    mean: float
    std: float | None
    n: int | None
    preset: str
    source: str
    note: str | None = None

    def text(self) -> str:
        """``"54.30 ± 0.00"`` (the mean alone where no std was published)."""
        return f"{self.mean:.2f}" if self.std is None else f"{self.mean:.2f} ± {self.std:.2f}"


@dataclass(frozen=True)
class NotSourced:
    """Suite cells (every method x space x data set listed) with no published number, and why."""

    methods: tuple[str, ...]
    spaces: tuple[str, ...]
    datasets: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class PublishedFile:
    """A loaded published file (``path`` None when built in code)."""

    path: Path | None
    suite: str | None
    entries: tuple[PublishedEntry, ...]
    not_sourced: tuple[NotSourced, ...] = ()


@dataclass(frozen=True)
class PublishedComparison:
    """One row of "Published vs reproduced": the entry, ours (finished runs; at the entry's preset
    unless ``not comparable``), ours minus published, the band and the verdict with its reason."""

    entry: PublishedEntry
    ours: SeedSummary
    presets: tuple[str, ...]
    difference: float
    tolerance: float
    verdict: str
    reason: str

    def ours_text(self) -> str:
        """``"85.10 ± 0.10"`` (the mean alone for one run, "—" for none)."""
        o = self.ours
        return "—" if o.n == 0 else f"{o.mean:.2f}" if o.n < 2 else f"{o.mean:.2f} ± {o.std:.2f}"


def published_for_suite(suite: str | os.PathLike[str]) -> Path | None:
    """The published file next to a suite file (``x.yaml`` -> ``x.published.yaml``), or None."""
    path = Path(suite)
    candidate = path.with_name(path.name.rsplit(".", 1)[0] + PUBLISHED_SUFFIX)
    return candidate if candidate.is_file() else None


def load_published(path: str | os.PathLike[str]) -> PublishedFile:
    """Parse and check a published file strictly; ConfigError names the file and the entry."""
    from nasbench_harness.yaml_loader import load_yaml

    path = Path(path)
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        got = "an empty file" if raw is None else f"a {type(raw).__name__}"
        raise ConfigError(
            f"{path}: a published file is a mapping with 'entries' (and 'suite', 'not_sourced'), got {got}"
        )
    unknown = sorted(map(str, set(raw) - _TOP_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_TOP_KEYS))}")
    if "entries" not in raw:
        raise ConfigError(f"{path}: no 'entries' (give [] when nothing could be cited)")
    suite = raw.get("suite")
    if suite is not None and (not isinstance(suite, str) or not suite.strip()):
        raise ConfigError(f"{path}: suite: a suite name, got {suite!r:.80}")
    entries = tuple(_entry(path, i, item) for i, item in enumerate(_list(path, raw, "entries")))
    seen: dict[tuple[str, ...], int] = {}
    for i, e in enumerate(entries):
        key = (e.method, e.space, e.dataset, e.metric, e.preset)
        if key in seen:
            raise ConfigError(
                f"{path}: entries[{i}] ({_name(e)}): the same method, space, dataset, metric and preset as "
                f"entries[{seen[key]}]; keep one"
            )
        seen[key] = i
    gaps = tuple(_gap(path, i, item) for i, item in enumerate(_list(path, raw, "not_sourced", optional=True)))
    return PublishedFile(path, suite, entries, gaps)


def as_published(published: str | os.PathLike[str] | PublishedFile | Iterable[PublishedEntry]) -> PublishedFile:
    """A :class:`PublishedFile` from a path (loaded), a loaded file, or entries built in code."""
    if isinstance(published, PublishedFile):
        return published
    if isinstance(published, str | os.PathLike):
        return load_published(published)
    entries = tuple(published)
    bad = [e for e in entries if not isinstance(e, PublishedEntry)]
    if bad:
        raise ConfigError(f"published numbers: expected PublishedEntry records, got {type(bad[0]).__name__}")
    return PublishedFile(None, None, entries)


def compare_published(
    runs: Runs | pd.DataFrame,
    published: str | os.PathLike[str] | PublishedFile | Iterable[PublishedEntry],
    min_tolerance: float = MIN_TOLERANCE,
) -> list[PublishedComparison]:
    """One :class:`PublishedComparison` per published entry, in the file's order, against ``runs``
    (:func:`~nasbench_harness.analysis.runs.load_runs`'s, or its ``runs`` frame)."""
    frame = runs.runs if isinstance(runs, Runs) else runs
    return [_compare(entry, frame, min_tolerance) for entry in as_published(published).entries]


# -- internals --------------------------------------------------------------------------------
def _compare(entry: PublishedEntry, frame: pd.DataFrame, min_tolerance: float) -> PublishedComparison:
    tolerance = max(entry.std or 0.0, min_tolerance)
    cell = f"{entry.method} on {entry.space} · {entry.dataset}"
    if frame.empty:
        group = frame
    else:
        datasets = frame["dataset"].map(lambda d: _canonical(str(d)))
        keep = (frame["method"] == entry.method) & (frame["space"] == entry.space) & (datasets == entry.dataset)
        group = frame[keep]
    presets = tuple(sorted({str(p) for p in group["preset"]})) if len(group) else ()
    same = group[group["preset"] == entry.preset] if len(group) else group

    def row(ours: SeedSummary, verdict: str, reason: str, difference: float = math.nan) -> PublishedComparison:
        return PublishedComparison(entry, ours, presets, difference, tolerance, verdict, reason)

    if not len(group):
        return row(SeedSummary(math.nan, math.nan, 0), "no runs", f"no runs of {cell}")
    if not len(same):
        return row(
            _ours(group, entry.metric),
            "not comparable",
            f"our runs are at preset {', '.join(presets)}; the published number is comparable with "
            f"preset {entry.preset} (nbh sweep SUITE --preset {entry.preset})",
        )
    ours = _ours(same, entry.metric)
    if ours.n == 0:
        return row(
            ours,
            "no runs",
            f"{len(same)} run(s) of {cell} at preset {entry.preset}, none finished with a {entry.metric}",
        )
    difference = ours.mean - entry.mean
    inside = abs(difference) <= tolerance + _EPSILON
    band = f"the published std ({entry.std:.2f})" if entry.std is not None and entry.std >= min_tolerance else None
    band = band or f"the {min_tolerance:g}-point floor" + (" (no std published)" if entry.std is None else "")
    reason = f"|{difference:+.2f}| {'≤' if inside else '>'} {tolerance:.2f}, {band}"
    return row(ours, "within" if inside else "outside", reason, difference)


def _ours(group: pd.DataFrame, metric: str) -> SeedSummary:
    """Mean, std and n of ``final_<metric>`` over the finished runs (``final_table``'s count)."""
    done = group[group["status"] == "finished"]
    column = f"final_{metric}"
    return summarize(done[column] if column in done.columns else [])


def _canonical(dataset: str) -> str:
    """The data set's canonical spelling (the runs' config holds it so); unknown names unchanged."""
    from nasbench_harness.data.readers import canonical_dataset

    try:
        return canonical_dataset(dataset)
    except ConfigError:
        return dataset


def _name(entry: PublishedEntry) -> str:
    return f"{entry.method}, {entry.space}, {entry.dataset}"


def _list(path: Path, raw: Mapping[str, Any], key: str, optional: bool = False) -> list[Any]:
    value = raw.get(key)
    if value is None and optional:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{path}: {key}: a list, got {type(value).__name__}")
    return value


def _entry(path: Path, i: int, item: Any) -> PublishedEntry:
    from nasbench_harness.data.readers import DATASETS
    from nasbench_harness.spaces.catalog import SPACE_NAMES

    if not isinstance(item, dict):
        raise ConfigError(f"{path}: entries[{i}]: a mapping of {', '.join(_ENTRY_KEYS)}, got {type(item).__name__}")
    label = f"entries[{i}]" + (f" ({item.get('method')}, {item.get('space')}, {item.get('dataset')})" if item else "")

    def fail(message: str) -> ConfigError:
        return ConfigError(f"{path}: {label}: {message}")

    unknown = sorted(map(str, set(item) - {*_ENTRY_KEYS, "note"}))
    if unknown:
        raise fail(f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(_ENTRY_KEYS)}, note")
    missing = [k for k in _ENTRY_KEYS if k not in item]
    if missing:
        raise fail(f"missing {', '.join(missing)} (std and n may be null: not reported)")
    text = {k: _text(item[k], k, fail) for k in ("method", "space", "dataset", "metric", "preset", "source")}
    note = None if item.get("note") is None else _text(item["note"], "note", fail)
    dataset = _canonical(text["dataset"])
    if dataset not in DATASETS:
        raise fail(f"dataset: unknown data set {text['dataset']!r}; one of {', '.join(DATASETS)}")
    if text["space"] not in SPACE_NAMES:
        raise fail(f"space: unknown space {text['space']!r}; one of {', '.join(SPACE_NAMES)}")
    if text["metric"] not in METRICS or (text["metric"] != "test_acc" and text["space"] != "nb201"):
        allowed = METRICS if text["space"] == "nb201" else ("test_acc",)
        raise fail(
            f"metric: {text['metric']!r} is not a final accuracy of {text['space']}; one of {', '.join(allowed)}"
        )
    if text["preset"] not in COMPARABLE_PRESETS:
        raise fail(f"preset: unknown preset {text['preset']!r}; one of {', '.join(COMPARABLE_PRESETS)}")
    mean = _number(item["mean"], "mean", fail)
    std = None if item["std"] is None else _number(item["std"], "std", fail)
    if std is not None and std < 0:
        raise fail(f"std: a standard deviation is >= 0, got {std}")
    n = item["n"]
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise fail(f"n: a number of runs (an integer >= 1) or null, got {n!r:.80}")
    return PublishedEntry(
        text["method"], text["space"], dataset, text["metric"], mean, std, n, text["preset"], text["source"], note
    )


def _gap(path: Path, i: int, item: Any) -> NotSourced:
    if not isinstance(item, dict):
        raise ConfigError(f"{path}: not_sourced[{i}]: a mapping of {', '.join(_GAP_KEYS)}, got {type(item).__name__}")
    keys = set(map(str, item))
    if keys != set(_GAP_KEYS):
        wrong = ", ".join(sorted(keys - set(_GAP_KEYS))) or "none"
        raise ConfigError(
            f"{path}: not_sourced[{i}]: needs exactly {', '.join(_GAP_KEYS)} (missing: "
            f"{', '.join(k for k in _GAP_KEYS if k not in keys) or 'none'}; unknown: {wrong})"
        )
    lists = []
    for key in _GAP_KEYS[:3]:
        values = item[key]
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
            raise ConfigError(f"{path}: not_sourced[{i}]: {key}: a non-empty list of names, got {values!r:.80}")
        lists.append(tuple(_canonical(v) if key == "datasets" else v for v in values))
    if not isinstance(item["reason"], str) or not item["reason"].strip():
        raise ConfigError(f"{path}: not_sourced[{i}]: reason: say what was searched and why there is no number")
    return NotSourced(lists[0], lists[1], lists[2], item["reason"].strip())


def _text(value: Any, key: str, fail: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise fail(f"{key}: a non-empty text, got {value!r:.80}")
    return value.strip()


def _number(value: Any, key: str, fail: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise fail(f"{key}: a number (accuracy in %), got {value!r:.80}")
    return float(value)
