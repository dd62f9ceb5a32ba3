"""Build one self-contained HTML report from a set of run directories.

Sections: a headline (per space, dataset and method: the final tabular test accuracy, parameter-free
ops, eigenvalue and gap over seeds, and the verdict against ``--baseline``, colour-coded), the
trajectories as small multiples (a row of panels per space and data set, a column per metric) and
the final-accuracy box plot, the final-results table, the comparison with the baseline, the
published numbers beside ours (``published``: a ``<suite>.published.yaml``), coverage notes
(NB-1Shot1 cells missing from a partial NB101 table), and a compact per-run table (config
differences, errors, versions and data checksums folded into ``<details>``).

Figures are inlined as SVG with a ``<title>`` on every line and point (hover text, no JavaScript),
each shown at most at its natural size, so the file opens anywhere without a network and its type
stays the size it was drawn at. A method has one colour in every figure and in the headline.
Never imports torch.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from nasbench_harness.errors import NbhError

FIGURES: tuple[tuple[str, str, str], ...] = (
    (
        "trajectories",
        "trajectories",
        "Over the epochs, per space and data set: tabular test accuracy of the derived cell; test regret "
        "(log scale, solid) with the supernet's validation error (dashed, right axis); parameter-free ops "
        "in the derived cell (NB201: edges with skip_connect or avg_pool_3x3; NB-1Shot1: max-pool blocks); "
        "supernet minus final-net gap with inherited weights (solid) and against the tabular accuracy (dashed); "
        "dominant Hessian eigenvalue (5-point moving average, raw measurements as dots, X where a run stopped "
        "early). Means over seeds with standard-error bands; hover a line for every seed's value.",
    ),
    ("final-box", "final_accuracy_box", "Final tabular test accuracy per method; each dot a seed (hover for it)."),
)
"""(name, function in :mod:`nasbench_harness.analysis.figures`, caption) of the report's figures."""

VERDICT_CLASSES = {"improved": "good", "regressed": "bad", "no change": "same", "inconclusive": "unknown"}
"""CSS class of each verdict of :mod:`nasbench_harness.analysis.stats` (its colour in the report)."""
PUBLISHED_CLASSES = {"within": "good", "outside": "bad", "not comparable": "unknown", "no runs": "unknown"}
"""CSS class of each verdict of :mod:`nasbench_harness.analysis.published`."""


class ReportError(NbhError):
    """A report could not be built (no runs, unreadable runs)."""


@dataclass(frozen=True)
class Figure:
    """A rendered figure for the template: its caption, inline SVG and natural width in CSS px (or
    why it is missing)."""

    name: str
    caption: str
    svg: str | None
    note: str | None = None
    width_px: int | None = None


def build_report(
    paths: Sequence[str | os.PathLike[str]],
    title: str | None = None,
    baseline: str | None = None,
    skip_damaged: bool = False,
    warn: Callable[[str], None] | None = None,
    published: Any = None,
) -> str:
    """The HTML of a report on the runs found under ``paths`` (run directories or folders of them).

    ``baseline`` (a method name) adds a comparison section: every other method against it, per
    (space, dataset), on the final test accuracy, with the verdicts of ``nbh compare``. A damaged
    run stops the report (``RunDirError``), or with ``skip_damaged`` is left out, passed to
    ``warn`` and listed in the report (summary and coverage notes). ``published`` (a
    ``.published.yaml`` path, or what :func:`~nasbench_harness.analysis.published.as_published`
    takes) adds the "Published vs reproduced" section.
    """
    from jinja2 import Environment, select_autoescape

    from nasbench_harness.analysis.plotstyle import same_colours
    from nasbench_harness.analysis.runs import load_runs

    loaded = load_runs([Path(p) for p in paths], skip_damaged=skip_damaged, warn=warn)
    runs, epochs = loaded.runs, loaded.epochs
    if runs.empty:
        raise ReportError(f"no runs found under {', '.join(map(str, paths))}; give run directories or folders of them")
    searches = runs[runs["kind"] == "search"]
    search_epochs = epochs[epochs["path"].isin(searches["path"])]
    comparisons = _comparisons(loaded, baseline) if baseline else None
    reproduced = _published(loaded, published) if published is not None else None
    frames = {"trajectories": search_epochs, "final-box": searches}
    with same_colours(searches["method"].dropna()):  # one colour per method: every figure, the headline
        figures = [_figure(name, func, caption, frames[name]) for name, func, caption in FIGURES]
        headline = _headline(searches, search_epochs, comparisons, baseline)
    env = Environment(autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(
        resources.files("nasbench_harness.report").joinpath("templates/report.html.j2").read_text()
    )
    run_rows = _run_rows(runs)
    return template.render(
        title=title or "nasbench-harness report",
        summary=_summary(runs, len(loaded.skipped)),
        headline=headline,
        figures=figures,
        results_html=_results_table(searches),
        coverage=_skipped_notes(loaded.skipped) + _coverage(searches, search_epochs),
        runs=run_rows,
        comparisons=comparisons,
        verdict_classes={**VERDICT_CLASSES, **PUBLISHED_CLASSES},
        baseline=baseline,
        published=reproduced,
        provenance=_provenance_notes(run_rows),
    )


REPORT_FILE = "report.html"
"""The file name a report gets when ``out`` is a directory."""


def write_report(
    paths: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    title: str | None = None,
    baseline: str | None = None,
    skip_damaged: bool = False,
    warn: Callable[[str], None] | None = None,
    published: Any = None,
) -> Path:
    """Build the report and write it atomically to ``out`` (an existing directory: to
    ``out/report.html``); returns the path. ``skip_damaged``, ``warn``, ``published``: as in
    :func:`build_report`."""
    from nasbench_harness.tracking import atomic_write_bytes
    from nasbench_harness.tracking.atomic import storage_error

    target = Path(out)
    if target.is_dir():
        target = target / REPORT_FILE
    for part in target.parents:
        if part.is_dir():
            break
        if part.exists():
            raise ReportError(f"-o/--out {target} lies under {part}, which is a file; give a path in a directory")
    if target.is_dir():
        raise ReportError(f"{target} is a directory; give -o a file path (or a directory without {REPORT_FILE} in it)")
    html = build_report(paths, title, baseline, skip_damaged, warn, published)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, target.parent) from None
    atomic_write_bytes(target, html.encode("utf-8"))
    return target


