"""NAS-Bench-101 cells: the model spec, its validity, pruning, and the module hash.

A cell is a DAG of at most 7 vertices and 9 edges given by an upper-triangular adjacency
matrix and one op per vertex (``input`` first, ``output`` last, the rest one of :data:`OPS`).
Vertices that are not on a path from input to output are pruned before hashing, as the
official ``ModelSpec`` does; the module hash is the official isomorphism-invariant MD5.

This is the same algorithm as ``nasbench`` / ``nasbench-pytorch`` (the tests check that they
agree); it lives here because ``nasbench_pytorch.model`` imports torch on import (1.3 s),
and ground-truth queries must start in milliseconds without torch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from nasbench_harness.errors import GenotypeError

INPUT, OUTPUT = "input", "output"
CONV3X3, CONV1X1, MAXPOOL3X3 = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
OPS: tuple[str, ...] = (CONV3X3, CONV1X1, MAXPOOL3X3)
"""Ops of intermediate vertices, in NB101's canonical order (their hash labels 0, 1, 2)."""
MAX_VERTICES = 7
MAX_EDGES = 9
_LABEL = {op: i for i, op in enumerate(OPS)} | {INPUT: -1, OUTPUT: -2}

Matrix = tuple[tuple[int, ...], ...]


@dataclass(frozen=True, slots=True)
class NB101Spec:
    """An NB101 cell as given (not yet pruned): adjacency rows and one op per vertex."""

    matrix: Matrix
    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        _check_structure(self.matrix, self.ops)

    @classmethod
    def from_matrix(cls, matrix: Sequence[Sequence[int]] | np.ndarray, ops: Sequence[str]) -> NB101Spec:
        """From a square 0/1 matrix (nested lists or an array) and the vertex ops."""
        try:
            rows = tuple(tuple(int(x) for x in row) for row in np.asarray(matrix).tolist())
        except (TypeError, ValueError):
            raise GenotypeError(f"an NB101 adjacency matrix is a square 0/1 matrix, got {matrix!r}") from None
        return cls(rows, tuple(ops))

    @classmethod
    def from_strings(cls, adjacency: str, ops: str | Sequence[str]) -> NB101Spec:
        """From the record format: '0'/'1' characters row-major, ops comma-separated."""
        op_list = tuple(ops.split(",")) if isinstance(ops, str) else tuple(ops)
        n = len(op_list)
        if len(adjacency) != n * n or set(adjacency) - {"0", "1"}:
            raise GenotypeError(f"adjacency string {adjacency!r} must hold {n}x{n}={n * n} characters 0/1 for {n} ops")
        return cls(tuple(tuple(int(c) for c in adjacency[r * n : (r + 1) * n]) for r in range(n)), op_list)

    @property
    def num_vertices(self) -> int:
        return len(self.ops)

    @property
    def num_edges(self) -> int:
        return sum(map(sum, self.matrix))

    @property
    def adjacency_string(self) -> str:
        """The matrix as '0'/'1' characters, row-major (the tfrecord format)."""
        return "".join(str(x) for row in self.matrix for x in row)

    def pruned(self) -> NB101Spec:
        """The spec without vertices off every input-to-output path; error if the output is unreachable."""
        return _prune(self.matrix, self.ops)

    def validate(self) -> NB101Spec:
        """The pruned spec, checked against NB101's limits (<= 7 vertices, <= 9 edges)."""
        pruned = self.pruned()
        if pruned.num_vertices > MAX_VERTICES:
            raise GenotypeError(
                f"NB101 cells have at most {MAX_VERTICES} vertices after pruning; this one has {pruned.num_vertices}"
            )
        if pruned.num_edges > MAX_EDGES:
            raise GenotypeError(
                f"NB101 cells have at most {MAX_EDGES} edges after pruning; this one has {pruned.num_edges}"
            )
        return pruned

    def module_hash(self) -> str:
        """The official NB101 module hash (of the pruned, validated spec)."""
        return _spec_hash(self.matrix, self.ops)


def graph_hash(matrix: Matrix, labels: Sequence[int]) -> str:
    """NB101's isomorphism-invariant MD5 of a DAG with integer vertex labels."""
    n = len(matrix)
    ins = [[w for w in range(n) if matrix[w][v]] for v in range(n)]
    outs = [[w for w in range(n) if matrix[v][w]] for v in range(n)]
    md5 = hashlib.md5
    hashes = [md5(str((len(outs[v]), len(ins[v]), labels[v])).encode()).hexdigest() for v in range(n)]
    for _ in range(n):
        hashes = [
            md5(
                (
                    "".join(sorted([hashes[w] for w in ins[v]]))
                    + "|"
                    + "".join(sorted([hashes[w] for w in outs[v]]))
                    + "|"
                    + hashes[v]
                ).encode()
            ).hexdigest()
            for v in range(n)
        ]
    return md5(str(sorted(hashes)).encode()).hexdigest()


@lru_cache(maxsize=1 << 17)
def _spec_hash(matrix: Matrix, ops: tuple[str, ...]) -> str:
    pruned = NB101Spec(matrix, ops).validate()
    return graph_hash(pruned.matrix, [_LABEL[op] for op in pruned.ops])


def _prune(matrix: Matrix, ops: tuple[str, ...]) -> NB101Spec:
    n = len(ops)
    from_input, frontier = {0}, [0]
    while frontier:
        top = frontier.pop()
        for v in range(top + 1, n):
            if matrix[top][v] and v not in from_input:
                from_input.add(v)
                frontier.append(v)
    to_output, frontier = {n - 1}, [n - 1]
    while frontier:
        top = frontier.pop()
        for v in range(top):
            if matrix[v][top] and v not in to_output:
                to_output.add(v)
                frontier.append(v)
    keep = sorted(from_input & to_output)
    if len(keep) < 2:
        raise GenotypeError("invalid NB101 cell: no path of edges leads from the input to the output vertex")
    if len(keep) == n:
        return NB101Spec(matrix, ops)
    return NB101Spec(tuple(tuple(matrix[r][c] for c in keep) for r in keep), tuple(ops[i] for i in keep))


def _check_structure(matrix: Matrix, ops: tuple[str, ...]) -> None:
    n = len(ops)
    if not isinstance(matrix, tuple) or len(matrix) != n or any(len(row) != n for row in matrix):
        raise GenotypeError(f"an NB101 spec needs a {n}x{n} adjacency matrix for its {n} ops")
    if n < 2:
        raise GenotypeError("an NB101 spec has at least the input and the output vertex")
    if ops[0] != INPUT or ops[-1] != OUTPUT:
        raise GenotypeError(f"NB101 ops start with {INPUT!r} and end with {OUTPUT!r}, got {list(ops)}")
    unknown = [op for op in ops[1:-1] if op not in OPS]
    if unknown:
        raise GenotypeError(f"unknown NB101 op {unknown[0]!r}; intermediate vertices take {', '.join(OPS)}")
    for r, row in enumerate(matrix):
        for c, x in enumerate(row):
            if x not in (0, 1):
                raise GenotypeError(f"NB101 adjacency entries are 0 or 1, got {x!r} at ({r}, {c})")
            if x and c <= r:
                raise GenotypeError(
                    f"an NB101 adjacency matrix is strictly upper triangular (edges go to later vertices); "
                    f"found an edge {r}->{c}"
                )
