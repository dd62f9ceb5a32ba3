"""The standalone NB101 network: vertex channels, structure and outputs against nasbench-pytorch,
errors, and parameter counts against the NB101 table's ``params``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from nasbench_pytorch.model import Network as ReferenceNetwork
from nasbench_pytorch.model.model import Placeholder
from nasbench_pytorch.model.model import compute_vertex_channels as reference_vertex_channels
from torch import nn

from nasbench_harness.errors import ConfigError, GenotypeError
from nasbench_harness.spaces.nb101 import OPS, NB101Spec
from nasbench_harness.supernets.nb101_net import NB101Cell, NB101Network, compute_vertex_channels, count_parameters
from nasbench_harness.tabular.nb101 import NB101Benchmark

C3, C1, MP = OPS
# input -> conv3 -> conv1 -> output, input -> maxpool -> output, input -> output
SPEC = NB101Spec.from_matrix(
    [[0, 1, 0, 1, 1], [0, 0, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]],
    ["input", C3, C1, MP, "output"],
)
# three vertices feed the output: 43, 43, 42 of 128 channels; vertex 1 feeds vertex 3 truncated to 42
TRUNCATING = NB101Spec.from_matrix(
    [[0, 1, 0, 1, 0], [0, 0, 1, 1, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]],
    ["input", C1, C3, C3, "output"],
)


def _random_specs(count: int, seed: int) -> list[NB101Spec]:
    """Valid pruned specs of 2..7 vertices drawn at random (NB101's limits: <= 9 edges)."""
    rng = np.random.default_rng(seed)
    specs: list[NB101Spec] = []
    while len(specs) < count:
        n = int(rng.integers(3, 8))
        matrix = np.triu(rng.random((n, n)) < 0.45, k=1).astype(int)
        ops = ["input", *rng.choice(OPS, n - 2).tolist(), "output"]
        try:
            specs.append(NB101Spec.from_matrix(matrix, ops).validate())
        except GenotypeError:
            continue
    return specs


def _reference(spec: NB101Spec, **kwargs: int) -> ReferenceNetwork:
    return ReferenceNetwork((np.array(spec.matrix), list(spec.ops)), **kwargs)


def _reference_count(net: nn.Module) -> int:
    """nasbench-pytorch's trainable parameters without its placeholders' dummy scalars."""
    dummy = sum(p.numel() for m in net.modules() if isinstance(m, Placeholder) for p in m.parameters())
    return count_parameters(net) - dummy


def test_vertex_channels_match_nasbench_pytorch() -> None:
    for spec in _random_specs(300, seed=0):
        for c_in, c_out in ((128, 128), (128, 256), (16, 32), (7, 13)):
            matrix = np.array(spec.matrix)
            if spec.num_vertices > 2 and c_out < matrix[1:, -1].sum():
                continue
            assert compute_vertex_channels(c_in, c_out, spec.matrix) == reference_vertex_channels(c_in, c_out, matrix)


def test_vertex_channels_example() -> None:
    # 128 over 2 feeders -> 64 each; conv3 takes the max of what it feeds (conv1: 64)
    assert compute_vertex_channels(128, 128, SPEC.matrix) == [128, 64, 64, 64, 128]
    assert compute_vertex_channels(128, 129, SPEC.matrix) == [128, 65, 65, 64, 129]
    assert compute_vertex_channels(128, 128, TRUNCATING.matrix) == [128, 43, 43, 42, 128]


def test_parameter_counts_match_nasbench_pytorch_without_placeholders() -> None:
    for spec in _random_specs(12, seed=1):
        ours = NB101Network(spec, stem_channels=8, num_stacks=2, cells_per_stack=2, num_classes=5)
        ref = _reference(spec, stem_out_channels=8, num_stacks=2, num_modules_per_stack=2, num_labels=5)
        assert count_parameters(ours) == _reference_count(ref)


def _copy_conv_bn(src: nn.Sequential, dst: nn.Sequential) -> None:
    dst[0].weight.copy_(src[0].weight)
    dst[1].weight.copy_(src[1].weight)
    dst[1].bias.copy_(src[1].bias)


def _copy_into_reference(ours: NB101Network, ref: ReferenceNetwork) -> None:
    """Our weights into the reference network, module by module."""
    _copy_conv_bn(ours.stem, ref.layers[0].conv_bn_relu)
    for mine, theirs in zip(ours.layers, list(ref.layers)[1:], strict=True):
        if not isinstance(mine, NB101Cell):
            assert isinstance(theirs, nn.MaxPool2d)
            continue
        for t in range(1, mine.num_vertices - 1):
            op = theirs.vertex_op[t]
            if hasattr(op, "conv3x3") or hasattr(op, "conv1x1"):
                inner = op.conv3x3 if hasattr(op, "conv3x3") else op.conv1x1
                _copy_conv_bn(mine.ops[t - 1], inner.conv_bn_relu)
        for key, projection in mine.projections.items():
            _copy_conv_bn(projection, theirs.input_op[int(key)].conv_bn_relu)
    ref.classifier.load_state_dict(ours.classifier.state_dict())


@torch.no_grad()
def test_outputs_match_nasbench_pytorch_with_copied_weights() -> None:
    """In training mode (batch statistics) the two networks compute the same function."""
    torch.manual_seed(0)
    x = torch.randn(4, 3, 12, 12)
    for spec in [SPEC, TRUNCATING, *_random_specs(5, seed=2)]:
        ours = NB101Network(spec, stem_channels=8, num_stacks=2, cells_per_stack=2)
        ref = _reference(spec, stem_out_channels=8, num_stacks=2, num_modules_per_stack=2)
        _copy_into_reference(ours, ref)
        torch.testing.assert_close(ours.train()(x), ref.train()(x), rtol=1e-4, atol=1e-5)


def test_forward_shape_on_cifar_sized_batch() -> None:
    net = NB101Network(SPEC)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    small = NB101Network(SPEC, stem_channels=8, num_stacks=2, cells_per_stack=1, num_classes=100)
    assert small(torch.randn(3, 3, 32, 32)).shape == (3, 100)
    assert small(torch.randn(1, 3, 15, 15)).shape == (1, 100)  # odd size: TF 'same' pooling


def test_tf_defaults() -> None:
    net = NB101Network(SPEC, stem_channels=8)
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(m.momentum == pytest.approx(0.003) and m.eps == 1e-5 and m.affine for m in bns)
    assert all(m.bias is None for m in net.modules() if isinstance(m, nn.Conv2d))
    assert net.classifier.bias is not None and not net.classifier.bias.any()


def test_input_to_output_only_cell_is_a_projection() -> None:
    spec = NB101Spec.from_matrix([[0, 1], [0, 0]], ["input", "output"])
    net = NB101Network(spec, stem_channels=4, num_stacks=1, cells_per_stack=1)
    # stem 3*3*3*4 + BN 8; projection 4*4 + BN 8; classifier 4*10 + 10
    assert count_parameters(net) == 108 + 8 + 16 + 8 + 50
    assert net(torch.randn(2, 3, 8, 8)).shape == (2, 10)


def test_spec_is_pruned_first() -> None:
    # vertex 2 (maxpool) feeds nothing and is pruned away
    spec = NB101Spec.from_matrix([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]], ["input", C3, MP, "output"])
    net = NB101Network(spec, stem_channels=8)
    assert net.spec == spec.pruned() and net.spec.num_vertices == 3


