"""``nbh report``: one self-contained HTML report of a set of runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nasbench_harness.cli.common import console


def report(
    runs: Annotated[
        list[Path], typer.Argument(help="Run directories, or folders searched for them.", show_default=False)
    ],
    out: Annotated[Path, typer.Option("-o", "--out", help="The HTML file to write.")] = Path("reports/report.html"),
    title: Annotated[str | None, typer.Option("--title", help="The report's title.", show_default=False)] = None,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            help="A method to compare every other method with (a section with nbh compare's verdicts).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write a self-contained HTML report of the runs found under RUNS.

    One file, figures inlined, no network needed: summary, paper-style figures, final results,
    comparison (--baseline), coverage notes and per-run metadata."""
    from nasbench_harness.report.build import write_report

    path = write_report(runs, out, title, baseline)
    console.print(f"wrote {path}", markup=False, soft_wrap=True)
