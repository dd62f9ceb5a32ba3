"""NB101 specs: validity, pruning and the module hash agree with nasbench-pytorch (the reference)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from nasbench_pytorch.model import ModelSpec as ReferenceSpec
from nasbench_pytorch.model import graph_util

from nasbench_harness.errors import GenotypeError
from nasbench_harness.spaces.nb101 import CONV1X1, CONV3X3, INPUT, MAXPOOL3X3, OPS, OUTPUT, NB101Spec

rng_ops = st.sampled_from(OPS)


def reference_spec(matrix: np.ndarray, ops: list[str]) -> ReferenceSpec | None:
    """nasbench-pytorch's spec, or None for a disconnected cell (its constructor then fails on
    ``torch.tensor(None)`` instead of returning an invalid spec as the original nasbench does)."""
    try:
        return ReferenceSpec(matrix.copy(), list(ops))
    except RuntimeError:
        return None


def reference_hash(spec: ReferenceSpec) -> str:
    """nasbench-pytorch's hash of its pruned spec. Its ``hash_spec`` passes a torch tensor to
    ``np.sum(..., axis=...)``, which current numpy and torch reject, so call ``hash_module``
    (the reference algorithm) with the same matrix as a numpy array and the same labels."""
    labels = [-1] + [list(OPS).index(op) for op in spec.ops[1:-1]] + [-2]
    return graph_util.hash_module(np.asarray(spec.matrix), labels)


@st.composite
def specs(draw: st.DrawFn, max_vertices: int = 7) -> tuple[np.ndarray, list[str]]:
    n = draw(st.integers(2, max_vertices))
    bits = draw(st.lists(st.booleans(), min_size=n * (n - 1) // 2, max_size=n * (n - 1) // 2))
    matrix = np.zeros((n, n), dtype=int)
    matrix[np.triu_indices(n, 1)] = bits
    return matrix, [INPUT, *draw(st.lists(rng_ops, min_size=n - 2, max_size=n - 2)), OUTPUT]


@settings(max_examples=300, deadline=None)
@given(specs())
def test_pruning_and_hash_match_the_reference(spec: tuple[np.ndarray, list[str]]) -> None:
    matrix, ops = spec
    reference = reference_spec(matrix, ops)
    ours = NB101Spec.from_matrix(matrix, ops)
    if reference is None:
        with pytest.raises(GenotypeError, match="no path"):
            ours.pruned()
        return
    pruned = ours.pruned()
    assert [list(r) for r in pruned.matrix] == np.asarray(reference.matrix).tolist()
    assert list(pruned.ops) == reference.ops
    if pruned.num_edges <= 9:
        assert ours.module_hash() == reference_hash(reference)


@settings(max_examples=200, deadline=None)
@given(specs(), st.randoms())
def test_hash_is_invariant_under_vertex_relabelling(spec: tuple[np.ndarray, list[str]], rnd) -> None:  # type: ignore[no-untyped-def]
    matrix, ops = spec
    n = len(ops)
    middle = list(range(1, n - 1))
    rnd.shuffle(middle)
    perm = [0, *middle, n - 1]  # new position of vertex i is perm.index(i)
    permuted = matrix[np.ix_(perm, perm)]
    assume(not np.tril(permuted).any())  # the relabelling must keep edges pointing forward
    original = NB101Spec.from_matrix(matrix, ops)
    try:
        expected = original.module_hash()
    except GenotypeError:
        assume(False)
    assert NB101Spec.from_matrix(permuted, [ops[i] for i in perm]).module_hash() == expected


def test_hash_tells_different_cells_apart() -> None:
    chain = [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    a = NB101Spec.from_matrix(chain, [INPUT, CONV3X3, OUTPUT]).module_hash()
    b = NB101Spec.from_matrix(chain, [INPUT, CONV1X1, OUTPUT]).module_hash()
    c = NB101Spec.from_matrix([[0, 1, 1], [0, 0, 1], [0, 0, 0]], [INPUT, CONV3X3, OUTPUT]).module_hash()
    assert len({a, b, c}) == 3


def test_string_form_round_trip() -> None:
    spec = NB101Spec.from_strings("0110000100000000", "input,conv3x3-bn-relu,maxpool3x3,output")
    assert spec.adjacency_string == "0110000100000000"
    assert spec.num_edges == 3
    assert spec.pruned().ops == (INPUT, CONV3X3, OUTPUT)  # maxpool vertex 2 does not reach the output


def _full_dag(n: int) -> list[list[int]]:
    return [[int(c > r) for c in range(n)] for r in range(n)]


@pytest.mark.parametrize(
    ("matrix", "ops", "match"),
    [
        (_full_dag(8), [INPUT, *[CONV3X3] * 6, OUTPUT], "at most 7 vertices"),
        (_full_dag(6), [INPUT, *[CONV3X3] * 4, OUTPUT], "at most 9 edges"),
        ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [INPUT, "conv5x5", OUTPUT], "unknown NB101 op 'conv5x5'"),
        ([[0, 1, 0], [0, 0, 0], [0, 0, 0]], [INPUT, CONV3X3, OUTPUT], "no path"),
        ([[0, 1, 0], [1, 0, 1], [0, 0, 0]], [INPUT, CONV3X3, OUTPUT], "strictly upper triangular"),
        ([[0, 2, 0], [0, 0, 1], [0, 0, 0]], [INPUT, CONV3X3, OUTPUT], "0 or 1"),
        ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [CONV3X3, CONV3X3, OUTPUT], "start with 'input'"),
        ([[0, 1], [0, 0]], [INPUT, CONV3X3, OUTPUT], "3x3 adjacency matrix"),
    ],
)
def test_invalid_specs_are_named(matrix: list, ops: list[str], match: str) -> None:
    with pytest.raises(GenotypeError, match=match):
        NB101Spec.from_matrix(matrix, ops).module_hash()


def test_bad_strings() -> None:
    with pytest.raises(GenotypeError, match="must hold 3x3=9 characters"):
        NB101Spec.from_strings("0101", "input,maxpool3x3,output")
    with pytest.raises(GenotypeError, match="0/1"):
        NB101Spec.from_strings("01x001000", f"input,{MAXPOOL3X3},output")


def test_every_small_cell_matches_the_reference() -> None:
    """Exhaustive over 4-vertex cells: 2^6 graphs x 3^2 op labellings."""
    pairs = list(itertools.combinations(range(4), 2))
    for bits in itertools.product((0, 1), repeat=len(pairs)):
        matrix = np.zeros((4, 4), dtype=int)
        for (r, c), b in zip(pairs, bits, strict=True):
            matrix[r, c] = b
        for mid in itertools.product(OPS, repeat=2):
            ops = [INPUT, *mid, OUTPUT]
            reference = reference_spec(matrix, ops)
            if reference is not None:
                assert NB101Spec.from_matrix(matrix, ops).module_hash() == reference_hash(reference)