def test_invalid_specs_are_explained() -> None:
    disconnected = NB101Spec.from_matrix([[0, 1, 0], [0, 0, 0], [0, 0, 0]], ["input", C3, "output"])
    with pytest.raises(GenotypeError, match="no path"):
        NB101Network(disconnected)
    too_many_edges = NB101Spec.from_matrix(np.triu(np.ones((7, 7), dtype=int), k=1), ["input", *[C3] * 5, "output"])
    with pytest.raises(GenotypeError, match="at most 9 edges"):
        NB101Network(too_many_edges)
    with pytest.raises(GenotypeError, match="takes an NB101Spec"):
        NB101Network(([[0, 1], [0, 0]], ["input", "output"]))  # type: ignore[arg-type]
    with pytest.raises(GenotypeError, match="unknown NB101 op"):
        NB101Spec.from_matrix([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv5x5", "output"])


def test_bad_sizes_are_explained() -> None:
    with pytest.raises(ConfigError, match="cannot be split over the 2 vertices"):
        NB101Network(SPEC, stem_channels=1)
    with pytest.raises(ConfigError, match="num_stacks must be a positive integer"):
        NB101Network(SPEC, num_stacks=0)
    with pytest.raises(ConfigError, match="bn_momentum"):
        NB101Network(SPEC, bn_momentum=0.997 * 2)


@pytest.mark.data
def test_parameter_counts_equal_the_nb101_table(real_nb101: NB101Benchmark) -> None:
    """Exactly the table's trainable_parameters: BN moving statistics are not trainable in TF either."""
    table = pd.read_parquet(
        real_nb101.path / "table.parquet", columns=["module_hash", "adjacency", "ops", "num_vertices", "params"]
    )
    # up to 7 cells of each size (the table has 2 of 3 vertices): 30 cells; the meta device skips allocating weights
    sample = pd.concat(group.sample(n=min(len(group), 7), random_state=0) for _, group in table.groupby("num_vertices"))
    assert sorted(set(sample.num_vertices)) == [3, 4, 5, 6, 7] and len(sample) == 30
    for row in sample.itertuples():
        spec = NB101Spec.from_strings(row.adjacency, row.ops)
        assert spec.module_hash() == row.module_hash
        with torch.device("meta"):
            net = NB101Network(spec)
        assert count_parameters(net) == int(row.params), (row.module_hash, spec)
