"""Build one self-contained HTML report from a set of run directories.

Sections: a summary (runs by space, dataset, method; statuses), the paper-style figures, the
final-results table, coverage notes (NB-1Shot1 cells missing from a partial NB101 table), and
per-run metadata (config differences within a method, versions, data checksums, failures).
Figures are inlined as SVG, so the file opens anywhere without a network. Never imports torch.
"""

from __future__ import annotations

import html
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from nasbench_harness.errors import NbhError

FIGURES: tuple[tuple[str, str, str], ...] = (
    (
        "regret",
        "regret_vs_epoch",
        "Anytime test regret of the derived cell (log scale) and the supernet's validation error",
    ),
    ("test-acc", "test_acc_vs_epoch", "Tabular test accuracy of the derived cell"),
    ("param-free", "param_free_vs_epoch", "Parameter-free operations in the derived cell (NB201: skip connections)"),
    ("gap", "gap_vs_epoch", "Supernet-to-final-net gap: inherited weights (solid) and tabular accuracy (dashed)"),
    ("eigenvalue", "eigenvalue_vs_epoch", "Dominant Hessian eigenvalue (5-point moving average; early stops marked)"),
)
"""(name, function in :mod:`nasbench_harness.analysis.figures`, caption) of the epoch figures."""


class ReportError(NbhError):
    """A report could not be built (no runs, unreadable runs)."""


@dataclass(frozen=True)
class Figure:
    """A rendered figure for the template: its caption and inline SVG (or why it is missing)."""

    name: str
    caption: str
    svg: str | None
    note: str | None = None


def build_report(
    paths: Sequence[str | os.PathLike[str]],
    title: str | None = None,
    baseline: str | None = None,
    skip_damaged: bool = False,
    warn: Callable[[str], None] | None = None,
) -> str:
    """The HTML of a report on the runs found under ``paths`` (run directories or folders of them).

    ``baseline`` (a method name) adds a comparison section: every other method against it, per
    (space, dataset), on the final test accuracy, with the verdicts of ``nbh compare``. A damaged
    run stops the report (``RunDirError``), or with ``skip_damaged`` is left out, passed to
    ``warn`` and listed in the report (summary and coverage notes).
    """
    from jinja2 import Environment, select_autoescape

    from nasbench_harness.analysis.runs import load_runs

    loaded = load_runs([Path(p) for p in paths], skip_damaged=skip_damaged, warn=warn)
    runs, epochs = loaded.runs, loaded.epochs
    if runs.empty:
        raise ReportError(f"no runs found under {', '.join(map(str, paths))}; give run directories or folders of them")
    searches = runs[runs["kind"] == "search"]
    search_epochs = epochs[epochs["path"].isin(searches["path"])]
    figures = [_figure(name, func, caption, search_epochs) for name, func, caption in FIGURES]
    figures.append(_figure("final-box", "final_accuracy_box", "Final tabular test accuracy per method", searches))
    env = Environment(autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(
        resources.files("nasbench_harness.report").joinpath("templates/report.html.j2").read_text()
    )
    run_rows = _run_rows(runs)
    return template.render(
        title=title or "nasbench-harness report",
        summary=_summary(runs, len(loaded.skipped)),
        figures=figures,
        results_html=_results_table(searches),
        coverage=_skipped_notes(loaded.skipped) + _coverage(searches, search_epochs),
        runs=run_rows,
        comparisons=_comparisons(loaded, baseline) if baseline else None,
        baseline=baseline,
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
) -> Path:
    """Build the report and write it atomically to ``out`` (an existing directory: to
    ``out/report.html``); returns the path. ``skip_damaged``, ``warn``: as in :func:`build_report`."""
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
    html = build_report(paths, title, baseline, skip_damaged, warn)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, target.parent) from None
    atomic_write_bytes(target, html.encode("utf-8"))
    return target


def _figure(name: str, func: str, caption: str, frame: Any) -> Figure:
    from nasbench_harness.analysis import figures

    make: Callable[[Any], Any] = getattr(figures, func)
    try:
        fig = make(frame)
    except NbhError as exc:  # missing columns or no data: the report says so instead of failing
        return Figure(name, caption, None, str(exc))
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    svg = buffer.getvalue()
    return Figure(name, caption, svg[svg.index("<svg") :])


def _summary(runs: Any, n_skipped: int = 0) -> dict[str, Any]:
    counts = runs.groupby(["space", "dataset", "method"], dropna=False).agg(
        runs=("path", "size"), seeds=("seed", "nunique"), finished=("status", lambda s: int((s == "finished").sum()))
    )
    statuses = runs["status"].value_counts().to_dict()
    if n_skipped:
        statuses["damaged, left out (see Coverage)"] = n_skipped
    return {"n_runs": len(runs), "statuses": statuses, "table": counts.reset_index().to_dict("records")}


def _skipped_notes(skipped: Sequence[tuple[str, str]]) -> list[str]:
    """One note per damaged run left out of the report (``--skip-damaged``)."""
    return [f"Left out (damaged): {path}: {reason}" for path, reason in skipped]


def _results_table(searches: Any) -> str:
    from nasbench_harness.analysis.figures import results_table

    if searches.empty:
        return "<p>No search runs.</p>"
    try:
        return results_table(searches).to_html(classes="results", border=0, escape=True)
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
    columns = ["path", "kind", "space", "dataset", "method", "seed", "status", "epochs", "stopped_early"]
    rows = []
    for record in runs.to_dict("records"):
        row = {key: record.get(key) for key in columns}
        row["config_diff"] = record.get("config_diff") or ""
        row["error"] = record.get("error") or ""
        row["stopped_early"] = row["stopped_early"] or ""
        row.update(_provenance(Path(str(record["path"]))))
        rows.append(row)
    return rows


def _provenance(run: Path) -> dict[str, str]:
    """Versions, git commit and a short fingerprint of the data and table a run used (its manifest;
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
    return {"versions": versions, "data": ", ".join(parts)}


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


def _provenance_notes(rows: list[dict[str, Any]]) -> list[str]:
    """Warnings when the runs (their rows, with provenance) used different code versions or data."""
    notes = []
    for key, what in (("versions", "code versions"), ("data", "data or tables")):
        distinct = {r[key] for r in rows if r[key]}
        if len(distinct) > 1:
            notes.append(f"The runs used {len(distinct)} different {what}: {'; '.join(sorted(distinct))}.")
    return notes
