"""``nbh data``: import benchmark files into the cache and show what is imported."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from nasbench_harness import paths
from nasbench_harness.cli.common import (
    CacheDirOption,
    DataDirOption,
    JsonOption,
    console,
    err_console,
    print_json,
    progress_bar,
)
from nasbench_harness.errors import CacheError, ConfigError
from nasbench_harness.tabular.cache import cache_path, read_sidecar

app = typer.Typer(help="Import benchmark files and show what is imported.", no_args_is_help=True)


class Benchmark(StrEnum):
    nb201 = "nb201"
    nb101 = "nb101"


@app.command("import")
def import_(
    benchmark: Annotated[Benchmark, typer.Argument(help="Which benchmark the file belongs to.")],
    path: Annotated[
        Path,
        typer.Argument(
            help="nb201: the official NAS-Bench-201-v1_0-e61699.pth / v1_1-096897.pth, NATS-Bench's topology "
            "files (the NATS-tss-v1_0-3ffb9-simple or -full directory, or NATS-tss-v1_0-3ffb9.pickle.pbz2), "
            "or an NB201 table (.parquet, .csv, .csv.gz). nb101: nasbench_only108.tfrecord or "
            "nasbench_full.tfrecord (or a subset in that format).",
            show_default=False,
        ),
    ],
    mapping: Annotated[
        Path | None,
        typer.Option(
            help="YAML column mapping for a table of another layout (default: the nb201_table.parquet layout)."
        ),
    ] = None,
    trust_pickle: Annotated[
        bool,
        typer.Option(
            "--trust-pickle",
            help="Let torch unpickle arbitrary objects in a .pth, or unpickle NATS-Bench files at all "
            "(only for files from a trusted origin).",
        ),
    ] = False,
    curves: Annotated[
        bool,
        typer.Option(
            "--curves/--no-curves",
            help="NATS-Bench files: also import each split's accuracy after every epoch of both schedules, "
            "as <dataset>/<split>/accuracy@<hp>:e<k> (about 1,900 more metrics, 240 MB more cache).",
        ),
    ] = True,
    cache_dir: CacheDirOption = None,
) -> None:
    """Import a benchmark file into the cache once; queries then answer in microseconds.

    The cache is replaced atomically: a failed import leaves the previous one intact.
    """
    root = paths.cache_dir(cache_dir)
    with progress_bar() as progress:
        if benchmark is Benchmark.nb201:
            from nasbench_harness.tabular.nats_import import import_nats, is_nats_source
            from nasbench_harness.tabular.nb201_import import import_nb201

            if is_nats_source(path) and mapping is None:
                where = import_nats(path, root, trust_pickle=trust_pickle, curves=curves, progress=progress)
            else:
                where = import_nb201(path, root, mapping=mapping, trust_pickle=trust_pickle, progress=progress)
        else:
            if mapping is not None or trust_pickle:
                raise ConfigError("--mapping and --trust-pickle apply to nb201 imports only")
            from nasbench_harness.tabular.nb101_import import import_nb101

            where = import_nb101(path, root, progress=progress)
    sidecar = read_sidecar(where, benchmark.value)
    err_console.print(
        f"Imported {escape(sidecar['source']['name'])} into {escape(str(where))}: "
        f"{len(sidecar['metrics'])} metrics, {_cells(sidecar)} of {sidecar['rows']['count']} cells.",
        soft_wrap=True,
    )


@app.command()
def info(
    metrics: Annotated[
        bool, typer.Option("--metrics", help="List every imported metric with its meaning and coverage.")
    ] = False,
    json_out: JsonOption = False,
    cache_dir: CacheDirOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Show the imported benchmarks (source, checksum, coverage) and the data directory."""
    root, data = paths.cache_dir(cache_dir), paths.data_dir(data_dir)
    report: dict[str, Any] = {"cache_dir": str(root), "data_dir": str(data), "benchmarks": {}}
    for bench in Benchmark:
        report["benchmarks"][bench.value] = _describe(cache_path(root, bench.value), bench.value)
    report["data_files"] = _data_files(data)
    if json_out:
        print_json(report)
        return
    console.print(f"cache dir: {escape(str(root))}\ndata dir:  {escape(str(data))}")
    for name, entry in report["benchmarks"].items():
        _print_benchmark(name, entry, metrics)
    if report["data_files"]:
        console.print("\nin the data dir: " + ", ".join(escape(f) for f in report["data_files"]))


def _describe(path: Path, benchmark: str) -> dict[str, Any]:
    if not path.exists():
        return {"status": "not imported"}
    try:
        sidecar = read_sidecar(path, benchmark)
    except CacheError as exc:
        return {"status": "unusable", "problem": str(exc)}
    return {"status": "imported", "path": str(path), "cells": _cells(sidecar), **sidecar}


def _cells(sidecar: dict[str, Any]) -> int:
    return max((m["cells"] for m in sidecar["metrics"]), default=0)


def _print_benchmark(name: str, entry: dict[str, Any], show_metrics: bool) -> None:
    console.print(f"\n[bold]{name}[/]: {entry['status']}")
    if entry["status"] == "unusable":
        console.print(f"  {escape(entry['problem'])}")
    if entry["status"] != "imported":
        return
    src = entry["source"]
    console.print(
        f"  source   {escape(src['path'])} ({src['format']}, {src['size_bytes']:,} bytes)\n"
        f"  sha256   {src['sha256']}\n"
        f"  importer {escape(entry['importer']['name'])} v{entry['importer']['version']}, "
        f"cache schema {entry['schema_version']}, built {entry['created_utc']}\n"
        f"  coverage {entry['cells']:,} of {entry['rows']['count']:,} cells, {len(entry['metrics'])} metrics"
    )
    for space, counts in entry["extra"].get("nb1shot1_coverage", {}).items():
        share = counts["covered"] / counts["reachable"] if counts["reachable"] else 0.0
        console.print(
            f"  NB-1Shot1 space {space}: {counts['covered']:,} of its {counts['reachable']:,} "
            f"reachable cells ({share:.1%})"
        )
    if not show_metrics:
        console.print("  (--metrics lists every metric and what it means)")
        return
    table = Table(show_edge=False, pad_edge=False)
    for col in ("metric", "cells", "meaning"):
        table.add_column(col, overflow="fold")
    for m in entry["metrics"]:
        note = f" [{m['note']}]" if m["note"] else ""
        table.add_row(m["key"], f"{m['cells']:,}", escape(m["meaning"] + note))
    console.print(table)


def _data_files(data: Path) -> list[str]:
    from nasbench_harness.tabular import nb101, nb201

    candidates = [
        *nb201.AUTO_IMPORT_SOURCES,
        *nb201.OFFICIAL_FILES,
        *(f"nb201/{n}" for n in nb201.OFFICIAL_FILES),
        *nb101.AUTO_IMPORT_SOURCES,
    ]
    return [rel for rel in candidates if (data / rel).is_file()]
