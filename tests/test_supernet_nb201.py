"""The NB201 supernet: shapes, equivalence with a plain per-edge mixed op, final nets, derivation,
and the standalone network's parameter counts against the NB201 table."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from reference_cells import assert_same_gradients, nb201_reference_cell

from nasbench_harness.errors import ConfigError
from nasbench_harness.spaces.nb201 import NB201Genotype
from nasbench_harness.supernets.nb201 import (
    NB201SearchCell,
    NB201SearchNet,
    derive_genotype,
    final_net_mask,
    init_alphas,
    one_hot,
)
from nasbench_harness.supernets.nb201_net import NB201Network, count_parameters


@pytest.mark.parametrize(("channels", "cells", "size", "classes"), [(4, 1, 16, 10), (8, 2, 32, 100), (16, 5, 16, 120)])
def test_logits_shape(channels: int, cells: int, size: int, classes: int) -> None:
    net = NB201SearchNet(channels, cells, classes)
    weights = torch.softmax(init_alphas(), -1)
    assert net(torch.randn(2, 3, size, size), weights).shape == (2, classes)
    per_cell = weights.expand(net.num_cells, 6, 5).clone()
    assert net(torch.randn(2, 3, size, size), per_cell).shape == (2, classes)


def test_bad_weights_shape_is_explained() -> None:
    net = NB201SearchNet(4, 1, 10)
    with pytest.raises(ConfigError, match=r"shape \(6, 5\)"):
        net(torch.randn(2, 3, 16, 16), torch.ones(5, 6))


@pytest.mark.parametrize("channels_last", [False, True])
def test_cell_equals_plain_mixed_op_in_value_and_gradients(channels_last: bool) -> None:
    torch.manual_seed(0)
    cell = NB201SearchCell(6).double()
    x = torch.randn(4, 6, 8, 8, dtype=torch.float64)
    if channels_last:
        cell, x = cell.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    alphas = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    x.requires_grad_(True)
    ours = cell(x, torch.softmax(alphas, -1), None, False)
    ref = nb201_reference_cell(cell, x, torch.softmax(alphas, -1))
    torch.testing.assert_close(ours, ref)
    assert_same_gradients(ours, ref, [alphas, x, *cell.parameters()])


def test_second_derivatives_flow_through_the_cell() -> None:
    """Hessians and unrolled DARTS need double backward through the fused weighted sum."""
    torch.manual_seed(1)
    cell = NB201SearchCell(3).double()
    x = torch.randn(3, 3, 6, 6, dtype=torch.float64)
    alphas = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)

    def f(a: torch.Tensor) -> torch.Tensor:
        return (cell(x, torch.softmax(a, -1), None, False) ** 2).mean()

    def g(a: torch.Tensor) -> torch.Tensor:
        return (nb201_reference_cell(cell, x, torch.softmax(a, -1)) ** 2).mean()

    h_ours = torch.autograd.functional.hessian(f, alphas)
    h_ref = torch.autograd.functional.hessian(g, alphas)
    torch.testing.assert_close(h_ours, h_ref)


def test_final_net_mask_skips_only_zero_weighted_ops() -> None:
    torch.manual_seed(2)
    net = NB201SearchNet(4, 1, 10).eval()
    genotype = NB201Genotype.from_string(
        "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"
    )
    x = torch.randn(8, 3, 16, 16)
    with torch.no_grad():
        full = net(x, one_hot(genotype), batch_stats=True)
        masked = net(x, one_hot(genotype), mask=final_net_mask(genotype), batch_stats=True)
    torch.testing.assert_close(masked, full)


def test_evaluation_never_moves_running_statistics() -> None:
    net = NB201SearchNet(4, 1, 10, bn_track_running_stats=True)
    weights = torch.softmax(init_alphas(), -1)
    net.train()
    net(torch.randn(4, 3, 16, 16), weights)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.eval()
    with torch.no_grad():
        net(torch.randn(4, 3, 16, 16), weights, batch_stats=True)
        net(torch.randn(4, 3, 16, 16), weights)
    for key, value in net.state_dict().items():
        torch.testing.assert_close(value, before[key], msg=key)


def test_derive_genotype_with_and_without_none() -> None:
    alphas = torch.zeros(6, 5)
    alphas[:, 0] = 2.0  # none wins every edge
    alphas[:, 3] = 1.0  # nor_conv_3x3 second
    assert derive_genotype(alphas).ops == (0,) * 6
    assert derive_genotype(alphas, include_none=False).ops == (3,) * 6
    alphas[2] = torch.tensor([0.0, 0.0, 0.0, 0.0, 5.0])
    assert derive_genotype(alphas).op_names[2] == "avg_pool_3x3"


def test_init_alphas_scale_and_seed() -> None:
    a = init_alphas(torch.Generator().manual_seed(0))
    b = init_alphas(torch.Generator().manual_seed(0))
    assert a.shape == (6, 5) and torch.equal(a, b)
    assert 1e-4 < float(a.std()) < 1e-2


def test_bad_sizes_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="channels >= 1"):
        NB201SearchNet(0, 1, 10)


@pytest.mark.data
def test_standalone_parameter_counts_match_the_table(real_nb201) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    indices = [0, 15624, *rng.choice(15625, 40, replace=False).tolist()]
    for dataset, classes in (("cifar10-valid", 10), ("cifar100", 100), ("ImageNet16-120", 120)):
        values = real_nb201.query_many(indices, f"{dataset}/params@200")
        for index, listed in zip(indices, values, strict=True):
            net = NB201Network(NB201Genotype.from_index(index), 16, 5, classes)
            assert count_parameters(net) == round(listed * 1e6), (dataset, index)


def test_standalone_network_runs() -> None:
    net = NB201Network(NB201Genotype.from_index(123), channels=4, cells_per_stage=1, num_classes=10)
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_a_mask_computes_only_the_used_edges_of_a_stacked_convolution() -> None:
    """A GDAS-like mask (some edges of a node use a conv, others not): the values and gradients of
    computing every op under the masked-out weights set to 0."""
    torch.manual_seed(0)
    cell = NB201SearchCell(4).double().train()
    x = torch.randn(4, 4, 6, 6, dtype=torch.float64)
    weights = torch.softmax(torch.randn(6, 5, dtype=torch.float64), -1).requires_grad_(True)
    keep = torch.tensor(
        [[0, 0, 0, 1, 0], [0, 1, 0, 0, 0], [0, 0, 1, 0, 1], [0, 0, 0, 1, 0], [0, 0, 1, 0, 0], [1, 0, 0, 0, 0]]
    )
    mask = tuple(tuple(bool(v) for v in row) for row in keep)
    masked = cell(x, weights, mask, False)
    full = cell(x, weights * keep, None, False)
    torch.testing.assert_close(masked, full)
    probe = torch.randn_like(masked)
    params = [weights, *cell.parameters()]
    got = torch.autograd.grad((masked * probe).sum(), params, allow_unused=True)  # unused convs: None
    want = torch.autograd.grad((full * probe).sum(), params)
    for a, b, p in zip(got, want, params, strict=True):
        torch.testing.assert_close(torch.zeros_like(p) if a is None else a, b)
