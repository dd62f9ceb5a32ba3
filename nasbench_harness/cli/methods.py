"""``nbh methods``: the registered search methods, one line each, or one method's documentation."""

from __future__ import annotations

from typing import Annotated

import typer

from nasbench_harness.cli.common import console


def methods(
    name: Annotated[
        str | None, typer.Argument(help="A method to describe in full (its paper, formula, defaults).")
    ] = None,
) -> None:
    """List the search methods (``nbh search --method NAME``), or describe one."""
    from nasbench_harness.registry import METHOD_HELP, describe

    if name is None:
        width = max(len(n) for n in METHOD_HELP)
        for method, text in METHOD_HELP.items():
            console.print(f"{method:<{width}}  {text}", markup=False, soft_wrap=True)
        console.print("\n`nbh methods NAME` shows a method's documentation and options.", markup=False)
        return
    console.print(describe(name), markup=False, soft_wrap=True)
