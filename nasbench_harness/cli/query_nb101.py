"""``nbh query nb101`` and ``nbh query nb1shot1``: NB101 ground truth by hash or NB-1Shot1 genotype."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from nasbench_harness.cli.common import (
    CacheDirOption,
    DataDirOption,
    JsonOption,
    Space,
    console,
    fmt,
    parse_space,
    print_json,
    progress_bar,
    warn_deprecated,
)
from nasbench_harness.errors import GenotypeError, NbhError, echo
from nasbench_harness.spaces.catalog import SPACE_NAMES, get_space_info, nb1shot1_space_name
from nasbench_harness.spaces.nb1shot1 import NB1Shot1Genotype, get_space
from nasbench_harness.tabular.nb1shot1 import score
from nasbench_harness.tabular.nb101 import NOT_IN_BENCHMARK, NB101Answer, NB101Benchmark
from nasbench_harness.tabular.nb101_metrics import EPOCHS, POINTS, QUANTITIES


def _open(cache_dir: Any, data_dir: Any) -> NB101Benchmark:
    with progress_bar() as progress:
        return NB101Benchmark.open(cache_dir, data_dir, progress=progress)


_HASH = re.compile(r"[0-9a-f]{32}")
NB1SHOT1_SPACES = tuple(name for name in SPACE_NAMES if get_space_info(name).family == "nb1shot1")


def parse_nb1shot1_space(value: object) -> Space:
    """An NB-1Shot1 space by its catalog name (``nb1shot1-2``); the bare number (``2``) is
    deprecated but still read, with a warning on stderr."""
    text = str(value)
    if text.isascii() and text.isdigit():  # str.isdigit() alone takes '٢' too
        try:
            name = nb1shot1_space_name(int(text))
        except NbhError:
            raise typer.BadParameter(f"{text!r} is not one of {', '.join(map(repr, NB1SHOT1_SPACES))}") from None
        warn_deprecated(f"--space {text}", f"--space {name}")
        text = name
    space = parse_space(text)
    if space.value not in NB1SHOT1_SPACES:
        raise typer.BadParameter(
            f"{space.value} is not an NB-1Shot1 space (`nbh query nb201` scores NB201 cells); "
            f"use one of {', '.join(map(repr, NB1SHOT1_SPACES))}"
        )
    return space


def nb101(
    module_hash: Annotated[str, typer.Argument(help="NB101 module hash (32 hex characters).", show_default=False)],
    json_out: JsonOption = False,
    cache_dir: CacheDirOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Every NB101 number of one cell: accuracies (fractions) and times per budget, halfway and final."""
    if not _HASH.fullmatch(module_hash):
        raise GenotypeError(f"an NB101 module hash is 32 lowercase hex characters, got {echo(module_hash)}")
    bench = _open(cache_dir, data_dir)
    answer = bench.lookup(module_hash)
    if json_out:
        print_json({"benchmark": "nb101", "module_hash": answer.module_hash, "status": answer.status, **answer.values})
        return
    _print_answer(answer)


def nb1shot1(
    genotype: Annotated[
        str,
        typer.Argument(
            help="|op~parent|op~p~q|...|output~p~q|: per choice block its op (conv3x3-bn-relu, conv1x1-bn-relu, "
            "maxpool3x3) and parents, then the output's parents.",
            show_default=False,
        ),
    ],
    space: Annotated[
        Space,
        typer.Option(
            "--space",
            "-s",
            parser=parse_nb1shot1_space,
            metavar="<" + "|".join(NB1SHOT1_SPACES) + ">",
            help="NB-1Shot1 search space: " + ", ".join(NB1SHOT1_SPACES) + " (the bare 1, 2, 3: deprecated).",
        ),
    ],
    json_out: JsonOption = False,
    cache_dir: CacheDirOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Score one NB-1Shot1 architecture: its NB101 cell, accuracy and regret (fractions)."""
    number = get_space_info(space.value).number
    assert number is not None  # the parser admits NB-1Shot1 spaces only
    g = NB1Shot1Genotype.from_string(number, genotype)
    spec = g.to_spec().pruned()
    result = score(_open(cache_dir, data_dir), g)
    if json_out:
        print_json(result.as_dict() | {"nb101_matrix": [list(r) for r in spec.matrix], "nb101_ops": list(spec.ops)})
        return
    s = get_space(number)
    console.print(f"[bold]NB-1Shot1 space {number}[/]  {escape(g.to_string())}")
    console.print(f"NB101 cell {result.module_hash} ({spec.num_vertices} vertices after pruning): {result.status}")
    console.print("  ops " + ", ".join(spec.ops))
    for row in spec.matrix:
        console.print("  " + " ".join(map(str, row)))
    if not result.in_benchmark:
        console.print(f"[yellow]{NOT_IN_BENCHMARK}[/]: the imported NB101 table does not hold this cell")
        return
    table = Table(show_edge=False, title="108 epochs, final, mean over repeats")
    for col in ("", "accuracy", "error", "regret", "space optimum error"):
        table.add_column(col, justify="right")
    for split, accuracy, regret, optimum_error in (
        ("validation", result.validation_accuracy, result.validation_regret, s.valid_min_error),
        ("test", result.test_accuracy, result.test_regret, s.test_min_error),
    ):
        table.add_row(split, *(fmt(v, 5) for v in (accuracy, 1 - accuracy, regret, optimum_error)))
    console.print(table)


_HEADERS = {
    "train_accuracy": "train acc",
    "validation_accuracy": "valid acc",
    "test_accuracy": "test acc",
    "training_time": "time s",
}


def _print_answer(answer: NB101Answer) -> None:
    console.print(f"[bold]NB101 cell {answer.module_hash}[/]: {answer.status}")
    if not answer.in_benchmark:
        return
    console.print(f"params {int(answer.values['params']):,}")
    table = Table(show_edge=False, title="mean over repeats (accuracies as fractions)")
    table.add_column("budget")
    table.add_column("point")
    for header in _HEADERS.values():
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("repeats", justify="right")
    for epochs in EPOCHS:
        if f"n_repeats@{epochs}" not in answer.values:
            continue
        for point in POINTS:
            cells = [fmt(answer.values.get(f"{point}/{q}@{epochs}"), 5 if "accuracy" in q else 1) for q in QUANTITIES]
            table.add_row(str(epochs), point, *cells, str(int(answer.values[f"n_repeats@{epochs}"])))
    console.print(table)
