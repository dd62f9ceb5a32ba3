"""NB201 query speed and memory, measured side by side with references in one run.

Goals (issue 2): open the cache + one query in a fresh process < 0.5 s and < 200 MB RSS;
one query < 10 us (median); all 15,625 cells vectorised < 20 ms.
References: a bare ``python -c pass`` (interpreter start), and the same lookups done the
obvious way with pandas on the cache's own Parquet table.

Usage: NBH_DATA_DIR=... python benchmarks/perf/nb201_query.py   (imports into a temp cache)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

import numpy as np

from nasbench_harness import paths
from nasbench_harness.spaces.nb201 import all_genotypes
from nasbench_harness.tabular.cache import TABLE_FILE
from nasbench_harness.tabular.nb201 import NB201Benchmark, find_source
from nasbench_harness.tabular.nb201_import import import_nb201

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
METRIC = "cifar10/ori-test/accuracy@200"
REPEATS = 7


# The child reports its own peak RSS (VmHWM) at exit: getrusage's ru_maxrss would include the
# forking parent's memory, which Linux carries across exec.
_REPORT_PEAK = (
    "import atexit, sys\n"
    "atexit.register(lambda: sys.stderr.write([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]))\n"
)


def fresh_process(code: str, env: dict[str, str]) -> tuple[float, float]:
    """Median wall time (s) and max peak RSS (MB) of ``python -c code`` over REPEATS runs."""
    times, rss = [], []
    for _ in range(REPEATS):
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", _REPORT_PEAK + code],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"benchmark process failed ({proc.stderr.strip()}): {code}")
        rss.append(int(proc.stderr.split("VmHWM:")[1].split()[0]) / 1024)
    return statistics.median(times), max(rss)


def per_call_us(fn, number: int = 20000) -> float:  # type: ignore[no-untyped-def]
    """Median over repeats of the mean time per call, in microseconds."""
    return statistics.median(t / number * 1e6 for t in timeit.repeat(fn, number=number, repeat=REPEATS))


def per_batch_ms(fn, number: int = 20) -> float:  # type: ignore[no-untyped-def]
    return statistics.median(t / number * 1e3 for t in timeit.repeat(fn, number=number, repeat=REPEATS))


def row(name: str, value: float, unit: str, goal: str = "", ref: float | None = None) -> None:
    ratio = f"{value / ref:8.2f}x ref" if ref else " " * 12
    print(f"  {name:<46} {value:10.3f} {unit:<3} {ratio}  {goal}")


def main() -> None:
    source = find_source(paths.data_dir())
    if source is None:
        raise SystemExit("set NBH_DATA_DIR to a directory holding nb201/nb201_table.parquet")
    cache = Path(tempfile.mkdtemp(prefix="nbh-bench-"))
    import_nb201(source, cache)
    env = {**os.environ, "NBH_CACHE_DIR": str(cache)}

    print("fresh process (median wall time over 7 runs, max RSS)")
    bare_t, bare_m = fresh_process("pass", env)
    api_t, api_m = fresh_process(
        f"from nasbench_harness.tabular.nb201 import NB201Benchmark as B;print(B.open().query({ARCH!r}, {METRIC!r}))",
        env,
    )
    cli_t, cli_m = fresh_process(
        f"import sys; sys.argv=['nbh','query','nb201',{ARCH!r},'--json'];"
        "from nasbench_harness.cli.main import main; main()",
        env,
    )
    pd_t, pd_m = fresh_process(
        f"import pandas as pd; t=pd.read_parquet({str(cache / 'nb201' / TABLE_FILE)!r});"
        f"print(t.loc[t.arch_str=={ARCH!r}, {METRIC!r}].iloc[0])",
        env,
    )
    row("reference: python -c pass", bare_t, "s")
    row("open cache + 1 query (Python API)", api_t, "s", "goal < 0.5 s", bare_t)
    row("open cache + 1 query (nbh query --json)", cli_t, "s", "goal < 0.5 s", bare_t)
    row("reference: pandas.read_parquet + .loc", pd_t, "s", "", bare_t)
    row("RSS: python -c pass", bare_m, "MB")
    row("RSS: open cache + 1 query (Python API)", api_m, "MB", "goal < 200 MB", bare_m)
    row("RSS: open cache + 1 query (nbh query --json)", cli_m, "MB", "goal < 200 MB", bare_m)
    row("RSS: pandas.read_parquet + .loc", pd_m, "MB", "", bare_m)

    bench = NB201Benchmark.open(cache)
    genotypes = all_genotypes()
    g = genotypes[9930]
    import pandas as pd

    frame = pd.read_parquet(cache / "nb201" / TABLE_FILE).set_index("arch_str")
    print("single query (median of 7 repeats, mean per call)")
    ref_us = per_call_us(lambda: frame.at[ARCH, METRIC], number=2000)
    row("reference: pandas DataFrame.at[arch, metric]", ref_us, "us")
    row("query(genotype, str metric)", per_call_us(lambda: bench.query(g, METRIC)), "us", "goal < 10 us", ref_us)
    row("query(arch string, str metric)", per_call_us(lambda: bench.query(ARCH, METRIC)), "us", "goal < 10 us", ref_us)
    row("query(index, str metric)", per_call_us(lambda: bench.query(9930, METRIC)), "us", "goal < 10 us", ref_us)

    print("all 15,625 cells at once (median of 7 repeats)")
    strings = [x.to_string() for x in genotypes]
    indices = np.arange(len(genotypes))
    ref_ms = per_batch_ms(lambda: frame.loc[strings, METRIC].to_numpy(), number=5)
    row("reference: pandas .loc[list of arch strings]", ref_ms, "ms")
    row(
        "query_many(genotypes)", per_batch_ms(lambda: bench.query_many(genotypes, METRIC)), "ms", "goal < 20 ms", ref_ms
    )
    row(
        "query_many(arch strings)",
        per_batch_ms(lambda: bench.query_many(strings, METRIC)),
        "ms",
        "goal < 20 ms",
        ref_ms,
    )
    row(
        "query_many(index array)", per_batch_ms(lambda: bench.query_many(indices, METRIC)), "ms", "goal < 20 ms", ref_ms
    )


if __name__ == "__main__":
    main()
