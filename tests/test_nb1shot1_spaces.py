"""The three NB-1Shot1 spaces: definitions, hand-checked NB101 mappings, enumeration, sizes."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nasbench_harness.errors import GenotypeError
from nasbench_harness.spaces.nb1shot1 import (
    SPACES,
    NB1Shot1Genotype,
    get_space,
    iter_genotypes,
    reachable_hashes,
    size_table,
)
from nasbench_harness.spaces.nb101 import CONV1X1, CONV3X3, INPUT, MAXPOOL3X3, OPS, OUTPUT

S1 = "|conv3x3-bn-relu~0|conv3x3-bn-relu~0~1|maxpool3x3~0~2|conv1x1-bn-relu~1~3|output~2~4|"
S3 = "|conv3x3-bn-relu~0|conv1x1-bn-relu~1|maxpool3x3~2|conv3x3-bn-relu~0~3|conv1x1-bn-relu~1~4|output~2~5|"


def test_space_definitions() -> None:
    assert [s.num_choice_blocks for s in SPACES.values()] == [4, 4, 5]
    assert SPACES[1].num_parents == (1, 2, 2, 2, 2)
    assert SPACES[2].num_parents == (1, 1, 2, 2, 3)
    assert SPACES[3].num_parents == (1, 1, 1, 2, 2, 2)
    assert all(sum(s.num_parents) == 9 for s in SPACES.values())  # NB101's edge limit, always reached
    # space 1: node 1 <- 0 and node 2 <- 0,1 are fixed (one choice each)
    assert SPACES[1].parent_choices(1) == ((0,),) and SPACES[1].parent_choices(2) == ((0, 1),)
    assert SPACES[2].parent_choices(2) == ((0,), (1,))
    assert SPACES[3].parent_choices(6) == tuple(itertools.combinations(range(6), 2))
    assert (SPACES[1].test_min_error, SPACES[1].valid_min_error) == (0.05448716878890991, 0.049278855323791504)
    assert (SPACES[2].test_min_error, SPACES[2].valid_min_error) == (0.057592153549194336, 0.051582515239715576)
    assert (SPACES[3].test_min_error, SPACES[3].valid_min_error) == (0.05338543653488159, 0.04847759008407593)


def test_space1_mapping_by_hand() -> None:
    spec = NB1Shot1Genotype.from_string(1, S1).to_spec()
    # 6 nodes (input, 4 blocks, output) padded with an unused conv1x1 vertex 5 before the output
    assert spec.matrix == (
        (0, 1, 1, 1, 0, 0, 0),
        (0, 0, 1, 0, 1, 0, 0),
        (0, 0, 0, 1, 0, 0, 1),
        (0, 0, 0, 0, 1, 0, 0),
        (0, 0, 0, 0, 0, 0, 1),
        (0, 0, 0, 0, 0, 0, 0),
        (0, 0, 0, 0, 0, 0, 0),
    )
    assert spec.ops == (INPUT, CONV3X3, CONV3X3, MAXPOOL3X3, CONV1X1, CONV1X1, OUTPUT)
    pruned = spec.pruned()
    assert pruned.num_vertices == 6 and pruned.num_edges == 9  # only the padding vertex goes


def test_space3_mapping_by_hand() -> None:
    spec = NB1Shot1Genotype.from_string(3, S3).to_spec()
    assert spec.matrix == (
        (0, 1, 0, 0, 1, 0, 0),
        (0, 0, 1, 0, 0, 1, 0),
        (0, 0, 0, 1, 0, 0, 1),
        (0, 0, 0, 0, 1, 0, 0),
        (0, 0, 0, 0, 0, 1, 0),
        (0, 0, 0, 0, 0, 0, 1),
        (0, 0, 0, 0, 0, 0, 0),
    )
    assert spec.ops == (INPUT, CONV3X3, CONV1X1, MAXPOOL3X3, CONV3X3, CONV1X1, OUTPUT)
    assert spec.pruned() == spec  # no padding vertex, no loose end


def test_loose_ends_are_pruned_and_their_ops_do_not_matter() -> None:
    # space 2: node 2 feeds nothing, so NB101 pruning removes it (and the padding vertex)
    a = NB1Shot1Genotype.from_string(
        2, "|conv3x3-bn-relu~0|maxpool3x3~0|conv1x1-bn-relu~0~1|conv3x3-bn-relu~1~3|output~0~1~4|"
    )
    b = NB1Shot1Genotype.from_string(
        2, "|conv3x3-bn-relu~0|conv3x3-bn-relu~0|conv1x1-bn-relu~0~1|conv3x3-bn-relu~1~3|output~0~1~4|"
    )
    assert a.to_spec().pruned().num_vertices == 5
    assert a != b and a.module_hash() == b.module_hash()


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([1, 2, 3]), st.randoms())
def test_random_genotypes_round_trip_and_are_valid_nb101_cells(space: int, rnd) -> None:  # type: ignore[no-untyped-def]
    s = get_space(space)
    ops = tuple(rnd.choice(OPS) for _ in range(s.num_choice_blocks))
    parents = tuple(rnd.choice(s.parent_choices(node)) for node in range(1, s.output_node + 1))
    g = NB1Shot1Genotype(space, ops, parents)
    assert NB1Shot1Genotype.from_string(space, g.to_string()) == g
    spec = g.to_spec()
    assert spec.num_vertices == 7 and spec.num_edges == 9
    assert len(g.module_hash()) == 32


def test_enumeration_counts() -> None:
    for number, expected in ((1, 14_580), (2, 29_160)):
        genotypes = list(iter_genotypes(number))
        assert len(genotypes) == expected == SPACES[number].num_configurations
        assert len(set(genotypes)) == expected
    assert SPACES[3].num_configurations == 3**5 * 2 * 3 * 6 * 10 * 15 == 1_312_200
    assert [s.stated_size for s in SPACES.values()] == [6_240, 29_160, 363_648]


def test_distinct_nb101_cells_per_space() -> None:
    # counts from the shared data README (computed there by enumeration, pruning and hashing)
    assert [len(reachable_hashes(n)) for n in (1, 2, 3)] == [2_685, 7_773, 55_854]
    table = size_table()
    assert table[0] == {"space": 1, "stated": 6_240, "configurations": 14_580, "distinct_nb101_cells": 2_685}
    s1 = {g.module_hash() for g in iter_genotypes(1)}
    assert s1 == reachable_hashes(1)  # the shortcut (prune the pattern, then vary live ops) loses nothing


@pytest.mark.parametrize(
    ("space", "text", "match"),
    [
        (1, S1.replace("maxpool3x3", "maxpool5x5"), "unknown op 'maxpool5x5'"),
        (1, S1.replace("~0~2|", "~0~3|"), r"node 3 takes 2 parent\(s\) among nodes 0..2"),
        (1, S1.replace("conv3x3-bn-relu~0~1", "conv3x3-bn-relu~0"), "node 2 takes 2 parent"),
        (1, S1.replace("output~2~4", "output~2~3~4"), "the output takes 2 parent"),
        (2, S1, r"space 2: node 2 takes 1 parent\(s\)"),
        (3, S1, "5 choice blocks"),
        (1, S1[1:], "must start and end with '|'"),
        (1, S1.replace("output~2~4", "conv3x3-bn-relu~2~4"), "last group must be the output"),
        (1, S1.replace("~0~1|", "~0,1|"), "is not op~parent"),
        (4, S1, "spaces 1, 2 and 3"),
    ],
)
def test_bad_genotypes_are_named(space: int, text: str, match: str) -> None:
    with pytest.raises(GenotypeError, match=match):
        NB1Shot1Genotype.from_string(space, text)
