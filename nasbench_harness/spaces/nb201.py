"""The NAS-Bench-201 cell: 4 nodes, 6 edges, 5 candidate ops per edge, 15,625 cells.

Node 0 is the cell input and node 3 its output; node j sums op(x_i) over its incoming edges
i -> j. A genotype is the op on each of the six edges, in arch-string order
0->1, 0->2, 1->2, 0->3, 1->3, 2->3, written ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.

The *official index* of a cell is its position in the benchmark's ``meta_archs`` list. It is
not a formula of the ops, so the order ships with the package (``nb201_index.npy``, written by
``tools/make_nb201_index.py``). This module never imports torch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from nasbench_harness.errors import GenotypeError, echo

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
"""Candidate ops, in the index order of the official benchmark."""
NUM_OPS = len(OPS)
NUM_NODES = 4
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
"""(source node, target node) of each edge, in arch-string order."""
NUM_EDGES = len(EDGES)
NUM_CELLS = NUM_OPS**NUM_EDGES
PARAMETER_FREE_OPS: frozenset[str] = frozenset({"skip_connect", "avg_pool_3x3"})
"""Ops that transform their input without weights (``none`` is counted on its own)."""
ARCH_STRING_FORM = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"

_OP_INDEX = {name: i for i, name in enumerate(OPS)}
_OP_ALT = "|".join(OPS)
_ARCH_RE = re.compile(
    rf"\|({_OP_ALT})~0\|\+\|({_OP_ALT})~0\|({_OP_ALT})~1\|\+\|({_OP_ALT})~0\|({_OP_ALT})~1\|({_OP_ALT})~2\|"
)
_TOKEN_RE = re.compile(r"([^|~+]*)~([^|~+]*)")
_INT_RE = re.compile(r"[+-]?[0-9]+")
_NUMBER_RE = re.compile(r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?|inf|infinity|nan)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class OpCounts:
    """How many of the six edges carry each op."""

    none: int
    skip_connect: int
    nor_conv_1x1: int
    nor_conv_3x3: int
    avg_pool_3x3: int

    @property
    def parameter_free(self) -> int:
        """Edges with a weight-free op that is not ``none`` (skip connections and pooling)."""
        return self.skip_connect + self.avg_pool_3x3

    def as_dict(self) -> dict[str, int]:
        """Counts keyed by op name, plus ``parameter_free``."""
        return {name: getattr(self, name) for name in OPS} | {"parameter_free": self.parameter_free}


@dataclass(frozen=True, slots=True)
class NB201Genotype:
    """One NB201 cell: the op index (into :data:`OPS`) of each edge, in arch-string order."""

    ops: tuple[int, ...]

    def __post_init__(self) -> None:
        ops = self.ops
        if (
            not isinstance(ops, tuple)
            or len(ops) != NUM_EDGES
            or not all(type(op) is int and 0 <= op < NUM_OPS for op in ops)
        ):
            raise GenotypeError(
                f"an NB201 genotype needs {NUM_EDGES} op indices in 0..{NUM_OPS - 1} "
                f"(a tuple of ints), got {echo(ops)}; op indices mean {dict(enumerate(OPS))}"
            )

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_string(cls, arch: str) -> NB201Genotype:
        """Parse an arch string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (strict: no extra text)."""
        return _parse(arch)

    @classmethod
    def parse(cls, text: str) -> NB201Genotype:
        """An arch string, or an official index written in ASCII digits (``"11472"``); an index
        out of range, a number that is not a whole one, or non-ASCII digits get their own message."""
        if not isinstance(text, str):
            return _parse(text)
        number = text if len(text) <= 24 else f"{text[:21]}... ({len(text)} characters)"  # ASCII when used
        if _INT_RE.fullmatch(text):
            digits = text.lstrip("+-").lstrip("0") or "0"
            if (text.startswith("-") and digits != "0") or len(digits) > len(str(NUM_CELLS)):
                raise GenotypeError(f"NB201 index {number} is out of range 0..{NUM_CELLS - 1}")
            return cls.from_index(int(text))
        if _NUMBER_RE.fullmatch(text):
            value = float(text)
            if not value != value and not 0 <= value < NUM_CELLS:  # NaN is no index at all
                raise GenotypeError(f"NB201 index {number} is out of range 0..{NUM_CELLS - 1}")
            hint = f"; did you mean {int(value)}?" if value.is_integer() else ""
            raise GenotypeError(f"an NB201 index is a whole number 0..{NUM_CELLS - 1} in digits, got {number}{hint}")
        if any(c.isdigit() and not c.isascii() for c in text):
            raise GenotypeError(
                f"{echo(text)} holds non-ASCII digits; write an NB201 index with the digits 0-9, or give an arch "
                f"string {ARCH_STRING_FORM}"
            )
        return _parse(text)

    @classmethod
    def from_ops(cls, ops: Iterable[int | str]) -> NB201Genotype:
        """From six ops given as names (``"nor_conv_3x3"``) or indices, in arch-string order."""
        values = []
        for op in ops:
            if isinstance(op, str):
                if op not in _OP_INDEX:
                    raise GenotypeError(f"unknown NB201 op {echo(op)}; the ops are {', '.join(OPS)}")
                values.append(_OP_INDEX[op])
            else:
                values.append(int(op) if isinstance(op, np.integer) else op)
        return cls(tuple(values))

    @classmethod
    def from_code(cls, code: int) -> NB201Genotype:
        """From the base-5 code of the ops (edge 0->1 the most significant digit)."""
        if not 0 <= code < NUM_CELLS:
            raise GenotypeError(f"an NB201 op code lies in 0..{NUM_CELLS - 1}, got {code}")
        return _from_code(int(code))

    @classmethod
    def from_index(cls, index: int) -> NB201Genotype:
        """The cell at position ``index`` (0..15624) of the official benchmark."""
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise GenotypeError(f"an NB201 architecture index is an integer in 0..{NUM_CELLS - 1}, got {echo(index)}")
        if not 0 <= index < NUM_CELLS:
            raise GenotypeError(f"NB201 index {index} is out of range 0..{NUM_CELLS - 1}")
        return _from_code(int(_index_to_code()[index]))

    # -- views --------------------------------------------------------------------------------
    def to_string(self) -> str:
        """The official arch string."""
        n = [OPS[op] for op in self.ops]
        return f"|{n[0]}~0|+|{n[1]}~0|{n[2]}~1|+|{n[3]}~0|{n[4]}~1|{n[5]}~2|"

    def __str__(self) -> str:
        return self.to_string()

    @property
    def op_names(self) -> tuple[str, ...]:
        """Op name on each edge, in arch-string order."""
        return tuple(OPS[op] for op in self.ops)

    @property
    def code(self) -> int:
        """Base-5 number of the ops, edge 0->1 most significant (0..15624)."""
        code = 0
        for op in self.ops:
            code = code * NUM_OPS + op
        return code

    @property
    def index(self) -> int:
        """Official NAS-Bench-201 architecture index (0..15624)."""
        return int(_code_to_index()[self.code])

    def op_counts(self) -> OpCounts:
        """How many edges carry each op."""
        return OpCounts(*(self.ops.count(i) for i in range(NUM_OPS)))

    @property
    def is_connected(self) -> bool:
        """True when some path of non-``none`` edges leads from the input to the output node.

        A disconnected cell outputs zeros whatever its input (its accuracy is chance level).
        """
        reached = {0}
        for (src, dst), op in zip(EDGES, self.ops, strict=True):  # edges are in topological order
            if op != 0 and src in reached:
                reached.add(dst)
        return NUM_NODES - 1 in reached


def all_genotypes() -> tuple[NB201Genotype, ...]:
    """All 15,625 cells, in official index order."""
    return _all_genotypes()


def iter_genotypes() -> Iterator[NB201Genotype]:
    """Iterate over all 15,625 cells in official index order."""
    return iter(_all_genotypes())


def all_op_indices() -> np.ndarray:
    """Array (15625, 6) of op indices (int8), row i = official index i; read-only."""
    return _all_op_indices()


# -- internals --------------------------------------------------------------------------------
def _parse(arch: object) -> NB201Genotype:
    if not isinstance(arch, str):
        raise GenotypeError(f"an NB201 arch string is a str of the form {ARCH_STRING_FORM}, got {type(arch).__name__}")
    match = _ARCH_RE.fullmatch(arch)
    if match is None:
        raise GenotypeError(_explain_bad_string(arch))
    return NB201Genotype(tuple(_OP_INDEX[name] for name in match.groups()))


def _explain_bad_string(arch: str) -> str:
    """Name the first thing wrong with ``arch`` and show the expected form."""
    expected = (
        f"expected {ARCH_STRING_FORM} with each op one of {', '.join(OPS)}, e.g. "
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    )
    problem = "it does not have that form"
    if arch != arch.strip():
        problem = "it has leading or trailing whitespace"
    else:
        nodes = arch.split("+")
        tokens = [_TOKEN_RE.fullmatch(t) for node in nodes for t in node.strip("|").split("|") if t]
        if len(nodes) != NUM_NODES - 1:
            problem = f"it has {len(nodes)} node groups separated by '+', a cell has {NUM_NODES - 1}"
        elif any(t is None for t in tokens):
            problem = "an edge is not of the form op~input"
        else:
            unknown = [t.group(1) for t in tokens if t is not None and t.group(1) not in _OP_INDEX]
            if unknown:
                problem = f"unknown op {echo(unknown[0])}"
            elif [len([t for t in n.strip("|").split("|") if t]) for n in nodes] != [1, 2, 3]:
                problem = "node groups must hold 1, 2 and 3 edges"
            else:
                problem = "input node numbers must run ~0, ~0 ~1, ~0 ~1 ~2"
    return f"malformed NB201 arch string {echo(arch)}: {problem}; {expected}"


@cache
def _index_to_code() -> np.ndarray:
    with resources.files(__package__).joinpath("nb201_index.npy").open("rb") as f:
        codes = np.load(f)
    codes.setflags(write=False)
    return codes


@cache
def _code_to_index() -> np.ndarray:
    inverse = np.empty(NUM_CELLS, dtype=np.int64)
    inverse[_index_to_code()] = np.arange(NUM_CELLS)
    inverse.setflags(write=False)
    return inverse


@cache
def _from_code(code: int) -> NB201Genotype:
    ops = []
    for _ in range(NUM_EDGES):
        code, op = divmod(code, NUM_OPS)
        ops.append(op)
    return NB201Genotype(tuple(reversed(ops)))


@cache
def _all_op_indices() -> np.ndarray:
    codes = _index_to_code().astype(np.int64)
    digits = NUM_OPS ** np.arange(NUM_EDGES - 1, -1, -1)
    ops = ((codes[:, None] // digits) % NUM_OPS).astype(np.int8)
    ops.setflags(write=False)
    return ops


@cache
def _all_genotypes() -> tuple[NB201Genotype, ...]:
    return tuple(NB201Genotype(tuple(int(op) for op in row)) for row in _all_op_indices())
