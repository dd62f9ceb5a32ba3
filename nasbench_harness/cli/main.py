"""The ``nbh`` command: subcommands, and errors printed as one clear message (no traceback).

Exit codes: 0 done; 1 an error of the package (:class:`NbhError`) or of the operating system
(``OSError``: a full disk, a read-only folder, a missing file), printed as one line; 2 a usage
error; 128 + N a search ended by signal N (130: Ctrl-C, 143: SIGTERM). Any other exception is a
bug: its traceback is printed with a line asking for a report.
"""

from __future__ import annotations

import errno
import sys

import typer

from nasbench_harness import __version__
from nasbench_harness.cli import baseline, check, compare, data, figures, methods, query, report, search, sweep
from nasbench_harness.errors import NbhError, Terminated, elide

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
        _error(str(exc))
        sys.exit(1)
    except OSError as exc:
        _error(os_error_message(exc))
        sys.exit(1)
    except Terminated as exc:
        _error(str(exc))
        sys.exit(128 + exc.signum)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception:
        import traceback

        traceback.print_exc()
        _error(
            "an unexpected error (above): a bug in nasbench-harness, or in a plugin you named; please report "
            "it with the command you ran and the traceback"
        )
        sys.exit(1)


_OS_FIXES = {
    errno.ENOSPC: "free space (or raise the quota) and try again; a search continues with --resume",
    errno.EDQUOT: "free space (or raise the quota) and try again; a search continues with --resume",
    errno.EROFS: "the file system is read-only: write somewhere else (--out, --cache-dir)",
    errno.EACCES: "you may not access it: fix its permissions or use another path (--out, --cache-dir, --data-dir)",
    errno.EPERM: "you may not change it: fix its permissions or use another path (--out, --cache-dir)",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a part of the path is a file, not a folder; check the path",
    errno.EISDIR: "it is a directory; give a file path",
}


def os_error_message(exc: OSError) -> str:
    """One line for an ``OSError``: the cause, the file (shortened) and, where known, what to do."""
    cause = exc.strerror or str(exc) or type(exc).__name__
    names = [elide(str(name)) for name in (exc.filename, exc.filename2) if name is not None]
    where = f": {' -> '.join(names)}" if names else ""
    fix = _OS_FIXES.get(exc.errno or 0)
    return f"{cause[:1].lower()}{cause[1:]}{where}" + (f"; {fix}" if fix else "")


def _error(message: str) -> None:
    from rich.markup import escape

    from nasbench_harness.cli.common import err_console

    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


if __name__ == "__main__":
    main()
