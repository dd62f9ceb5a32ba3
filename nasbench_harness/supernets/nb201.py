"""The NAS-Bench-201 one-shot network (supernet) and what is derived from it.

Every cell edge mixes the five NB201 ops, weighted by a (6, 5) tensor the caller passes to
``forward``: the architecture weights are an *argument*, not a parameter, so a method can
perturb, sample or discretise them without touching the network. The network computes the
same function as NB201's ``TinyNetworkDarts`` but is arranged for speed:

- ``none`` is never computed: its output is zero, and so is its gradient with respect to its
  weight (d loss / d w = <grad, 0>), so skipping it changes nothing.
- The edges leaving one node share the ReLU, and their 3x3 (and 1x1) convolutions run as one
  wider convolution; BN is per channel, so one BN over the stacked channels equals one BN per
  edge. The op weight multiplies through BN's per-channel scale, saving a pass over memory.
- A final net (one op per edge) runs through the same modules with a mask, skipping the
  unchosen ops: the supernet-to-finalnet gap uses exactly the inherited weights.

The search cells' BN has no affine parameters (as in NB201). Its statistics policy is
``bn_track_running_stats``: False (default) normalises with batch statistics in training and
evaluation; True keeps running statistics for evaluation, as NB201's ``BN=1`` setting does.

ScheduledDropPath (``forward(..., drop_prob=p)``, R-DARTS(DP), Zela et al. 2020): in training
mode each edge's output (the weighted sum of its ops) is multiplied, per sample, by a
Bernoulli(1 - p) mask divided by 1 - p (DARTS's ``drop_path``), independently per edge and per
cell. A node sums per-(edge, op) terms without an edge tensor, so the mask of an edge is folded
into the weights of its terms, which become (B, 1, 1, 1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nasbench_harness.errors import ConfigError
from nasbench_harness.spaces.nb201 import EDGES, NUM_EDGES, NUM_NODES, NUM_OPS, OPS, NB201Genotype
from nasbench_harness.supernets.mixing import Term, check_drop_prob, drop_path_masks, weighted_sum
from nasbench_harness.supernets.nb201_ops import Head, ResNetBasicBlock, stage_layout, stem

SKIP, CONV1, CONV3, POOL = (OPS.index(op) for op in ("skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"))
NONE = OPS.index("none")
OUT_EDGES: tuple[tuple[int, ...], ...] = tuple(
    tuple(e for e, (src, _) in enumerate(EDGES) if src == node) for node in range(NUM_NODES - 1)
)
"""Edge indices leaving node 0, 1, 2 (the edges a node's shared convolution serves)."""
BN_EPS = 1e-5
BN_MOMENTUM = 0.1

Mask = tuple[tuple[bool, ...], ...]


class StackedConvBN(nn.Module):
    """The ReLU-conv-BN op of several edges leaving one node, as one conv with stacked outputs."""

    def __init__(self, channels: int, n_edges: int, kernel: int, track_running_stats: bool) -> None:
        super().__init__()
        self.channels = channels
        self.conv = nn.Conv2d(channels, n_edges * channels, kernel, padding=kernel // 2, bias=False)
        self.track_running_stats = track_running_stats
        self.momentum = BN_MOMENTUM
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(n_edges * channels))
            self.register_buffer("running_var", torch.ones(n_edges * channels))
        else:
            self.running_mean = self.running_var = None

    def forward(
        self, relu_x: torch.Tensor, edge_weights: torch.Tensor, batch_stats: bool, used: list[int] | None = None
    ) -> list[torch.Tensor | None]:
        """Per-edge outputs ``w_e * BN(conv_e(relu_x))`` for the weights ``edge_weights`` (n_edges,).

        ``used``: the edges to compute (the others' outputs are None), e.g. a GDAS sample's or a
        final net's; the rest of the stacked convolution is skipped (BN is per channel). With
        running statistics kept, every edge is computed, so that the statistics all move.
        """
        c, n = self.channels, edge_weights.shape[0]
        if used is None or len(used) == n or self.track_running_stats:
            used = list(range(n))
            weight = self.conv.weight
        else:
            weight = torch.cat([self.conv.weight[k * c : (k + 1) * c] for k in used])
            edge_weights = torch.stack([edge_weights[k] for k in used])  # views: no index tensor from Python data
        use_batch = self.training or batch_stats or not self.track_running_stats
        y = F.batch_norm(
            F.conv2d(relu_x, weight, padding=self.conv.padding),
            self.running_mean,
            self.running_var,
            weight=edge_weights.repeat_interleave(c),
            bias=None,
            training=use_batch,
            momentum=self.momentum if self.training else 0.0,  # evaluation never moves the statistics
            eps=BN_EPS,
        )
        outputs: list[torch.Tensor | None] = [None] * n
        for k, part in zip(used, [y] if y.shape[1] == c else y.split(c, dim=1), strict=True):
            outputs[k] = part
        return outputs


class NB201SearchCell(nn.Module):
    """One NB201 cell with all five ops on each of its six edges."""

    def __init__(self, channels: int, track_running_stats: bool = False) -> None:
        super().__init__()
        self.conv3 = nn.ModuleList(StackedConvBN(channels, len(out), 3, track_running_stats) for out in OUT_EDGES)
        self.conv1 = nn.ModuleList(StackedConvBN(channels, len(out), 1, track_running_stats) for out in OUT_EDGES)

    def forward(
        self,
        x: torch.Tensor,
        weights: torch.Tensor,
        mask: Mask | None,
        batch_stats: bool,
        drop_prob: float = 0.0,
        edge_constants: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The cell's output node; ``drop_prob`` > 0 drops each edge per sample (see the module doc).

        ``edge_constants`` (6,): a value added to each edge's output (GDAS's masked-out weights).
        """
        keep = drop_path_masks(x, NUM_EDGES, drop_prob) if drop_prob > 0.0 else None
        incoming: list[list[Term]] = [[] for _ in range(NUM_NODES)]
        nodes = [x]
        for src, out in enumerate(OUT_EDGES):
            h = nodes[src]
            uses, y1, y3, pooled = source_ops(self.conv3[src], self.conv1[src], h, out, weights, mask, batch_stats)
            for k, e in enumerate(out):
                edge_keep = None if keep is None else keep[e]
                append_edge_terms(incoming[EDGES[e][1]], uses[k], k, h, y1, y3, pooled, weights[e], edge_keep)
            node = weighted_sum(incoming[src + 1], x)
            if edge_constants is not None:
                node = node + node_constant(edge_constants, src + 1, keep)
            nodes.append(node)
        return nodes[-1]


def source_ops(
    conv3: StackedConvBN,
    conv1: StackedConvBN,
    h: torch.Tensor,
    out: tuple[int, ...],
    weights: torch.Tensor,
    mask: Mask | None,
    batch_stats: bool,
) -> tuple[
    list[tuple[bool, ...]], list[torch.Tensor | None] | None, list[torch.Tensor | None] | None, torch.Tensor | None
]:
    """The ops of node ``h`` on its outgoing edges ``out``, each computed once for all of them.

    Returns each edge's op use (from ``mask``, else every op but ``none``), the per-edge outputs
    of the fused 1x1 and 3x3 convolutions (op weights ``weights[out]`` folded into their BN; only
    the edges that use them are computed), and the shared 3x3 average pool; an output no edge
    uses is None.
    """
    uses = [mask[e] if mask is not None else ALL_BUT_NONE for e in out]
    need3 = [k for k, u in enumerate(uses) if u[CONV3]]
    need1 = [k for k, u in enumerate(uses) if u[CONV1]]
    relu_h = torch.relu(h) if need1 or need3 else None
    # the op weights of the edges in ``out``: one stack of views (indexing with the tuple would
    # build an index tensor from Python data, a host-to-device copy, on every call)
    y3 = conv3(relu_h, torch.stack([weights[e, CONV3] for e in out]), batch_stats, need3) if need3 else None
    y1 = conv1(relu_h, torch.stack([weights[e, CONV1] for e in out]), batch_stats, need1) if need1 else None
    pool = any(u[POOL] for u in uses)
    pooled = F.avg_pool2d(h, 3, stride=1, padding=1, count_include_pad=False) if pool else None
    return uses, y1, y3, pooled


def append_edge_terms(
    terms: list[Term],
    use: tuple[bool, ...],
    k: int,
    h: torch.Tensor,
    y1: list[torch.Tensor | None] | None,
    y3: list[torch.Tensor | None] | None,
    pooled: torch.Tensor | None,
    w: torch.Tensor,
    keep: torch.Tensor | None = None,
) -> None:
    """Append an edge's terms (the ``k``-th edge leaving ``h``) to its target node's ``terms``.

    The convolutions' op weights are already folded into their BN (weight None); skip and pool
    carry ``w``. With a per-sample drop-path mask ``keep`` (B, 1, 1, 1) every term is scaled by it.
    """
    if use[SKIP]:
        terms.append((h, w[SKIP] if keep is None else w[SKIP] * keep))
    if use[CONV1]:
        terms.append((y1[k], keep))  # type: ignore[index]
    if use[CONV3]:
        terms.append((y3[k], keep))  # type: ignore[index]
    if use[POOL]:
        terms.append((pooled, w[POOL] if keep is None else w[POOL] * keep))  # type: ignore[arg-type]


def node_constant(edge_constants: torch.Tensor, node: int, keep: torch.Tensor | None) -> torch.Tensor:
    """The sum of ``edge_constants`` over the edges entering ``node``, each scaled by its drop-path mask."""
    entering = [e for e, (_, dst) in enumerate(EDGES) if dst == node]
    if keep is None:
        return sum((edge_constants[e] for e in entering[1:]), edge_constants[entering[0]])
    return sum((edge_constants[e] * keep[e] for e in entering[1:]), edge_constants[entering[0]] * keep[entering[0]])


def masked_constants(weights: torch.Tensor, mask: torch.Tensor | Mask) -> torch.Tensor:
    """Per edge (and per cell, for per-cell weights), the sum of the weights of the ops ``mask``
    leaves out; a tensor ``mask`` on the weights' device costs no copy."""
    if isinstance(mask, torch.Tensor):
        left_out = ~mask.to(device=weights.device, dtype=torch.bool)
    else:
        left_out = torch.tensor([[not used for used in row] for row in mask], device=weights.device)
    return (weights * left_out).sum(-1)


ALL_BUT_NONE = (False, True, True, True, True)
"""The ops computed on an edge without a mask: every op but `none`, whose output is zero."""


class NB201SearchNet(nn.Module):
    """NB201's search network: stem, 3 stages of ``cells_per_stage`` search cells, head.

    ``forward(x, weights)`` takes images (B, 3, H, W) and the mixing weights, (6, 5) shared by
    all cells or (num_cells, 6, 5) one per cell, ops in :data:`OPS` order; it returns logits.
    """

    def __init__(
        self,
        channels: int = 16,
        cells_per_stage: int = 5,
        num_classes: int = 10,
        bn_track_running_stats: bool = False,
        cell: Callable[[int, bool], nn.Module] | None = None,
    ) -> None:
        """``cell(channels, track_running_stats)`` builds a search cell (default :class:`NB201SearchCell`)."""
        super().__init__()
        if channels < 1 or cells_per_stage < 1 or num_classes < 2:
            raise ConfigError(
                f"the NB201 supernet needs channels >= 1, cells_per_stage >= 1 and num_classes >= 2, got "
                f"channels={channels}, cells_per_stage={cells_per_stage}, num_classes={num_classes}"
            )
        self.channels, self.cells_per_stage, self.num_classes = channels, cells_per_stage, num_classes
        self.bn_track_running_stats = bn_track_running_stats
        self.stem = stem(channels)
        layers: list[nn.Module] = []
        c_prev = channels
        for c_out, reduction in stage_layout(channels, cells_per_stage):
            if reduction:
                layers.append(ResNetBasicBlock(c_prev, c_out))
            else:
                layers.append((cell or NB201SearchCell)(c_out, bn_track_running_stats))
            c_prev = c_out
        self.layers = nn.ModuleList(layers)
        self.head = Head(c_prev, num_classes)

    @property
    def num_cells(self) -> int:
        """Search cells in the network (3 x cells_per_stage)."""
        return 3 * self.cells_per_stage

    def forward(
        self,
        x: torch.Tensor,
        weights: torch.Tensor,
        *,
        mask: torch.Tensor | Mask | None = None,
        batch_stats: bool = False,
        drop_prob: float = 0.0,
        masked_as_constants: bool = False,
    ) -> torch.Tensor:
        """Logits for ``x`` under mixing ``weights``.

        ``mask`` (6, 5) bool, optional, names the (edge, op) pairs to compute; the rest are
        skipped (a final net passes its one-hot choice). ``masked_as_constants``: each skipped
        op's weight is added to its edge's output as a constant instead (GDAS's ``forward_gdas``:
        0 for a one-hot sample, whose gradient in that weight is the sum of the node's gradient).
        ``batch_stats`` makes the search cells normalise with batch statistics even in eval mode
        (used for final nets, whose activations differ from the supernet's running statistics).
        ``drop_prob`` in [0, 1): ScheduledDropPath's probability of dropping an edge for a
        sample, in training mode only (eval mode or 0: no dropping, the same computation as
        without it).
        """
        per_cell = self._check_weights(weights)
        check_drop_prob(drop_prob)
        drop = drop_prob if self.training else 0.0
        constants = masked_constants(weights, mask) if masked_as_constants and mask is not None else None
        mask = as_mask(mask)
        out = self.stem(x)
        cell = 0
        for layer in self.layers:
            if isinstance(layer, ResNetBasicBlock):
                out = layer(out)
            else:
                w, c = weights, constants
                if per_cell:
                    w, c = weights[cell], None if constants is None else constants[cell]
                out = self.run_cell(layer, out, w, mask, batch_stats, drop, c)
                cell += 1
        return self.head(out)

    def run_cell(
        self,
        cell: nn.Module,
        x: torch.Tensor,
        weights: torch.Tensor,
        mask: Mask | None,
        batch_stats: bool,
        drop_prob: float,
        edge_constants: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One search cell's output (a subclass with other cells passes what they need)."""
        return cell(x, weights, mask, batch_stats, drop_prob, edge_constants)

    def _check_weights(self, weights: torch.Tensor) -> bool:
        return weights_per_cell(weights, self.num_cells)


def weights_per_cell(weights: torch.Tensor, num_cells: int) -> bool:
    """True for mixing weights (num_cells, 6, 5), False for (6, 5); else a ConfigError."""
    shape = tuple(weights.shape)
    if shape == (NUM_EDGES, NUM_OPS):
        return False
    if shape == (num_cells, NUM_EDGES, NUM_OPS):
        return True
    raise ConfigError(
        f"mixing weights must have shape ({NUM_EDGES}, {NUM_OPS}) or ({num_cells}, {NUM_EDGES}, "
        f"{NUM_OPS}) (edges x ops, optionally per cell), got {shape}"
    )


def as_mask(mask: torch.Tensor | Mask | None) -> Mask | None:
    """An op mask as nested bool tuples (6 x 5), checked; None stays None."""
    if mask is None:
        return None
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().bool().tolist()  # one read of the whole mask
    rows = tuple(tuple(bool(v) for v in row) for row in mask)
    if len(rows) != NUM_EDGES or any(len(row) != NUM_OPS for row in rows):
        raise ConfigError(f"an op mask must be {NUM_EDGES} x {NUM_OPS} booleans (edges x ops)")
    return rows


def init_alphas(generator: torch.Generator | None = None, scale: float = 1e-3) -> torch.Tensor:
    """Architecture parameters (6, 5), ``scale`` * N(0, 1), as DARTS and NB201 initialise them."""
    return scale * torch.randn(NUM_EDGES, NUM_OPS, generator=generator)


def derive_genotype(alphas: torch.Tensor, include_none: bool = True) -> NB201Genotype:
    """The discretised cell: the argmax op of each edge.

    ``include_none=True`` lets ``none`` win an edge, as NB201's DARTS baselines do;
    ``False`` picks the best op other than ``none``.
    """
    scores = alphas.detach().float().cpu().reshape(NUM_EDGES, NUM_OPS).clone()
    if not include_none:
        scores[:, NONE] = float("-inf")
    return NB201Genotype.from_ops(int(i) for i in scores.argmax(dim=1))


def one_hot(genotype: NB201Genotype, device: torch.device | str = "cpu") -> torch.Tensor:
    """The (6, 5) one-hot weights of a genotype: its final net inside the supernet."""
    weights = torch.zeros(NUM_EDGES, NUM_OPS, device=device)
    weights[torch.arange(NUM_EDGES), torch.tensor(genotype.ops)] = 1.0
    return weights


def final_net_mask(genotype: NB201Genotype) -> Mask:
    """The op mask that keeps only the genotype's op on each edge."""
    return tuple(tuple(op == chosen for op in range(NUM_OPS)) for chosen in genotype.ops)


def weight_parameters(net: nn.Module) -> Sequence[nn.Parameter]:
    """The network weights (everything trainable; architecture parameters live outside)."""
    return [p for p in net.parameters() if p.requires_grad]
