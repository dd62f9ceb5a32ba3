"""The one list of search spaces: their names, the benchmark that scores them, what they support.

Every part of the harness that names a space (the run config, suites, the CLI, plugins, the
table-only baselines, the methods' space adapters) reads this list; adding a space starts here.
Torch-free, so the CLI and the analysis layer read it without loading torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from nasbench_harness.errors import ConfigError


@dataclass(frozen=True)
class SpaceInfo:
    """A search space.

    ``family``: "nb201" or "nb1shot1"; ``number``: the NB-1Shot1 space (1-3), None for NB201;
    ``benchmark``: the table that scores its cells ("nb201" or "nb101"); ``datasets``: what a
    search on it may use; ``title``: its name in figures and reports.
    """

    name: str
    family: str
    number: int | None
    benchmark: str
    datasets: tuple[str, ...]
    title: str

    @property
    def ops(self) -> tuple[str, ...]:
        """The candidate operations of a choice (NB201: an edge's; NB-1Shot1: a block's)."""
        if self.family == "nb201":
            from nasbench_harness.spaces.nb201 import OPS
        else:
            from nasbench_harness.spaces.nb101 import OPS
        return OPS


SPACES: dict[str, SpaceInfo] = {
    "nb201": SpaceInfo("nb201", "nb201", None, "nb201", ("cifar10", "cifar100", "ImageNet16-120"), "NAS-Bench-201"),
    **{
        f"nb1shot1-{n}": SpaceInfo(f"nb1shot1-{n}", "nb1shot1", n, "nb101", ("cifar10",), f"NB-1Shot1 space {n}")
        for n in (1, 2, 3)
    },
}
"""Every search space, by name."""

SPACE_NAMES: tuple[str, ...] = tuple(SPACES)
"""The names of every space, in a stable order (NB201 first)."""


def get_space_info(name: str) -> SpaceInfo:
    """The space called ``name``; a :class:`ConfigError` naming every space otherwise."""
    if name not in SPACES:
        raise ConfigError(f"unknown search space {name!r}; choose one of: {', '.join(SPACE_NAMES)}")
    return SPACES[name]


def nb1shot1_space_name(number: int) -> str:
    """The catalog name of NB-1Shot1 space ``number`` (1-3), e.g. ``nb1shot1-2``."""
    name = f"nb1shot1-{number}"
    if name not in SPACES:
        raise ConfigError(f"NB-1Shot1 has spaces 1, 2 and 3; got {number!r}")
    return name


def open_benchmark(
    name: str, data_dir: str | os.PathLike[str] | None = None, cache_dir: str | os.PathLike[str] | None = None
) -> Any:
    """The tabular benchmark that scores space ``name`` (an ``NB201Benchmark`` or ``NB101Benchmark``),
    from the cache in ``cache_dir`` (default: ``NBH_CACHE_DIR``, else the user cache), imported
    from ``data_dir`` on first use."""
    if get_space_info(name).benchmark == "nb201":
        from nasbench_harness.tabular.nb201 import NB201Benchmark

        return NB201Benchmark.open(data_dir=data_dir, cache_dir=cache_dir)
    from nasbench_harness.tabular.nb101 import NB101Benchmark

    return NB101Benchmark.open(data_dir=data_dir, cache_dir=cache_dir)
