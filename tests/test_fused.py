"""The fused BN + ReLU CPU kernel against float64 references and torch's own ops."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nasbench_harness.supernets import fused
from nasbench_harness.supernets.fused import bn_relu, native_kernels
from nasbench_harness.supernets.nb1shot1 import NB1Shot1SearchNet

CL = torch.channels_last


@pytest.fixture(autouse=True)
def fresh_kernel_lookup():
    """Each test sees NBH_NATIVE as it sets it (the lookup is cached per process)."""
    native_kernels.cache_clear()
    yield
    native_kernels.cache_clear()


def _inputs(shape: tuple[int, ...], offset: float = 0.5, seed: int = 0) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    c = shape[1]
    x = (torch.randn(shape, generator=gen) * 2 + offset).contiguous(memory_format=CL)
    weight = torch.rand(c, generator=gen) + 0.5
    bias = torch.randn(c, generator=gen)
    grad = torch.randn(shape, generator=gen).contiguous(memory_format=CL)
    return x, weight, bias, grad


def _run(fn, x, weight, bias, grad):  # type: ignore[no-untyped-def]
    """Output and gradients (x, weight, bias) of ``fn``, in float64."""
    leaves = [t.clone().requires_grad_(True) for t in (x, weight, bias)]
    y = fn(*leaves)
    y.backward(grad.to(y.dtype))
    return [t.detach().double() for t in (y, *(leaf.grad for leaf in leaves))]


def _reference(x, weight, bias):  # type: ignore[no-untyped-def]
    """BN + ReLU with batch statistics in float64."""
    return _torch_ops(x.double(), weight.double(), bias.double())


def _torch_ops(x, weight, bias):  # type: ignore[no-untyped-def]
    return torch.relu(F.batch_norm(x, None, None, weight, bias, True, 0.0, 1e-5))


def _fused(x, weight, bias):  # type: ignore[no-untyped-def]
    return bn_relu(x, weight, bias, 1e-5)


def _max_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def test_the_kernel_builds_on_this_machine():
    assert native_kernels() is not None, "the fused CPU kernel did not build: see the warning for why"


@pytest.mark.parametrize(
    ("shape", "offset"),
    [
        ((8, 16, 12, 12), 0.5),
        ((4, 32, 9, 9), 0.5),
        ((4, 64, 5, 5), 0.5),
        ((2, 128, 3, 3), 0.5),
        ((3, 24, 7, 7), 0.5),  # a channel count without its own compiled loop
        ((5, 16, 1, 1), 0.5),
        ((96, 16, 24, 24), 0.5),  # more rows than one parallel task
        ((16, 16, 8, 8), 1000.0),  # mean >> std: sums about a shift, not raw squares
    ],
)
def test_matches_float64_reference(shape, offset):
    x, weight, bias, grad = _inputs(shape, offset)
    fused_out = _run(_fused, x, weight, bias, grad)
    reference = _run(_reference, x, weight, bias, grad)
    tolerance = 1e-5 if offset < 10 else 1e-3
    for name, ours, ref in zip(("y", "grad x", "grad weight", "grad bias"), fused_out, reference, strict=True):
        assert _max_rel(ours, ref) < tolerance, name


def test_is_as_accurate_as_torch_where_torch_is_accurate_and_more_where_it_is_not():
    x, weight, bias, grad = _inputs((96, 64, 16, 16))
    reference = _run(_reference, x, weight, bias, grad)
    ours = _run(_fused, x, weight, bias, grad)
    torch_ops = _run(_torch_ops, x, weight, bias, grad)
    for mine, theirs, ref in zip(ours, torch_ops, reference, strict=True):
        assert _max_rel(mine, ref) <= max(_max_rel(theirs, ref), 1e-6)


def test_output_keeps_the_channels_last_layout_and_is_deterministic():
    x, weight, bias, _ = _inputs((8, 16, 10, 10))
    y = bn_relu(x, weight, bias, 1e-5)
    assert y.is_contiguous(memory_format=CL)
    torch.set_num_threads(1)
    try:
        one_thread = bn_relu(x, weight, bias, 1e-5)
    finally:
        torch.set_num_threads(2)
    assert torch.equal(y, one_thread)


def test_updates_running_statistics_as_torch_does():
    x, weight, bias, _ = _inputs((6, 16, 5, 5))
    ours = (torch.zeros(16), torch.ones(16))
    theirs = (torch.zeros(16), torch.ones(16))
    for _ in range(2):
        bn_relu(x, weight, bias, 1e-5, *ours, momentum=0.1)
        F.batch_norm(x, *theirs, weight, bias, True, 0.1, 1e-5)
    torch.testing.assert_close(ours[0], theirs[0])
    torch.testing.assert_close(ours[1], theirs[1])
    still = (ours[0].clone(), ours[1].clone())
    bn_relu(x, weight, bias, 1e-5, *ours, momentum=0.0)
    assert torch.equal(ours[0], still[0]) and torch.equal(ours[1], still[1])


def test_double_backward_matches_torch():
    """Hessian-vector products (the eigenvalue, second-order DARTS) differentiate the gradient."""
    x, weight, bias, grad = _inputs((4, 16, 6, 6))

    def second_order(fn):  # type: ignore[no-untyped-def]
        w = weight.clone().requires_grad_(True)
        xx = x.clone().requires_grad_(True)
        (g_w,) = torch.autograd.grad((fn(xx, w, bias) * grad).sum(), [w], create_graph=True)
        return torch.autograd.grad((g_w**2).sum(), [w, xx])

    ours = second_order(_fused)
    theirs = second_order(_torch_ops)
    for mine, ref in zip(ours, theirs, strict=True):
        torch.testing.assert_close(mine, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", ["contiguous layout", "float64", "turned off"])
def test_falls_back_to_torch_ops(case, monkeypatch):
    x, weight, bias, _ = _inputs((4, 16, 6, 6))
    if case == "contiguous layout":
        x = x.contiguous()
    elif case == "float64":
        x, weight, bias = x.double(), weight.double(), bias.double()
    else:
        monkeypatch.setenv(fused.NATIVE_ENV, "0")
    calls = []
    monkeypatch.setattr(fused._BNReLU, "apply", lambda *a: calls.append(a))
    y = bn_relu(x, weight, bias, 1e-5, torch.zeros(16, dtype=x.dtype), torch.ones(16, dtype=x.dtype), 0.1)
    assert not calls
    torch.testing.assert_close(y, _torch_ops(x, weight, bias))


def test_a_failed_build_warns_once_and_uses_torch_ops(monkeypatch):
    def no_compiler():  # type: ignore[no-untyped-def]
        raise RuntimeError("Error building extension 'nbh_fused_cpu': c++: command not found")

    monkeypatch.setattr(fused, "_build", no_compiler)
    x, weight, bias, _ = _inputs((4, 16, 6, 6))
    with pytest.warns(RuntimeWarning, match="could not build its fused CPU kernel .*command not found"):
        y = bn_relu(x, weight, bias, 1e-5)
    torch.testing.assert_close(y, _torch_ops(x, weight, bias))


def test_supernet_loss_and_gradients_match_torch_ops(monkeypatch):
    """The NB-1Shot1 one-shot model with and without the kernel: same loss, same gradients."""

    def loss_and_grads() -> tuple[torch.Tensor, list[torch.Tensor]]:
        torch.manual_seed(0)
        net = NB1Shot1SearchNet(space=3, channels=8, num_cells=3).to(memory_format=CL)
        x = torch.randn(6, 3, 16, 16).contiguous(memory_format=CL)
        alphas = torch.randn(net.layout.size, requires_grad=True)
        weights = torch.cat([part.softmax(0) for part in alphas.split(net.layout.group_sizes)])
        loss = F.cross_entropy(net(x, weights), torch.arange(6) % 10)
        grads = torch.autograd.grad(loss, [alphas, *net.parameters()])
        return loss.detach(), list(grads)

    fused_loss, fused_grads = loss_and_grads()
    monkeypatch.setenv(fused.NATIVE_ENV, "0")
    native_kernels.cache_clear()
    plain_loss, plain_grads = loss_and_grads()
    torch.testing.assert_close(fused_loss, plain_loss, rtol=1e-5, atol=1e-6)
    for ours, theirs in zip(fused_grads, plain_grads, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=1e-5)
