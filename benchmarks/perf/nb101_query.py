"""NB101 / NB-1Shot1 import and query speed, with references measured in the same run.

Goals (issue 3): importing the shared tfrecord < 30 s; open the cache + one query in a fresh
process < 0.5 s; scoring one NB-1Shot1 genotype (map, prune, hash, look up) < 200 us median.
References: reading + parsing the records alone (the floor of any import), ``python -c pass``,
and ``import torch`` (what a torch-based hash would cost before its first query).

Usage: NBH_DATA_DIR=... python benchmarks/perf/nb101_query.py
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from nb201_query import fresh_process, row  # the script directory is on sys.path

from nasbench_harness import paths
from nasbench_harness.spaces import nb101 as nb101_space
from nasbench_harness.spaces.nb1shot1 import SPACES, NB1Shot1Genotype
from nasbench_harness.spaces.nb101 import OPS
from nasbench_harness.tabular.nb1shot1 import score
from nasbench_harness.tabular.nb101 import AUTO_IMPORT_SOURCES, NB101Benchmark
from nasbench_harness.tabular.nb101_import import import_nb101
from nasbench_harness.tabular.nb101_records import iter_nb101_records

GENOTYPE = "|conv3x3-bn-relu~0|conv3x3-bn-relu~0~1|maxpool3x3~0~2|conv1x1-bn-relu~1~3|output~2~4|"


def random_genotypes(n: int, seed: int = 0) -> list[NB1Shot1Genotype]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        s = SPACES[rnd.choice([1, 2, 3])]
        ops = tuple(rnd.choice(OPS) for _ in range(s.num_choice_blocks))
        parents = tuple(rnd.choice(s.parent_choices(node)) for node in range(1, s.output_node + 1))
        out.append(NB1Shot1Genotype(s.number, ops, parents))
    return out


def main() -> None:
    data = paths.data_dir()
    source = paths.first_file(data, AUTO_IMPORT_SOURCES)
    if source is None:
        raise SystemExit("set NBH_DATA_DIR to a directory holding nasbench/<file>.tfrecord")
    cache = Path(tempfile.mkdtemp(prefix="nbh-bench-"))

    print(f"import of {source.name} ({source.stat().st_size / 1e6:.1f} MB)")
    start = time.perf_counter()
    n_records = sum(1 for _ in iter_nb101_records(source))
    parse_s = time.perf_counter() - start
    start = time.perf_counter()
    import_nb101(source, cache)
    import_s = time.perf_counter() - start
    row(f"reference: read + parse {n_records:,} records", parse_s, "s")
    row("nbh data import nb101 (incl. NB-1Shot1 coverage)", import_s, "s", "goal < 30 s", parse_s)

    env = {**os.environ, "NBH_CACHE_DIR": str(cache)}
    print("fresh process (median wall time over 7 runs, max RSS)")
    bare_t, _ = fresh_process("pass", env)
    torch_t, torch_m = fresh_process("import torch", env)
    api_t, api_m = fresh_process(
        "from nasbench_harness.tabular.nb101 import NB101Benchmark as B;"
        "from nasbench_harness.spaces.nb1shot1 import NB1Shot1Genotype as G;"
        f"print(B.open().lookup(G.from_string(1, {GENOTYPE!r})))",
        env,
    )
    cli_t, cli_m = fresh_process(
        f"import sys; sys.argv=['nbh','query','nb1shot1','--space','1',{GENOTYPE!r},'--json'];"
        "from nasbench_harness.cli.main import main; main()",
        env,
    )
    row("reference: python -c pass", bare_t, "s")
    row("reference: import torch", torch_t, "s", "", bare_t)
    row("open cache + score 1 genotype (Python API)", api_t, "s", "goal < 0.5 s", bare_t)
    row("open cache + score 1 genotype (nbh query)", cli_t, "s", "goal < 0.5 s", bare_t)
    row("RSS: import torch", torch_m, "MB")
    row("RSS: open cache + score 1 genotype (API)", api_m, "MB")
    row("RSS: open cache + score 1 genotype (nbh)", cli_m, "MB")

    bench = NB101Benchmark.open(cache)
    genotypes = random_genotypes(3000)
    print(f"scoring {len(genotypes):,} random NB-1Shot1 genotypes (spaces 1-3), hash cache cleared first")
    nb101_space._spec_hash.cache_clear()
    times = []
    for g in genotypes:
        t0 = time.perf_counter()
        score(bench, g)
        times.append((time.perf_counter() - t0) * 1e6)
    lookups = []
    for g in genotypes[:500]:
        h = g.module_hash()
        t0 = time.perf_counter()
        bench.row_of(h)
        lookups.append((time.perf_counter() - t0) * 1e6)
    ref = statistics.median(lookups)
    row("reference: look up a known hash", ref, "us")
    row("score(genotype): map, prune, hash, look up", statistics.median(times), "us", "goal < 200 us", ref)
    row("  same, 95th percentile", sorted(times)[int(0.95 * len(times))], "us")


if __name__ == "__main__":
    main()
