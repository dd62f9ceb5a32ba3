"""``nbh methods``: the registered search methods, one line each, or one method's documentation and
its ``paper`` protocol per space (key, value, source), with what was adapted and what the config
cannot express."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nasbench_harness.cli.common import JsonOption, console, print_json

if TYPE_CHECKING:
    from nasbench_harness.protocols import Protocol


def methods(
    name: Annotated[
        str | None, typer.Argument(help="A method to describe in full (its paper, formula, defaults, protocol).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List the search methods (``nbh search --method NAME``), or describe one with its protocol."""
    from nasbench_harness.registry import METHOD_HELP, describe

    if name is None:
        if as_json:
            print_json(METHOD_HELP)
            return
        width = max(len(n) for n in METHOD_HELP)
        for method, text in METHOD_HELP.items():
            console.print(f"{method:<{width}}  {text}", markup=False, soft_wrap=True)
        console.print("\n`nbh methods NAME` shows a method's documentation, options and protocol.", markup=False)
        return
    from nasbench_harness.protocols import load_protocol, protocol_json

    text = describe(name)  # an unknown name is a ConfigError naming the registered methods
    protocol = load_protocol(name)
    if as_json:
        print_json(protocol_json(protocol))
        return
    console.print(text, markup=False, soft_wrap=True)
    print_protocol(protocol)


def print_protocol(protocol: Protocol) -> None:
    """The protocol of ``--preset paper`` as one table per space section (key, value, source),
    then its adapted-from, not-expressible and other notes."""
    from rich.table import Table
    from rich.text import Text

    console.print(
        f"\nProtocol (--preset paper; --preset common shares one protocol across methods): "
        f"nasbench_harness/protocols/{protocol.path.name}, sha256 {protocol.sha256[:12]}",
        markup=False,
        soft_wrap=True,
    )
    for section, space in protocol.spaces.items():
        title = f"{section} ({', '.join(protocol.applies_to(section))})"
        table = Table(title=title, title_justify="left", show_lines=False, expand=False)
        for column in ("key", "value", "source"):
            table.add_column(column, overflow="fold")
        for entry in space.entries:
            value = _show(entry.value) + (f"  (grid {_show(entry.grid)})" if entry.grid else "")
            source = entry.source + (f"  [{entry.note}]" if entry.note else "")
            table.add_row(Text(entry.key), Text(value), Text(source))  # Text: brackets are not markup
        console.print(table, markup=False)
        if space.adapted_from:
            console.print(f"  adapted from: {space.adapted_from}", markup=False, soft_wrap=True)
        for remark in space.not_expressible:
            console.print(f"  not expressible: {remark.what} ({remark.source})", markup=False, soft_wrap=True)
        for remark in space.notes:
            console.print(f"  note: {remark.what} ({remark.source})", markup=False, soft_wrap=True)


def _show(value: Any) -> str:
    """A value as a user writes it after ``--set key=`` (JSON: true, [0.5, 0.999], "l2")."""
    return json.dumps(value)
