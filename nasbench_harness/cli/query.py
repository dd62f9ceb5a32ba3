"""``nbh query``: look up architectures in the imported ground truth."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from nasbench_harness.cli import query_nb101
from nasbench_harness.cli.common import (
    CacheDirOption,
    DataDirOption,
    JsonOption,
    canonical_dataset,
    choice_parser,
    console,
    fmt,
    print_json,
    progress_bar,
)
from nasbench_harness.errors import NotInBenchmarkError
from nasbench_harness.spaces.nb201 import NB201Genotype
from nasbench_harness.tabular.nb201 import NB201Benchmark
from nasbench_harness.tabular.nb201_metrics import DATASETS, HPS, MetricKey, resolve_metric

app = typer.Typer(help="Look up architectures in the imported ground truth.", no_args_is_help=True)

SUMMARY_DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
TableDataset = StrEnum("TableDataset", [(name, name) for name in DATASETS])  # type: ignore[misc]
"""An NB201 training setting: the data sets, and cifar10-valid (trained on half of CIFAR-10's training set)."""
HP = StrEnum("HP", [(name, name) for name in HPS])  # type: ignore[misc]
"""An NB201 training schedule (epochs)."""

SPLIT_LEGEND = (
    "valid/test: cifar10 = cifar10-valid x-valid / cifar10 ori-test (trained on 50k); "
    "cifar100, ImageNet16-120 = x-valid / x-test. regret = best cell's test accuracy minus this one's (points)."
)


@app.command("nb201")
def nb201(
    arch: Annotated[
        str,
        typer.Argument(
            help="Arch string |op~0|+|op~0|op~1|+|op~0|op~1|op~2| (ops: none, skip_connect, nor_conv_1x1, "
            "nor_conv_3x3, avg_pool_3x3) or an official index 0..15624.",
            show_default=False,
        ),
    ],
    dataset: Annotated[
        list[TableDataset] | None,
        typer.Option(
            "--dataset",
            "-d",
            parser=choice_parser(TableDataset, canonical_dataset),
            help="cifar10, cifar100 or ImageNet16-120, or the NB201 training setting cifar10-valid "
            "(repeatable; other spellings such as imagenet16_120 work too). Default: the three data sets.",
            show_default=False,
        ),
    ] = None,
    hp: Annotated[
        HP,
        typer.Option("--hp", parser=choice_parser(HP), help="Training schedule of the ground truth: 200 or 12 epochs."),
    ] = HP["200"],
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            "-m",
            help="Exact metric key(s), e.g. cifar10-valid/x-valid/accuracy@200 (see `nbh data info --metrics`).",
        ),
    ] = None,
    json_out: JsonOption = False,
    cache_dir: CacheDirOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Score one NAS-Bench-201 cell: valid/test accuracy, regret, cost and op counts per dataset."""
    genotype = NB201Genotype.parse(arch)
    hp = hp.value
    datasets = [str(d) for d in (dataset or SUMMARY_DATASETS)]
    keys = [MetricKey.parse(m) for m in metric or []]
    with progress_bar() as progress:
        bench = NB201Benchmark.open(cache_dir, data_dir, progress=progress)
    rows = [] if keys else [_dataset_row(bench, genotype, d, hp) for d in datasets]
    values = {str(k): _maybe(bench, genotype, k) for k in keys}
    if json_out:
        print_json(_as_json(genotype, hp, rows, values))
    else:
        _print(bench, genotype, hp, rows, values)


def _maybe(bench: NB201Benchmark, genotype: NB201Genotype, key: MetricKey) -> float | None:
    try:
        return bench.query(genotype, key)
    except NotInBenchmarkError:
        return None


def _dataset_row(bench: NB201Benchmark, genotype: NB201Genotype, dataset: str, hp: str) -> dict[str, Any]:
    valid, test = resolve_metric(dataset, "valid", hp), resolve_metric(dataset, "test", hp)
    row: dict[str, Any] = {"dataset": dataset, "valid_metric": str(valid), "test_metric": str(test)}
    for name, key in (("valid", valid), ("test", test)):
        row[name] = _maybe(bench, genotype, key) if bench.has(key) else None
    row["test_regret"] = None
    if row["test"] is not None:
        row["test_regret"] = bench.regret(genotype, test)
        row["test_optimum"] = bench.optimum(test).value
    train_set = valid.dataset  # costs of the network trained for the search split
    for quantity in ("params", "flops", "n_seeds"):
        key = MetricKey(train_set, None, quantity, "200")
        row[quantity] = _maybe(bench, genotype, key) if bench.has(key) else None
    return row


def _as_json(genotype: NB201Genotype, hp: str, rows: list[dict[str, Any]], values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "benchmark": "nb201",
        "index": genotype.index,
        "arch": genotype.to_string(),
        "ops": list(genotype.op_names),
        "op_counts": genotype.op_counts().as_dict(),
        "connected": genotype.is_connected,
    }
    if values:
        out["metrics"] = values
    else:
        out["hp"] = int(hp)
        out["datasets"] = {row["dataset"]: {k: v for k, v in row.items() if k != "dataset"} for row in rows}
    return out


def _print(
    bench: NB201Benchmark, genotype: NB201Genotype, hp: str, rows: list[dict[str, Any]], values: dict[str, Any]
) -> None:
    counts = genotype.op_counts()
    connected = "output connected" if genotype.is_connected else "[red]output disconnected from input[/]"
    console.print(f"[bold]NB201 cell #{genotype.index}[/]  {escape(genotype.to_string())}")
    console.print("ops: " + " · ".join(f"{name} {n}" for name, n in counts.as_dict().items()) + f" · {connected}")
    if values:
        table = Table(show_edge=False, pad_edge=False)
        for col in ("metric", "value", "meaning"):
            table.add_column(col, overflow="fold")
        for key, value in values.items():
            table.add_row(key, fmt(value, 4), escape(bench.describe(key)))
        console.print(table)
        return
    table = Table(title=f"hp={hp}: {hp}-epoch schedule, final epoch, mean over seeds", show_edge=False)
    table.add_column("dataset", no_wrap=True)
    for col in ("valid %", "test %", "regret", "params M", "FLOPs M", "seeds"):
        table.add_column(col, justify="right", no_wrap=True)
    for row in rows:
        seeds = "n/a" if row["n_seeds"] is None else str(int(row["n_seeds"]))
        table.add_row(
            row["dataset"],
            fmt(row["valid"]),
            fmt(row["test"]),
            fmt(row["test_regret"]),
            fmt(row["params"], 3),
            fmt(row["flops"], 1),
            seeds,
        )
    console.print(table)
    console.print(f"[dim]{SPLIT_LEGEND}[/]")


app.command("nb101")(query_nb101.nb101)
app.command("nb1shot1")(query_nb101.nb1shot1)
