"""The three NAS-Bench-1Shot1 search spaces and their mapping to NAS-Bench-101 cells.

Each space is a chain of *choice blocks* (nodes 1..n) followed by the output node; node 0 is
the input. A choice block picks one op (conv3x3-bn-relu, conv1x1-bn-relu, maxpool3x3) and a
fixed number of parents among the earlier nodes; the output picks its parents the same way.

======  =============  ==========================================  ==================
space   choice blocks  parents of node 1, 2, ..., output            NB101 matrix
======  =============  ==========================================  ==================
1       4              1, 2, 2, 2 | 2    (nodes 1 and 2 fixed:      7x7, vertex 5 unused
                                           1 <- 0, 2 <- 0,1)
2       4              1, 1, 2, 2 | 3                               7x7, vertex 5 unused
3       5              1, 1, 1, 2, 2 | 2                            7x7
======  =============  ==========================================  ==================

Spaces 1 and 2 have only 6 nodes; NB-1Shot1 inserts an unused vertex (op conv1x1-bn-relu, no
edges) before the output so that every cell is a 7x7 NB101 spec, and NB101's pruning removes
it again. Every configuration has exactly 9 edges.

Sizes. NB-1Shot1 states 6,240 / 29,160 / 363,648 architectures for spaces 1 / 2 / 3. These do
not follow one counting rule: enumerating every configuration (ops x parent choices, as
:func:`iter_genotypes` does) gives 14,580 / 29,160 / 1,312,200, and the distinct NB101 cells
those configurations reach after pruning and hashing are fewer still (:func:`reachable_hashes`).
Only space 2's stated size equals the configuration count; we report all three numbers side by
side (:func:`size_table`) rather than force one to match.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from nasbench_harness.errors import GenotypeError, echo
from nasbench_harness.spaces.nb101 import CONV1X1, INPUT, OPS, OUTPUT, Matrix, NB101Spec, graph_hash


@dataclass(frozen=True, slots=True)
class SearchSpace:
    """One NB-1Shot1 search space: how many parents each node takes, and its reference optimum."""

    number: int
    num_parents: tuple[int, ...]
    """Parents of node 1, ..., node n, then of the output node."""
    stated_size: int
    test_min_error: float
    valid_min_error: float
    """Lowest NB101 mean test / validation error in the space: NB-1Shot1's reference for regret."""

    @property
    def num_choice_blocks(self) -> int:
        return len(self.num_parents) - 1

    @property
    def output_node(self) -> int:
        return len(self.num_parents)

    @property
    def has_dummy_vertex(self) -> bool:
        """True when NB-1Shot1 pads the cell with an unused vertex to reach NB101's 7x7 form."""
        return self.num_choice_blocks < 5

    def parent_choices(self, node: int) -> tuple[tuple[int, ...], ...]:
        """Every allowed parent tuple of ``node`` (1..output), in NB-1Shot1's order."""
        return _parent_choices(node, self.num_parents[node - 1])

    @property
    def num_configurations(self) -> int:
        """Ops x parent choices: the number of genotypes :func:`iter_genotypes` yields."""
        count = len(OPS) ** self.num_choice_blocks
        for node in range(1, self.output_node + 1):
            count *= len(self.parent_choices(node))
        return count


SPACES: dict[int, SearchSpace] = {
    1: SearchSpace(1, (1, 2, 2, 2, 2), 6_240, 0.05448716878890991, 0.049278855323791504),
    2: SearchSpace(2, (1, 1, 2, 2, 3), 29_160, 0.057592153549194336, 0.051582515239715576),
    3: SearchSpace(3, (1, 1, 1, 2, 2, 2), 363_648, 0.05338543653488159, 0.04847759008407593),
}

_NODE_RE = re.compile(r"([a-z0-9-]+)((?:~[0-9]{1,3})+)")  # ASCII digits only: int() would read '٣' as 3


def get_space(number: int) -> SearchSpace:
    """The NB-1Shot1 space ``number`` (1, 2 or 3)."""
    if number not in SPACES:
        raise GenotypeError(f"NB-1Shot1 has search spaces 1, 2 and 3, not {echo(number)}")
    return SPACES[number]


