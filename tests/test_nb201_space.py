"""The NB201 search space: parsing, codes, official indices, enumeration, op counts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nasbench_harness.errors import GenotypeError
from nasbench_harness.spaces.nb201 import (
    EDGES,
    NUM_CELLS,
    OPS,
    NB201Genotype,
    all_genotypes,
    all_op_indices,
    iter_genotypes,
)

BEST_C100 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"

ops_tuples = st.tuples(*[st.integers(0, len(OPS) - 1)] * 6)


@given(ops_tuples)
def test_string_round_trip(ops: tuple[int, ...]) -> None:
    g = NB201Genotype(ops)
    text = g.to_string()
    assert NB201Genotype.from_string(text) == g
    assert text.count("~") == 6 and text.startswith("|") and text.endswith("|")
    assert [op for op in g.op_names] == [OPS[i] for i in ops]


@given(ops_tuples)
def test_code_and_index_round_trip(ops: tuple[int, ...]) -> None:
    g = NB201Genotype(ops)
    assert NB201Genotype.from_code(g.code) == g
    assert NB201Genotype.from_index(g.index) == g
    assert 0 <= g.index < NUM_CELLS


@given(ops_tuples, st.integers(0, 5), st.sampled_from(["conv_3x3", "max_pool_3x3", "None", "skip", ""]))
def test_unknown_op_is_named_in_the_error(ops: tuple[int, ...], edge: int, bad: str) -> None:
    names = list(NB201Genotype(ops).op_names)
    names[edge] = bad
    text = "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*names)
    with pytest.raises(GenotypeError, match="malformed NB201 arch string") as info:
        NB201Genotype.from_string(text)
    assert "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|" in str(info.value)


@given(ops_tuples, st.integers(0, 200), st.text(alphabet="|~+0123 x", min_size=1, max_size=3))
def test_any_corruption_is_rejected(ops: tuple[int, ...], at: int, junk: str) -> None:
    text = NB201Genotype(ops).to_string()
    at = at % (len(text) + 1)
    corrupted = text[:at] + junk + text[at:]
    with pytest.raises(GenotypeError):
        NB201Genotype.from_string(corrupted)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (" " + BEST_C100, "whitespace"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|", "2 node groups"),
        (BEST_C100.replace("skip_connect~0", "skip_connect~1"), "input node numbers"),
        (BEST_C100.replace("nor_conv_3x3~2", "conv3x3~2"), "unknown op 'conv3x3'"),
        (
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~1|nor_conv_3x3~2|",
            "1, 2 and 3",
        ),
        ("|nor_conv_3x3|+|a~0|b~1|+|c~0|d~1|e~2|", "op~input"),
    ],
)
def test_malformed_strings_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(GenotypeError, match=problem):
        NB201Genotype.from_string(text)


@pytest.mark.parametrize("bad", [(0, 1, 2), (0, 1, 2, 3, 4, 5), (0, 0, 0, 0, 0, 1.0), [0] * 6, (True,) * 6])
def test_bad_op_tuples_are_rejected(bad: object) -> None:
    with pytest.raises(GenotypeError, match="6 op indices"):
        NB201Genotype(bad)  # type: ignore[arg-type]


def test_non_string_and_out_of_range_inputs() -> None:
    with pytest.raises(GenotypeError, match="str"):
        NB201Genotype.from_string(1835)  # type: ignore[arg-type]
    for bad in (-1, NUM_CELLS, True, "12"):
        with pytest.raises(GenotypeError, match=r"0\.\.15624"):
            NB201Genotype.from_index(bad)  # type: ignore[arg-type]
    with pytest.raises(GenotypeError, match="unknown NB201 op 'conv'"):
        NB201Genotype.from_ops(["conv"] * 6)


def test_from_ops_accepts_names_and_numpy_ints() -> None:
    g = NB201Genotype.from_string(BEST_C100)
    assert NB201Genotype.from_ops(g.op_names) == g
    assert NB201Genotype.from_ops(np.array(g.ops)) == g


def test_known_official_indices() -> None:
    # the data README and the NB201 paper name these cells
    assert NB201Genotype.from_string(BEST_C100).index == 9930
    assert NB201Genotype.from_string(ALL_SKIP).index == 1835
    assert NB201Genotype.from_index(0).to_string() == (
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
    )


def test_enumeration_covers_every_cell_once_in_index_order() -> None:
    cells = all_genotypes()
    assert len(cells) == NUM_CELLS == 5**6
    assert len(set(cells)) == NUM_CELLS
    assert sorted(g.code for g in cells) == list(range(NUM_CELLS))
    assert all(g.index == i for i, g in enumerate(cells))
    assert list(iter_genotypes())[:3] == list(cells[:3])
    ops = all_op_indices()
    assert ops.shape == (NUM_CELLS, 6) and not ops.flags.writeable
    assert tuple(ops[9930]) == cells[9930].ops


@given(ops_tuples)
def test_op_counts(ops: tuple[int, ...]) -> None:
    counts = NB201Genotype(ops).op_counts()
    as_dict = counts.as_dict()
    assert sum(as_dict[name] for name in OPS) == 6
    assert counts.skip_connect == ops.count(1)
    assert counts.parameter_free == ops.count(1) + ops.count(4)


def _reaches_output(ops: tuple[int, ...]) -> bool:
    """Independent check: transitive closure of the adjacency matrix of non-none edges."""
    adj = np.zeros((4, 4), dtype=int)
    for (src, dst), op in zip(EDGES, ops, strict=True):
        adj[src, dst] = op != 0
    reach = np.eye(4, dtype=int)
    for _ in range(3):
        reach = ((reach + reach @ adj) > 0).astype(int)
    return bool(reach[0, 3])


def test_disconnected_cells_match_graph_reachability() -> None:
    cells = all_genotypes()
    flags = [g.is_connected for g in cells]
    assert flags == [_reaches_output(g.ops) for g in cells]
    # by hand: 0->3 is none; then by the ops on 1->3 / 2->3 (none: 1 way, active: 4 ways):
    # both none 125, only 1->3 active 4*25 (0->1 none), only 2->3 active 4*9 (node 2 unreached),
    # both active 16*5 (0->1 and 0->2 none): 125 + 100 + 36 + 80 = 341
    assert flags.count(False) == 341
    assert not NB201Genotype((0,) * 6).is_connected
    assert NB201Genotype((0, 0, 0, 1, 0, 0)).is_connected
    assert not NB201Genotype((3, 3, 3, 0, 0, 0)).is_connected
