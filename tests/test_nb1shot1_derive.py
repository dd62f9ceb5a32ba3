"""Deriving NB-1Shot1 genotypes from one-shot weights: hand-built cases, round trip, shapes, ties."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nasbench_harness.errors import GenotypeError
from nasbench_harness.spaces.nb1shot1 import NB1Shot1Genotype, get_space
from nasbench_harness.spaces.nb1shot1_derive import ArchLayout, check_alphas, derive_genotype, genotype_weights
from nasbench_harness.spaces.nb101 import CONV1X1, CONV3X3, INPUT, MAXPOOL3X3, OUTPUT, NB101Spec, graph_hash

C3, C1, MP = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]  # op logits picking each op (our order)
OP_OF_ROW = {tuple(C3): CONV3X3, tuple(C1): CONV1X1, tuple(MP): MAXPOOL3X3}
LABEL = {INPUT: -1, CONV3X3: 0, CONV1X1: 1, MAXPOOL3X3: 2, OUTPUT: -2}


def arr(*rows: object) -> np.ndarray:
    return np.array(rows, dtype=float)


# (space, ops, output, inputs, expected parents, expected pruned matrix, expected pruned ops)
CASES = [
    pytest.param(
        1,
        arr(C3, C1, MP, C3),
        arr(0, 0, 0, 0.3, 0.7),
        [arr(0.1, 0.5, 0.3), arr(0.9, -1, 0.2, 0.4)],
        ((0,), (0, 1), (1, 2), (0, 3), (3, 4)),
        ((0, 1, 1, 0, 1, 0), (0, 0, 1, 1, 0, 0), (0, 0, 0, 1, 0, 0), (0, 0, 0, 0, 1, 1), (0, 0, 0, 0, 0, 1), (0,) * 6),
        (INPUT, CONV3X3, CONV1X1, MAXPOOL3X3, CONV3X3, OUTPUT),
        id="space1-full",
    ),
    pytest.param(
        1,
        arr(C1, MP, C3, C1),
        arr(5, 0, 4, 0, 0),  # the output takes the cell input and block 2
        [arr(2, 1, 0), arr(0, 0, 3, 2)],
        ((0,), (0, 1), (0, 1), (2, 3), (0, 2)),
        ((0, 1, 1, 1), (0, 0, 1, 0), (0, 0, 0, 1), (0, 0, 0, 0)),  # blocks 3 and 4 pruned
        (INPUT, CONV1X1, MAXPOOL3X3, OUTPUT),
        id="space1-pruned",
    ),
    pytest.param(
        2,
        arr(C3, C3, C1, MP),
        arr(0, 1, 0, 2, 3),
        [arr(0.3, 0.1), arr(0, 1, 2), arr(1, 0, 0, 2)],
        ((0,), (0,), (1, 2), (0, 3), (1, 3, 4)),
        ((0, 1, 1, 0, 1, 0), (0, 0, 0, 1, 0, 1), (0, 0, 0, 1, 0, 0), (0, 0, 0, 0, 1, 1), (0, 0, 0, 0, 0, 1), (0,) * 6),
        (INPUT, CONV3X3, CONV3X3, CONV1X1, MAXPOOL3X3, OUTPUT),
        id="space2-full",
    ),
    pytest.param(
        2,
        arr(MP, C1, C3, C3),
        arr(9, 8, 7, 0, 0),
        [arr(0, 5), arr(3, 2, 1), arr(0, 1, 2, 3)],
        ((0,), (1,), (0, 1), (2, 3), (0, 1, 2)),
        ((0, 1, 0, 1), (0, 0, 1, 1), (0, 0, 0, 1), (0, 0, 0, 0)),
        (INPUT, MAXPOOL3X3, CONV1X1, OUTPUT),
        id="space2-pruned",
    ),
    pytest.param(
        3,
        arr(C3, C1, MP, C3, C1),
        arr(0, 0, 0, 0, 1, 2),
        [arr(0, 1), arr(0, 0.5, 0.2), arr(0, 0, 1, 1.5), arr(2, 0, 0, 0, 1)],
        ((0,), (1,), (1,), (2, 3), (0, 4), (4, 5)),
        (
            (0, 1, 0, 0, 0, 1, 0),
            (0, 0, 1, 1, 0, 0, 0),
            (0, 0, 0, 0, 1, 0, 0),
            (0, 0, 0, 0, 1, 0, 0),
            (0, 0, 0, 0, 0, 1, 1),
            (0, 0, 0, 0, 0, 0, 1),
            (0,) * 7,
        ),
        (INPUT, CONV3X3, CONV1X1, MAXPOOL3X3, CONV3X3, CONV1X1, OUTPUT),
        id="space3-full",
    ),
    pytest.param(
        3,
        arr(MP, MP, C3, C1, C1),
        arr(4, 0, 0, 3, 0, 0),
        [arr(1, 0), arr(0, 0, 1), arr(1, 2, 0, 0), arr(0, 0, 0, 1, 2)],
        ((0,), (0,), (2,), (0, 1), (3, 4), (0, 3)),
        ((0, 1, 0, 1), (0, 0, 1, 0), (0, 0, 0, 1), (0, 0, 0, 0)),  # only blocks 2 and 3 survive
        (INPUT, MAXPOOL3X3, CONV3X3, OUTPUT),
        id="space3-pruned",
    ),
]


@pytest.mark.parametrize(("space", "ops", "output", "inputs", "parents", "matrix", "spec_ops"), CASES)
def test_hand_built_alphas(space, ops, output, inputs, parents, matrix, spec_ops) -> None:
    g = derive_genotype(space, ops, output, inputs)
    assert g.parents == parents
    assert g.ops == tuple(OP_OF_ROW[tuple(row)] for row in ops)
    pruned = g.to_spec().validate()
    assert pruned.matrix == matrix
    assert pruned.ops == spec_ops
    assert g.module_hash() == graph_hash(matrix, [LABEL[op] for op in spec_ops])
    # the same NB101 cell as NB-1Shot1's "backwards from the output" matrix
    assert backwards_spec(g).module_hash() == g.module_hash()


def test_hand_built_ops_and_unpruned_matrix() -> None:
    g = derive_genotype(*CASES[0].values[:4])
    assert g.ops == (CONV3X3, CONV1X1, MAXPOOL3X3, CONV3X3)
    spec = g.to_spec()  # 7x7 with the unused conv1x1 padding vertex 5
    assert spec.ops == (INPUT, CONV3X3, CONV1X1, MAXPOOL3X3, CONV3X3, CONV1X1, OUTPUT)
    assert spec.matrix == (
        (0, 1, 1, 0, 1, 0, 0),
        (0, 0, 1, 1, 0, 0, 0),
        (0, 0, 0, 1, 0, 0, 0),
        (0, 0, 0, 0, 1, 0, 1),
        (0, 0, 0, 0, 0, 0, 1),
        (0,) * 7,
        (0,) * 7,
    )
    assert derive_genotype(*CASES[3].values[:4]).ops == (MAXPOOL3X3, CONV1X1, CONV3X3, CONV3X3)


def test_layouts() -> None:
    l1, l2, l3 = (ArchLayout.from_space(n) for n in (1, 2, 3))
    assert l1.shapes() == ((4, 3), (5,), ((3,), (4,)))
    assert l2.shapes() == ((4, 3), (5,), ((2,), (3,), (4,)))
    assert l3.shapes() == ((5, 3), (6,), ((2,), (3,), (4,), (5,)))
    assert (l1.input_nodes, l1.input_num_parents, l1.output_num_parents) == ((3, 4), (2, 2), 2)
    assert (l2.input_nodes, l2.input_num_parents, l2.output_num_parents) == ((2, 3, 4), (1, 2, 2), 3)
    assert (l3.input_nodes, l3.input_num_parents, l3.output_num_parents) == ((2, 3, 4, 5), (1, 1, 2, 2), 2)
    assert l1.fixed_parents == {1: (0,), 2: (0, 1)}
    assert l2.fixed_parents == l3.fixed_parents == {1: (0,)}
    assert [lay.output_len for lay in (l1, l2, l3)] == [5, 5, 6]
    assert l3.input_lens == (2, 3, 4, 5)
    with pytest.raises(GenotypeError, match="1, 2 and 3"):
        ArchLayout.from_space(4)


@st.composite
def genotypes(draw: st.DrawFn) -> NB1Shot1Genotype:
    space = get_space(draw(st.sampled_from([1, 2, 3])))
    ops = tuple(draw(st.sampled_from([CONV3X3, CONV1X1, MAXPOOL3X3])) for _ in range(space.num_choice_blocks))
    parents = tuple(draw(st.sampled_from(space.parent_choices(n))) for n in range(1, space.output_node + 1))
    return NB1Shot1Genotype(space.number, ops, parents)


@settings(max_examples=300, deadline=None)
@given(genotypes())
def test_round_trip(g: NB1Shot1Genotype) -> None:
    ops, output, inputs = genotype_weights(g)
    assert ops.dtype == output.dtype == np.float32
    assert (ops.sum(axis=1) == 1).all() and set(np.unique(ops)) == {0, 1}
    nodes = ArchLayout.from_space(g.space).input_nodes
    assert output.sum() == len(g.parents[-1])
    assert [a.sum() for a in inputs] == [len(g.parents[n - 1]) for n in nodes]
    assert derive_genotype(g.space, ops, output, inputs) == g


@settings(max_examples=200, deadline=None)
@given(genotypes())
def test_backwards_construction_is_the_same_cell(g: NB1Shot1Genotype) -> None:
    # NB-1Shot1 draws only the output's ancestors; we draw every parent edge; pruning agrees
    assert backwards_spec(g).pruned() == g.to_spec().pruned()


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([1, 2, 3]), st.integers(0, 2**32 - 1))
def test_softmax_and_shift_do_not_change_the_choice(space: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    o_shape, out_shape, in_shapes = ArchLayout.from_space(space).shapes()
    ops, output, inputs = rng.normal(size=o_shape), rng.normal(size=out_shape), [rng.normal(size=s) for s in in_shapes]
    g = derive_genotype(space, ops, output, inputs)
    assert derive_genotype(space, softmax(ops), softmax(output), [softmax(a) for a in inputs]) == g
    assert derive_genotype(space, ops + 3.0, output - 7.0, [a * 2.0 for a in inputs]) == g
    # NB-1Shot1's rule, written out: argmax op, any top-k (distinct values: the set is unique)
    assert g.ops == tuple((CONV3X3, CONV1X1, MAXPOOL3X3)[i] for i in ops.argmax(-1))
    assert set(g.parents[-1]) == set(np.argpartition(output, -len(g.parents[-1]))[-len(g.parents[-1]) :])


def test_fixed_parent_nodes() -> None:
    # space 1: nodes 1 and 2 have no input array; their parents are fixed, their ops still follow the alphas
    g = derive_genotype(1, arr(MP, C1, C3, C3), arr(0, 1, 1, 0, 0), [arr(0, 0, 9), arr(0, 0, 0, 9)])
    assert g.parents[:2] == ((0,), (0, 1))
    assert g.ops[:2] == (MAXPOOL3X3, CONV1X1)
    assert g.parents[2:] == ((0, 2), (0, 3), (1, 2))
    for space in (2, 3):
        layout = ArchLayout.from_space(space)
        o_shape, out_shape, in_shapes = layout.shapes()
        ops = np.tile(MP, (o_shape[0], 1))
        g = derive_genotype(space, ops, np.arange(out_shape[0], dtype=float), [np.arange(s[0]) for s in in_shapes])
        assert g.parents[0] == (0,)
        assert g.ops == (MAXPOOL3X3,) * layout.num_choice_blocks  # node 1's op is not ignored
        # highest logits are the latest nodes
        assert g.parents[1:-1] == tuple(
            tuple(range(n - k, n)) for n, k in zip(layout.input_nodes, layout.input_num_parents, strict=True)
        )
        assert g.parents[-1] == tuple(range(layout.output_len - layout.output_num_parents, layout.output_len))


def test_ties_take_the_lowest_index() -> None:
    zeros = [np.zeros(s) for s in ((5, 3), (6,))]
    g = derive_genotype(3, *zeros, [np.zeros(n) for n in (2, 3, 4, 5)])
    space = get_space(3)
    assert g.ops == (CONV3X3,) * 5
    assert g.parents == tuple(space.parent_choices(n)[0] for n in range(1, 7))  # lowest nodes everywhere
    g = derive_genotype(
        1,
        arr([0, 1, 1], [2, 2, 2], [0, 0, 1], [1, 0, 1]),
        arr(0, 1, 1, 1, 0),  # k = 2 among three tied maxima
        [arr(1, 1, 1), arr(2, 1, 1, 1)],  # all tied; one clear winner then ties
    )
    assert g.ops == (CONV1X1, CONV3X3, MAXPOOL3X3, CONV3X3)
    assert g.parents[2:] == ((0, 1), (0, 1), (1, 2))


def test_nb1shot1_native_shapes_are_rejected_with_the_expected_shape() -> None:
    ops, output, inputs = genotype_weights(
        NB1Shot1Genotype.from_string(2, "|maxpool3x3~0|maxpool3x3~1|maxpool3x3~0~2|maxpool3x3~0~3|output~1~2~4|")
    )
    with pytest.raises(GenotypeError, match=r"'output' has shape \(1, 5\); expected \(5,\)"):
        derive_genotype(2, ops, output[None, :], inputs)


@pytest.mark.parametrize(
    ("space", "change", "message"),
    [
        (1, lambda a: (a[0][:, :2], a[1], a[2]), r"'ops' has shape \(4, 2\); expected \(4, 3\)"),
        (3, lambda a: (a[0][:4], a[1], a[2]), r"'ops' has shape \(4, 3\); expected \(5, 3\)"),
        (3, lambda a: (a[0], a[1][:5], a[2]), r"'output' has shape \(5,\); expected \(6,\)"),
        (
            1,
            lambda a: (a[0], a[1], [np.zeros(2), *a[2]]),
            r"holds 3 arrays; expected 2.*\(nodes 3, 4\), shapes \[\(3,\), \(4,\)\]",
        ),
        (2, lambda a: (a[0], a[1], a[2][1:]), r"holds 2 arrays; expected 3"),
        (
            2,
            lambda a: (a[0], a[1], [a[2][0], np.zeros(4), a[2][2]]),
            r"inputs\[1\] \(node 3\)' has shape \(4,\); expected \(3,\)",
        ),
        (3, lambda a: (a[0], a[1], np.zeros((4, 5))), r"'inputs' must be a list of 4"),
        (3, lambda a: (a[0], a[1] * np.nan, a[2]), r"'output' contains NaN"),
        (1, lambda a: (a[0], a[1], [a[2][0], np.full(4, np.inf)]), r"inputs\[1\] \(node 4\)' contains NaN or inf"),
        (1, lambda a: ("conv", a[1], a[2]), r"'ops' must be a numeric numpy array of shape \(4, 3\)"),
        (1, lambda a: (a[0], a[1], [a[2][0], [[0, 1], [2]]]), r"'inputs\[1\] \(node 4\)' must be a numeric"),
    ],
)
def test_shape_errors(space, change, message) -> None:
    o_shape, out_shape, in_shapes = ArchLayout.from_space(space).shapes()
    good = (np.zeros(o_shape), np.zeros(out_shape), [np.zeros(s) for s in in_shapes])
    check_alphas(space, *good)
    with pytest.raises(GenotypeError, match=message):
        derive_genotype(space, *change(good))


def test_check_alphas_returns_float_arrays() -> None:
    ops, output, inputs = check_alphas(1, [[1, 0, 0]] * 4, (0, 1, 0, 1, 0), [[1, 2, 3], np.arange(4)])
    assert ops.dtype == output.dtype == inputs[1].dtype == np.float64
    assert ops.shape == (4, 3) and len(inputs) == 2


def test_module_does_not_import_torch() -> None:
    code = "import sys, nasbench_harness.spaces.nb1shot1_derive; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def backwards_spec(g: NB1Shot1Genotype) -> NB101Spec:
    """NB-1Shot1's construction: from the output, add each node's parent edges and recurse into them."""
    space = get_space(g.space)
    size = space.output_node + 1
    m = np.zeros((size, size), dtype=int)

    def visit(node: int) -> None:
        for p in g.parents[node - 1]:
            m[p, node] = 1
            if p != 0:
                visit(p)

    visit(space.output_node)
    ops = [INPUT, *g.ops, OUTPUT]
    if space.has_dummy_vertex:  # NB-1Shot1's upscale_to_nasbench_format: unused conv1x1 vertex 5
        m = np.insert(np.insert(m, 5, 0, axis=1), 5, 0, axis=0)
        ops.insert(5, CONV1X1)
    return NB101Spec.from_matrix(m, ops)
