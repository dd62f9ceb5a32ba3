"""Plain transcriptions of supernet cells, the references the fused implementations are tested against."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nasbench_harness.spaces.nb201 import EDGES
from nasbench_harness.supernets.nb201 import CONV1, CONV3, OUT_EDGES, POOL, SKIP, NB201SearchCell


def nb201_reference_cell(
    cell: NB201SearchCell, x: torch.Tensor, w: torch.Tensor, keep: torch.Tensor | None = None
) -> torch.Tensor:
    """NB201's mixed op written plainly: every edge, every op, separate BN, sum of w * op(x); with
    ``keep`` (6 per-sample masks), DARTS's drop path: node = sum over edges of keep_e * edge_e."""
    c = x.shape[1]
    nodes = [x]
    for target in range(1, 4):
        total = torch.zeros_like(x)
        for e, (src, dst) in enumerate(EDGES):
            if dst != target:
                continue
            h = nodes[src]
            k = OUT_EDGES[src].index(e)
            conv3 = cell.conv3[src].conv.weight[k * c : (k + 1) * c]
            conv1 = cell.conv1[src].conv.weight[k * c : (k + 1) * c]
            y3 = F.batch_norm(F.conv2d(F.relu(h), conv3, padding=1), None, None, training=True)
            y1 = F.batch_norm(F.conv2d(F.relu(h), conv1), None, None, training=True)
            pool = F.avg_pool2d(h, 3, 1, 1, count_include_pad=False)
            edge = w[e, 0] * torch.zeros_like(h) + w[e, SKIP] * h + w[e, CONV1] * y1 + w[e, CONV3] * y3
            edge = edge + w[e, POOL] * pool
            total = total + (edge if keep is None else keep[e] * edge)
        nodes.append(total)
    return nodes[-1]