def _figure(name: str, func: str, caption: str, frame: Any) -> Figure:
    from nasbench_harness.analysis import figures
    from nasbench_harness.analysis.hover import svg_text

    make: Callable[[Any], Any] = getattr(figures, func)
    if frame.empty:
        return Figure(name, caption, None, "no search runs")
    try:
        fig = make(frame)
    except NbhError as exc:  # missing columns or no data: the report says so instead of failing
        return Figure(name, caption, None, str(exc))
    svg = svg_text(fig, id_prefix=f"{name}-", bbox_inches="tight", metadata={"Date": None})
    svg = svg[svg.index("<svg") :]
    width = re.search(r'<svg[^>]*\swidth="([0-9.]+)pt"', svg)
    return Figure(name, caption, svg, width_px=round(float(width.group(1)) * 4 / 3) if width else None)


def _summary(runs: Any, n_skipped: int = 0) -> dict[str, Any]:
    """Run count, statuses, methods and (space, dataset) cells, for the line under the title."""
    from nasbench_harness.analysis.plotstyle import panel_title

    statuses = runs["status"].value_counts().to_dict()
    if n_skipped:
        statuses["damaged, left out (see Coverage)"] = n_skipped
    cells = sorted({panel_title(s, d) for s, d in zip(runs["space"], runs["dataset"], strict=True)})
    return {"n_runs": len(runs), "statuses": statuses, "methods": sorted(set(runs["method"])), "cells": cells}


def _headline(
    searches: Any, epochs: Any, comparisons: list[dict[str, Any]] | None, baseline: str | None
) -> list[tuple[str, list[dict[str, Any]]]]:
    """Rows of the headline table, grouped by (space, dataset): final values as "mean ± std (n)"
    over the finished runs, the method's colour, and its verdict against ``baseline``."""
    from nasbench_harness.analysis.aggregate import HEADLINE_METRICS, headline, mean_std_text
    from nasbench_harness.analysis.plotstyle import method_color, panel_title

    if searches.empty:
        return []
    verdicts = {(c["method"], c["space"], c["dataset"]): c for c in comparisons or [] if c["metric"] == "test_acc"}
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in headline(searches, epochs):
        cells = {m: mean_std_text(row[m], with_n=True, missing="—") for m in HEADLINE_METRICS}
        verdict = verdicts.get((row["method"], str(row["space"]), str(row["dataset"])))
        if row["method"] == baseline:
            verdict = {"verdict": "baseline", "difference": float("nan"), "reason": "the baseline"}
        entry = {**row, "cells": cells, "color": method_color(str(row["method"])), "verdict": verdict}
        groups.setdefault(panel_title(row["space"], row["dataset"]), []).append(entry)
    return list(groups.items())


def _skipped_notes(skipped: Sequence[tuple[str, str]]) -> list[str]:
    """One note per damaged run left out of the report (``--skip-damaged``)."""
    return [f"Left out (damaged): {path}: {reason}" for path, reason in skipped]


def _results_table(searches: Any) -> str:
    from nasbench_harness.analysis.figures import results_table

    if searches.empty:
        return "<p>No search runs.</p>"
    try:
        return results_table(searches).reset_index().to_html(classes="results", border=0, escape=True, index=False)
    except NbhError as exc:
        return f"<p class='note'>{html.escape(str(exc))}</p>"


