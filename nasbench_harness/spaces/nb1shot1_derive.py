"""Discretise NB-1Shot1 one-shot architecture weights into a genotype, and back.

Architecture parameters (numpy arrays; convert tensors with ``.detach().cpu().numpy()``):

- ``ops``, shape (B, 3): per choice block, logits over :data:`~nasbench_harness.spaces.nb101.OPS`
  in *our* order (conv3x3-bn-relu, conv1x1-bn-relu, maxpool3x3). NB-1Shot1's own models order
  their columns as ``PRIMITIVES = [maxpool3x3, conv3x3-bn-relu, conv1x1-bn-relu]``
  (``optimizers/darts/genotypes.py``); reorder before passing their alphas here.
- ``output``, shape (B + 1,): logits over [cell input (node 0), block 1, ..., block B].
- ``inputs``: one 1-D array per choice block that chooses its parents, in node order; node n's
  array has length n, over [node 0, ..., node n - 1]. Node 1 (always <- 0) has none, nor, in
  space 1, node 2 (always <- 0, 1); NB-1Shot1 keeps these as ``(1, n)`` arrays, we take ``(n,)``.

The rule, as NB-1Shot1 discretises its DARTS/GDAS/PC-DARTS one-shot models
(``nasbench_analysis/eval_darts_one_shot_model_in_nasbench.py``, ``eval_one_shot_model``;
the same code is ``get_adjacency_matrix_and_node_list`` in ``nasbench1shot1/core/evaluation.py``):

1. op of each block = ``softmax(ops).argmax(-1)``;
2. parents of each node with a choice = ``get_top_k(softmax(alpha), k)`` with k that node's
   ``num_parents_per_node`` (``nasbench_analysis/utils.py``: ``np.argpartition(a[0], -k)[-k:]``,
   the k largest entries, node 0 included);
3. parents of the output = the top-k of the *output* weights over all B + 1 entries, so the
   cell input may be chosen, with k the output's ``num_parents_per_node`` (2 / 3 / 2);
4. fixed nodes keep their fixed parents; the padding vertex of spaces 1 and 2 is conv1x1-bn-relu;
5. the adjacency matrix is built "backwards from the output" (``SearchSpace._create_adjacency_matrix``
   in ``nasbench_analysis/search_spaces/search_space.py``, called by each space's
   ``create_nasbench_adjacency_matrix``): starting at the output it adds the edges into a node
   and recurses into its parents, so only ancestors of the output get edges. Our genotype keeps
   every node's parents and :meth:`NB1Shot1Genotype.to_spec` draws all of them; the extra edges
   belong to nodes that are no ancestor of the output, which NB101's pruning removes, so the
   pruned spec and the module hash are the same (``tests/test_nb1shot1_derive.py`` checks it).

Softmax is strictly increasing, so we rank the raw logits; that gives NB-1Shot1's choice
whenever the choice is unique. Ties are where we differ on purpose: ``argpartition`` breaks them
arbitrarily and ``argmax`` takes the first maximum in *their* column order, while we always take
the lowest index (for ops: the first in our OPS order; for parents: the lower node numbers), so
all-equal weights give conv3x3-bn-relu and parents 0..k-1. Ties can also differ where NB-1Shot1's
float32 softmax rounds two distinct logits to the same probability; we rank the logits exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nasbench_harness.errors import GenotypeError
from nasbench_harness.spaces.nb1shot1 import NB1Shot1Genotype, get_space
from nasbench_harness.spaces.nb101 import OPS

Shape = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ArchLayout:
    """Shapes of one NB-1Shot1 space's architecture parameters (see the module docstring)."""

    space: int
    num_choice_blocks: int
    """B: the ops array has B rows, the output array B + 1 entries."""
    input_nodes: tuple[int, ...]
    """Nodes (ascending) with an input array; node n's array has length n."""
    input_num_parents: tuple[int, ...]
    """Parents picked (top-k) for each node of :attr:`input_nodes`."""
    output_num_parents: int
    """Parents picked (top-k) for the output node."""
    num_ops: int = len(OPS)

    @classmethod
    def from_space(cls, number: int) -> ArchLayout:
        """The layout of NB-1Shot1 space ``number`` (1, 2 or 3)."""
        s = get_space(number)
        blocks = s.num_choice_blocks
        # a node has a choice (and an input array) when it has more candidate parents than parents
        nodes = tuple(n for n in range(1, blocks + 1) if len(s.parent_choices(n)) > 1)
        return cls(
            space=number,
            num_choice_blocks=blocks,
            input_nodes=nodes,
            input_num_parents=tuple(s.num_parents[n - 1] for n in nodes),
            output_num_parents=s.num_parents[-1],
        )

    @property
    def output_len(self) -> int:
        """Length of the output array: the cell input plus every block."""
        return self.num_choice_blocks + 1

    @property
    def input_lens(self) -> tuple[int, ...]:
        """Length of each input array (node n chooses among nodes 0..n-1)."""
        return self.input_nodes

    @property
    def fixed_parents(self) -> dict[int, tuple[int, ...]]:
        """Nodes without an input array and the parents they always take."""
        s = get_space(self.space)
        return {n: s.parent_choices(n)[0] for n in range(1, self.num_choice_blocks + 1) if n not in self.input_nodes}

    def shapes(self) -> tuple[Shape, Shape, tuple[Shape, ...]]:
        """Expected shapes of ``(ops, output, inputs)``, in :func:`derive_genotype`'s argument order."""
        return (self.num_choice_blocks, self.num_ops), (self.output_len,), tuple((n,) for n in self.input_nodes)


