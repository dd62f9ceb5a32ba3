"""The ``nbh`` command: subcommands, and errors printed as one clear message (no traceback)."""

from __future__ import annotations

import sys

import typer

from nasbench_harness import __version__
from nasbench_harness.cli import baseline, check, compare, data, figures, methods, query, report, search, sweep
from nasbench_harness.errors import NbhError

app = typer.Typer(
    name="nbh",
    help="nasbench-harness: robust differentiable NAS on NAS-Bench-201 / NAS-Bench-1Shot1, "
    "scored against tabular ground truth.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(data.app, name="data")
app.add_typer(query.app, name="query")
app.command("search")(search.search)
app.command("baseline")(baseline.baseline)
app.command("methods")(methods.methods)
app.command("compare")(compare.compare)
app.command("report")(report.report)
app.command("figures")(figures.figures)
app.command("sweep")(sweep.sweep)
app.command("check-regularizer")(check.check_regularizer)


def _version(value: bool) -> None:
    if value:
        print(f"nasbench-harness {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Root options."""


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except NbhError as exc:
        from rich.markup import escape

        from nasbench_harness.cli.common import err_console

        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