def _coverage(searches: Any, epochs: Any) -> list[str]:
    notes = []
    if "in_benchmark" in epochs:
        nb1 = epochs[epochs["space"].astype(str).str.startswith("nb1shot1")]
        for (space, method), group in nb1.groupby(["space", "method"]):
            share = float(group["in_benchmark"].fillna(False).astype(bool).mean())
            notes.append(
                f"{space}, {method}: the derived cell was in the imported NB101 table in {share:.0%} of "
                f"{len(group)} run-epochs; the other epochs have no tabular numbers (not zero)."
            )
    failed = searches[searches["status"] != "finished"] if "status" in searches else searches.iloc[0:0]
    if len(failed):
        notes.append(f"{len(failed)} run(s) did not finish; their epochs are included up to where they stopped.")
    return notes


def _run_rows(runs: Any) -> list[dict[str, Any]]:
    """One row per run: its path (and the part below the runs' common folder, ``name``), identity,
    status, epochs and the long fields the template folds (config diff, error, provenance)."""
    columns = ["path", "kind", "space", "dataset", "method", "seed", "status", "epochs", "stopped_early"]
    paths = [str(p) for p in runs["path"]]
    common = os.path.commonpath(paths) if len(paths) > 1 else str(Path(paths[0]).parent) if paths else ""
    rows = []
    for record in runs.to_dict("records"):
        row = {key: record.get(key) for key in columns}
        row["name"] = os.path.relpath(str(record["path"]), common) if common else str(record["path"])
        row["config_diff"] = _text(record.get("config_diff"))
        row["error"] = _text(record.get("error"))
        row["stopped_early"] = _text(row["stopped_early"])
        row.update(_provenance(Path(str(record["path"]))))
        rows.append(row)
    return rows


def _text(value: Any) -> str:
    """``value`` as text; "" for None and for pandas' NaN (a run without an error has NaN there)."""
    return "" if value is None or (isinstance(value, float) and value != value) else str(value)


def _provenance(run: Path) -> dict[str, str]:
    """Versions, git commit, a short fingerprint of the data and table a run used, and the preset
    and device it trained with (``trained``: the device of its latest session) (its manifest;
    ``RunDirError`` when that is damaged, as everywhere a manifest is read)."""
    import hashlib

    from nasbench_harness.tracking.manifest import MANIFEST_FILE, read_manifest_file

    manifest = read_manifest_file(run / MANIFEST_FILE)
    v = manifest.get("versions") or {}
    versions = ", ".join(f"{k} {v[k]}" for k in ("nasbench_harness", "torch", "python") if v.get(k))
    commit = (manifest.get("git") or {}).get("commit")
    if commit:
        versions += f", git {commit[:10]}{'+' if (manifest.get('git') or {}).get('dirty') else ''}"
    data = manifest.get("data") or {}
    hashes = [src.get("sha256", "") for src in data.get("sources", [])]
    table = ((manifest.get("table") or {}).get("source") or {}).get("sha256", "")
    parts = []
    if hashes:
        parts.append(f"{data.get('dataset', 'data')} {hashlib.sha256(''.join(hashes).encode()).hexdigest()[:12]}")
    if table:
        parts.append(f"table {table[:12]}")
    preset = (manifest.get("config") or {}).get("preset") or ""
    trained = ", ".join(str(x) for x in (preset, manifest.get("device")) if x)
    return {"versions": versions, "data": ", ".join(parts), "trained": trained}


def _comparisons(loaded: Any, baseline: str) -> list[dict[str, Any]]:
    from nasbench_harness.analysis.stats import compare_runs

    searches = loaded.filter(kind="search")
    methods = sorted(set(searches.runs["method"]))
    if baseline not in methods:
        raise ReportError(f"--baseline {baseline!r} has no runs here; methods found: {', '.join(methods)}")
    rows = []
    for method in methods:
        if method == baseline:
            continue
        for cell in compare_runs(searches.filter(method=baseline), searches.filter(method=method)):
            rows.append({"method": method, **cell.to_dict()})
    return rows


def _published(loaded: Any, published: Any) -> dict[str, Any]:
    """The "Published vs reproduced" section: a row per published number, and the gaps on record."""
    from nasbench_harness.analysis.published import MIN_TOLERANCE, as_published, compare_published

    data = as_published(published)
    rows = compare_published(loaded, data)
    return {"rows": rows, "not_sourced": data.not_sourced, "path": data.path, "floor": MIN_TOLERANCE}


def _provenance_notes(rows: list[dict[str, Any]]) -> list[str]:
    """Warnings when the runs (their rows, with provenance) used different code versions or data."""
    notes = []
    for key, what in (("versions", "code versions"), ("data", "data or tables")):
        distinct = {r[key] for r in rows if r[key]}
        if len(distinct) > 1:
            notes.append(f"The runs used {len(distinct)} different {what}: {'; '.join(sorted(distinct))}.")
    return notes