@dataclass(frozen=True, slots=True)
class NB1Shot1Genotype:
    """One architecture of an NB-1Shot1 space: an op per choice block and the parents of every node.

    String form (strict): ``|op~p|op~p~q|...|output~p~q|``, one ``|...|`` group per node 1..n
    and one for the output, each listing the node's op (``output`` for the output) and its
    parent node numbers in ascending order.
    """

    space: int
    ops: tuple[str, ...]
    parents: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        space = get_space(self.space)
        n = space.num_choice_blocks
        if not isinstance(self.ops, tuple) or len(self.ops) != n:
            raise GenotypeError(f"space {self.space} has {n} choice blocks, so {n} ops; got {echo(self.ops)}")
        for node, op in enumerate(self.ops, 1):
            if op not in OPS:
                raise GenotypeError(
                    f"space {self.space}, node {node}: unknown op {echo(op)}; choose from {', '.join(OPS)}"
                )
        if not isinstance(self.parents, tuple) or len(self.parents) != n + 1:
            raise GenotypeError(f"space {self.space} needs parents for nodes 1..{n} and the output ({n + 1} tuples)")
        for node, parents in enumerate(self.parents, 1):
            choices = space.parent_choices(node)
            if parents not in choices:
                what = "the output" if node == space.output_node else f"node {node}"
                allowed = " ".join("~".join(map(str, c)) for c in choices)
                raise GenotypeError(
                    f"space {self.space}: {what} takes {space.num_parents[node - 1]} parent(s) among nodes "
                    f"0..{node - 1} in ascending order; got {echo(parents)}; allowed: {allowed}"
                )

    @classmethod
    def from_string(cls, space: int, text: str) -> NB1Shot1Genotype:
        """Parse ``|op~p|...|output~p~q|`` for ``space``."""
        get_space(space)
        groups = text.split("|") if isinstance(text, str) else []
        if len(groups) < 3 or groups[0] or groups[-1]:
            raise GenotypeError(_form_error(space, text, "it must start and end with '|'"))
        ops, parents = [], []
        for group in groups[1:-1]:
            match = _NODE_RE.fullmatch(group)
            if match is None:
                digits = " (parent numbers are written with the digits 0-9)" if _foreign_digits(group) else ""
                problem = f"group {echo(group, 40)} is not op~parent[~parent...]{digits}"
                raise GenotypeError(_form_error(space, text, problem))
            ops.append(match[1])
            parents.append(tuple(int(p) for p in match[2][1:].split("~")))
        if ops[-1] != OUTPUT:
            raise GenotypeError(_form_error(space, text, "the last group must be the output, 'output~p~q'"))
        return cls(space, tuple(ops[:-1]), tuple(parents))

    def to_string(self) -> str:
        names = [*self.ops, OUTPUT]
        return "|" + "|".join(f"{op}~{'~'.join(map(str, p))}" for op, p in zip(names, self.parents, strict=True)) + "|"

    def __str__(self) -> str:
        return self.to_string()

    def to_spec(self) -> NB101Spec:
        """The NB101 spec NB-1Shot1 builds: 7x7, with the unused padding vertex for spaces 1 and 2."""
        space = get_space(self.space)
        size = space.output_node + 1
        rows = [[0] * size for _ in range(size)]
        for node, parents in enumerate(self.parents, 1):
            for p in parents:
                rows[p][node] = 1
        ops = [INPUT, *self.ops, OUTPUT]
        if space.has_dummy_vertex:
            for row in rows:
                row.insert(size - 1, 0)
            rows.insert(size - 1, [0] * (size + 1))
            ops.insert(size - 1, CONV1X1)
        return NB101Spec(tuple(map(tuple, rows)), tuple(ops))

    def module_hash(self) -> str:
        """The NB101 module hash of this architecture (after pruning)."""
        return self.to_spec().module_hash()


def iter_genotypes(space: int) -> Iterator[NB1Shot1Genotype]:
    """Every configuration of ``space`` (ops x parent choices), in a fixed order."""
    s = get_space(space)
    parent_sets = [s.parent_choices(node) for node in range(1, s.output_node + 1)]
    for parents in itertools.product(*parent_sets):
        for ops in itertools.product(OPS, repeat=s.num_choice_blocks):
            yield NB1Shot1Genotype(space, ops, parents)


def random_genotype(space: int, rng: Any) -> NB1Shot1Genotype:
    """A configuration of ``space`` drawn uniformly with the numpy Generator ``rng``: each block's
    op, then each node's parent set, independently (in that order of draws)."""
    s = get_space(space)
    ops = tuple(OPS[int(i)] for i in rng.integers(len(OPS), size=s.num_choice_blocks))
    choices = [s.parent_choices(node) for node in range(1, s.output_node + 1)]
    return NB1Shot1Genotype(space, ops, tuple(c[int(rng.integers(len(c)))] for c in choices))


@cache
def reachable_hashes(space: int) -> frozenset[str]:
    """Module hashes of every distinct NB101 cell some configuration of ``space`` maps to.

    Ops of blocks that pruning removes cannot change the cell, so each parent pattern is pruned
    once and only the ops of its surviving blocks are enumerated.
    """
    s = get_space(space)
    cells: set[tuple[Matrix, tuple[int, ...]]] = set()
    parent_sets = [s.parent_choices(node) for node in range(1, s.output_node + 1)]
    for parents in itertools.product(*parent_sets):
        pruned = NB1Shot1Genotype(space, (OPS[0],) * s.num_choice_blocks, parents).to_spec().validate()
        # the kept vertices are the input, the live blocks in order, and the output; hash labels
        # are -1 (input), the index into OPS (NB101's canonical op order) and -2 (output)
        for live in itertools.product(range(len(OPS)), repeat=pruned.num_vertices - 2):
            cells.add((pruned.matrix, (-1, *live, -2)))
    return frozenset(graph_hash(matrix, labels) for matrix, labels in cells)


def size_table() -> list[dict[str, int]]:
    """Per space: the size NB-1Shot1 states, the configuration count, and distinct NB101 cells."""
    return [
        {
            "space": s.number,
            "stated": s.stated_size,
            "configurations": s.num_configurations,
            "distinct_nb101_cells": len(reachable_hashes(s.number)),
        }
        for s in SPACES.values()
    ]


@cache
def _parent_choices(node: int, k: int) -> tuple[tuple[int, ...], ...]:
    return tuple(itertools.combinations(range(node), k))


def _form_error(space: int, text: object, problem: str) -> str:
    s = get_space(space)
    example = NB1Shot1Genotype(
        space, (OPS[0],) * s.num_choice_blocks, tuple(s.parent_choices(n)[0] for n in range(1, s.output_node + 1))
    )
    return f"malformed NB-1Shot1 space-{space} genotype {echo(text, 120)}: {problem}; expected e.g. {example}"


def _foreign_digits(text: str) -> bool:
    return any(c.isdigit() and not c.isascii() for c in text)
