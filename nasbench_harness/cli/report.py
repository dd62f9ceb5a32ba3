"""``nbh report``: one self-contained HTML report of a set of runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nasbench_harness.cli.common import console, err_console

SkipDamagedOption = Annotated[
    bool,
    typer.Option(
        "--skip-damaged",
        help="Leave out runs whose manifest or trajectory is damaged (each one is named on stderr, "
        "and in the report) instead of stopping at the first.",
    ),
]


def report(
    runs: Annotated[
        list[Path], typer.Argument(help="Run directories, or folders searched for them.", show_default=False)
    ],
    out: Annotated[
        Path,
        typer.Option("-o", "--out", help="The HTML file to write; an existing directory gets DIR/report.html."),
    ] = Path("reports/report.html"),
    title: Annotated[str | None, typer.Option("--title", help="The report's title.", show_default=False)] = None,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            help="A method to compare every other method with (verdicts in the headline, and a section "
            "with nbh compare's numbers).",
            show_default=False,
        ),
    ] = None,
    skip_damaged: SkipDamagedOption = False,
    published: Annotated[
        Path | None,
        typer.Option(
            "--published",
            help="A published-numbers file (a suite's .published.yaml): a 'Published vs reproduced' section, "
            "the published mean ± std beside ours with a verdict.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write a self-contained HTML report of the runs found under RUNS.

    One file, figures inlined, no network or JavaScript needed: a headline (final test accuracy,
    parameter-free ops, eigenvalue and gap per method; verdicts with --baseline), the trajectories
    as small multiples (hover a line for each seed's value), final results, the comparison
    (--baseline), published numbers beside ours (--published), coverage notes and a compact
    per-run table."""
    from nasbench_harness.report.build import write_report

    path = write_report(runs, out, title, baseline, skip_damaged, warn, published)
    console.print(f"wrote {path}", markup=False, soft_wrap=True)


def warn(line: str) -> None:
    """One warning line on stderr (a damaged run left out)."""
    err_console.print(f"warning: {line}", markup=False, soft_wrap=True)
