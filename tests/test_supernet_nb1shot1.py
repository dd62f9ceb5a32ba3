"""The NB-1Shot1 one-shot model against a plain transcription of the authors' forward pass."""

from __future__ import annotations

import pytest
import torch
from reference_cells import assert_same_gradients, nb1shot1_reference_cell

from nasbench_harness.errors import ConfigError
from nasbench_harness.supernets.nb1shot1 import (
    CONV1,
    CONV3,
    POOL,
    Mask,
    NB1Shot1SearchNet,
    grouped_softmax,
)


@pytest.mark.parametrize("space", [1, 2, 3])
def test_cell_equals_the_authors_formulation(space: int) -> None:
    torch.manual_seed(space)
    net = NB1Shot1SearchNet(space, channels=3, num_cells=3).double()
    cell = net.cells[0]
    for p in cell.parameters():  # non-trivial BN affine parameters
        p.data.normal_(0.5, 0.3) if p.dim() == 1 else None
    s0 = torch.randn(4, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    alphas = torch.randn(net.layout.size, dtype=torch.float64, requires_grad=True)
    ours = cell(s0, net.layout.split(grouped_softmax(alphas, net.layout.group_sizes)), None, False)
    ref = nb1shot1_reference_cell(cell, s0, grouped_softmax(alphas, net.layout.group_sizes))
    torch.testing.assert_close(ours, ref)
    assert_same_gradients(ours, ref, [alphas, s0, *cell.parameters()])


@pytest.mark.parametrize(("space", "size"), [(1, 24), (2, 26), (3, 35)])
def test_layout_sizes_match_the_authors_parameters(space: int, size: int) -> None:
    net = NB1Shot1SearchNet(space, channels=2, num_cells=3)
    assert net.layout.size == size
    w = grouped_softmax(torch.zeros(size), net.layout.group_sizes)
    assert net(torch.randn(2, 3, 16, 16), w).shape == (2, 10)
    with pytest.raises(ConfigError, match=f"takes {size} architecture weights"):
        net(torch.randn(2, 3, 16, 16), torch.zeros(size + 1))


def test_mask_skips_only_zero_weighted_parts() -> None:
    torch.manual_seed(0)
    net = NB1Shot1SearchNet(2, channels=3, num_cells=3).eval()
    split = net.layout.split(torch.zeros(net.layout.size))
    flat = torch.zeros(net.layout.size)
    view = net.layout.split(flat)
    chosen_ops = [CONV3, POOL, CONV1, CONV3]
    for i, op in enumerate(chosen_ops):
        view.ops[i, op] = 1.0
    view.output[torch.tensor([1, 3, 4])] = 1.0
    inputs_keep = [None, (True, False), (False, True, True), (True, False, True, False)]
    for i, keep in enumerate(inputs_keep):
        if keep is not None:
            view.inputs[i][torch.tensor(keep)] = 1.0
    assert split.inputs[0] is None
    mask = Mask(
        ops=tuple(tuple(k == op for k in range(3)) for op in chosen_ops),
        output=tuple(bool(v) for v in view.output),
        inputs=tuple(inputs_keep),
    )
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(
            net(x, flat, mask=mask, batch_stats=True), net(x, flat, batch_stats=True), rtol=1e-5, atol=1e-6
        )