def check_alphas(
    space: int, ops: np.ndarray, output: np.ndarray, inputs: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """Check the architecture parameters of ``space`` and return them as finite float64 arrays.

    Raises :class:`GenotypeError` naming the wrong array, its shape and the expected shape.
    """
    layout = ArchLayout.from_space(space)
    ops_shape, output_shape, input_shapes = layout.shapes()
    ops_arr = _as_array(space, "ops", ops, ops_shape, "one row of logits over " + ", ".join(OPS) + " per block")
    output_arr = _as_array(space, "output", output, output_shape, "logits over [input, block 1..B]")
    if isinstance(inputs, np.ndarray) or not isinstance(inputs, Sequence):
        raise GenotypeError(
            f"space {space}: 'inputs' must be a list of {len(input_shapes)} 1-D arrays for nodes "
            f"{_nodes(layout)}, got {type(inputs).__name__}"
        )
    if len(inputs) != len(input_shapes):
        raise GenotypeError(
            f"space {space}: 'inputs' holds {len(inputs)} arrays; expected {len(input_shapes)}, one per node "
            f"with a choice of parents (nodes {_nodes(layout)}), shapes {list(input_shapes)}"
        )
    input_arrs = tuple(
        _as_array(space, f"inputs[{i}] (node {node})", a, shape, f"logits over nodes 0..{node - 1}")
        for i, (node, a, shape) in enumerate(zip(layout.input_nodes, inputs, input_shapes, strict=True))
    )
    return ops_arr, output_arr, input_arrs


def derive_genotype(space: int, ops: np.ndarray, output: np.ndarray, inputs: Sequence[np.ndarray]) -> NB1Shot1Genotype:
    """The genotype NB-1Shot1 derives from these weights: argmax op, top-k parents (ties: lowest index)."""
    layout = ArchLayout.from_space(space)
    ops_arr, output_arr, input_arrs = check_alphas(space, ops, output, inputs)
    chosen_ops = tuple(OPS[int(np.argmax(row))] for row in ops_arr)  # argmax: first maximum
    parents = dict(layout.fixed_parents)
    for node, k, alpha in zip(layout.input_nodes, layout.input_num_parents, input_arrs, strict=True):
        parents[node] = _top_k(alpha, k)
    node_parents = tuple(parents[n] for n in range(1, layout.num_choice_blocks + 1))
    return NB1Shot1Genotype(space, chosen_ops, (*node_parents, _top_k(output_arr, layout.output_num_parents)))


def genotype_weights(
    genotype: NB1Shot1Genotype, dtype: type[np.floating] = np.float32
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """One-hot ``(ops, output, inputs)`` selecting exactly ``genotype`` (1 = chosen op / parent, else 0).

    ``derive_genotype(genotype.space, *genotype_weights(genotype)) == genotype``. The default dtype
    is float32 so that ``torch.from_numpy`` gives weights of the supernet's dtype.
    """
    layout = ArchLayout.from_space(genotype.space)
    ops_shape, output_shape, input_shapes = layout.shapes()
    ops = np.zeros(ops_shape, dtype=dtype)
    ops[np.arange(layout.num_choice_blocks), [OPS.index(op) for op in genotype.ops]] = 1
    output = np.zeros(output_shape, dtype=dtype)
    output[list(genotype.parents[-1])] = 1
    inputs = []
    for node, shape in zip(layout.input_nodes, input_shapes, strict=True):
        alpha = np.zeros(shape, dtype=dtype)
        alpha[list(genotype.parents[node - 1])] = 1
        inputs.append(alpha)
    return ops, output, inputs


def _top_k(values: np.ndarray, k: int) -> tuple[int, ...]:
    # stable sort of the negated values: larger first, equal values in ascending index order
    order = np.argsort(-values, kind="stable")[:k]
    return tuple(sorted(int(i) for i in order))


def _as_array(space: int, name: str, value: object, shape: Shape, meaning: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise GenotypeError(
            f"space {space}: {name!r} must be a numeric numpy array of shape {shape} ({meaning}); "
            f"could not convert {type(value).__name__} ({str(exc)[:80]}); pass tensors as .detach().cpu().numpy()"
        ) from None
    if arr.shape != shape:
        raise GenotypeError(f"space {space}: {name!r} has shape {arr.shape}; expected {shape} ({meaning})")
    if not np.isfinite(arr).all():
        raise GenotypeError(
            f"space {space}: {name!r} contains NaN or infinite values; architecture weights must be finite"
        )
    return arr


def _nodes(layout: ArchLayout) -> str:
    return ", ".join(map(str, layout.input_nodes))
