"""Regenerate ``nasbench_harness/spaces/nb201_index.npy`` from an NB201 table.

The official NAS-Bench-201 architecture index is the position of a cell in the benchmark's
``meta_archs`` list, which is not a formula of the cell's ops. The package ships that order as
15,625 uint16 codes (code = base-5 number of the six op indices, edge 0->1 most significant) so
that ``NB201Genotype.index`` works without any benchmark file.

Usage: python tools/make_nb201_index.py TABLE.parquet|TABLE.csv[.gz]
The table needs the columns ``index`` and ``arch_str`` for all 15,625 cells.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from nasbench_harness.spaces.nb201 import NB201Genotype

OUT = Path(__file__).resolve().parents[1] / "nasbench_harness" / "spaces" / "nb201_index.npy"


def main(path: str) -> None:
    table = pq.read_table(path) if path.endswith(".parquet") else pacsv.read_csv(path)
    index = table.column("index").to_numpy()
    arch = table.column("arch_str").to_pylist()
    codes = np.zeros(15625, dtype=np.uint16)
    for i, s in zip(index, arch, strict=True):
        codes[i] = NB201Genotype.from_string(s).code
    if len(set(codes.tolist())) != 15625:
        raise SystemExit("the table does not hold 15,625 distinct cells")
    np.save(OUT, codes)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
