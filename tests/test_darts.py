"""DARTS's finite-difference Hessian-vector product and the Hessian eigenvalue, against autograd."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nasbench_harness.methods.components.arch_steps import finite_difference_hvp
from nasbench_harness.methods.components.hessian import (
    alpha_hessian,
    dominant_eigenvalue,
    softmax_basis,
)
from nasbench_harness.supernets.nb201 import NB201SearchNet


def _tiny_problem() -> tuple[NB201SearchNet, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    net = NB201SearchNet(3, 1, 4).double()
    x = torch.randn(8, 3, 8, 8, dtype=torch.float64)
    y = torch.randint(0, 4, (8,))
    alphas = (0.5 * torch.randn(6, 5, dtype=torch.float64)).requires_grad_(True)
    return net, x, y, alphas


def test_finite_difference_hvp_matches_autograd_mixed_derivative() -> None:
    """On a smooth loss; on the ReLU supernet a finite difference of gradients jumps at every kink crossed."""
    torch.manual_seed(0)
    weights = [torch.randn(7, 30, dtype=torch.float64), torch.randn(7, dtype=torch.float64)]
    alphas = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)

    def loss() -> torch.Tensor:
        hidden = torch.tanh(weights[0] @ torch.softmax(alphas, -1).reshape(-1) + weights[1])
        return (hidden**2).sum() + (weights[1] * hidden).sum()

    for p in weights:
        p.requires_grad_(True)
    vector = [torch.randn_like(p) for p in weights]
    grads_w = torch.autograd.grad(loss(), weights, create_graph=True)
    inner = sum((g * v).sum() for g, v in zip(grads_w, vector, strict=True))
    (exact,) = torch.autograd.grad(inner, [alphas])
    before = [p.detach().clone() for p in weights]
    approx = finite_difference_hvp(loss, weights, alphas, vector)
    rel = float((approx - exact).norm() / exact.norm())
    assert rel < 1e-4, rel
    for p, b in zip(weights, before, strict=True):  # weights restored
        torch.testing.assert_close(p.detach(), b)


def test_finite_difference_hvp_on_the_supernet_head() -> None:
    """Perturbing only the (smooth) classifier weights, the supernet's product matches autograd too."""
    net, x, y, alphas = _tiny_problem()
    params = list(net.head.classifier.parameters())

    def loss() -> torch.Tensor:
        return F.cross_entropy(net(x, torch.softmax(alphas, -1)), y)

    vector = [torch.randn_like(p) for p in params]
    grads_w = torch.autograd.grad(loss(), params, create_graph=True)
    inner = sum((g * v).sum() for g, v in zip(grads_w, vector, strict=True))
    (exact,) = torch.autograd.grad(inner, [alphas])
    approx = finite_difference_hvp(loss, params, alphas, vector)
    assert float((approx - exact).norm() / exact.norm()) < 1e-4


def test_finite_difference_hvp_of_zero_vector_is_zero() -> None:
    net, x, y, alphas = _tiny_problem()
    params = list(net.parameters())
    out = finite_difference_hvp(
        lambda: F.cross_entropy(net(x, torch.softmax(alphas, -1)), y),
        params,
        alphas,
        [torch.zeros_like(p) for p in params],
    )
    assert torch.count_nonzero(out) == 0


def test_alpha_hessian_of_a_quadratic() -> None:
    a_matrix = torch.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    hessian = alpha_hessian(lambda a: 0.5 * a @ a_matrix @ a, torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(hessian, a_matrix)


def test_exact_eigenvalue_matches_eigvalsh_of_the_supernet_hessian() -> None:
    net, x, y, alphas = _tiny_problem()

    def loss(a: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(net(x, torch.softmax(a, -1)), y)

    full = torch.autograd.functional.hessian(loss, alphas.detach()).reshape(30, 30)
    eig = dominant_eigenvalue(loss, alphas)
    assert eig.method == "exact"
    assert abs(eig.value - float(torch.linalg.eigvalsh((full + full.T) / 2)[-1])) < 1e-8


@pytest.mark.parametrize("space", ["nb201", "nb1shot1-1"])
@pytest.mark.parametrize("chunk", [3, 8, 64])
def test_batched_hessian_vector_products_give_the_one_at_a_time_hessian(space: str, chunk: int) -> None:
    """The vmapped double backward (a GPU's default, :func:`hvp_chunk`) computes the same Hessian
    as one product at a time, through every custom autograd function of both supernets."""
    from nasbench_harness.testing import tiny_state

    state = tiny_state(space)
    x, y = state.batch
    basis = softmax_basis(state.space.group_sizes)

    def loss(a: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(state.forward(x, state.mixing(a, phase="eval"), "eval"), y)

    one = alpha_hessian(loss, state.alphas, basis, chunk=1)
    batched = alpha_hessian(loss, state.alphas, basis, chunk=chunk)
    assert one.abs().max() > 0
    torch.testing.assert_close(batched, one, rtol=1e-5, atol=1e-7)


def _quadratic(values: torch.Tensor, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """A random symmetric matrix with the spectrum ``values`` and alphas on ``device``."""
    generator = torch.Generator().manual_seed(5)
    q, _ = torch.linalg.qr(torch.randn(len(values), len(values), dtype=torch.float64, generator=generator))
    matrix = (q @ torch.diag(values) @ q.T).to(device)
    return matrix, torch.zeros(len(values), dtype=torch.float64, device=device)


@pytest.mark.parametrize(("low", "high"), [(-1.0, 4.0), (-9.0, 2.0), (-5.0, -1.0)])
def test_lanczos_path_beyond_the_exact_limit_gives_the_largest_eigenvalue(low: float, high: float) -> None:
    """80 alphas (> EXACT_LIMIT): Lanczos iteration; a negative eigenvalue of larger magnitude than
    the largest one (-9 vs 2) must not be reported, as R-DARTS reports max(eigvals(H))."""
    values = torch.linspace(low, high, 80, dtype=torch.float64)
    matrix, alphas = _quadratic(values)
    eig = dominant_eigenvalue(lambda a: 0.5 * a @ matrix @ a, alphas)
    assert eig.method == "lanczos"
    assert eig.value == pytest.approx(high, abs=1e-6)


@pytest.mark.parametrize("n", [10, 80])
def test_arch_weight_decay_adds_to_the_hessian(n: int) -> None:
    """R-DARTS decides on the Hessian of L + wd/2 ||a||^2: every eigenvalue shifts by wd."""
    matrix, alphas = _quadratic(torch.linspace(0.5, 3.0, n, dtype=torch.float64))
    plain = dominant_eigenvalue(lambda a: 0.5 * a @ matrix @ a, alphas)
    decayed = dominant_eigenvalue(lambda a: 0.5 * a @ matrix @ a, alphas, weight_decay=0.25)
    assert decayed.value == pytest.approx(plain.value + 0.25, abs=1e-8)


def test_arch_weight_decay_in_the_softmax_basis() -> None:
    """In the softmax basis the left-out (flat) directions have curvature exactly wd."""
    net, x, y, alphas = _tiny_problem()

    def loss(a: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(net(x, torch.softmax(a, -1)), y)

    full = dominant_eigenvalue(lambda a: loss(a) + 0.5e-3 * (a**2).sum(), alphas)
    reduced = dominant_eigenvalue(loss, alphas, softmax_groups=[5] * 6, weight_decay=1e-3)
    assert reduced.value == pytest.approx(full.value, rel=1e-8, abs=1e-10)


@pytest.mark.cuda
def test_lanczos_path_runs_on_cuda_alphas() -> None:
    matrix, alphas = _quadratic(torch.linspace(-1.0, 4.0, 80, dtype=torch.float64), device="cuda")
    eig = dominant_eigenvalue(lambda a: 0.5 * a @ matrix @ a, alphas)
    assert eig.method == "lanczos" and eig.value == pytest.approx(4.0, abs=1e-6)


def test_softmax_basis_gives_the_same_dominant_eigenvalue_with_fewer_products() -> None:
    net, x, y, alphas = _tiny_problem()

    def loss(a: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(net(x, torch.softmax(a, -1)), y)

    basis = softmax_basis([5] * 6)
    assert basis.shape == (30, 24)
    torch.testing.assert_close(basis.T @ basis, torch.eye(24, dtype=torch.float64))
    assert float((basis.T @ torch.ones(30, dtype=torch.float64)).abs().max()) < 1e-12
    full = dominant_eigenvalue(loss, alphas)
    reduced = dominant_eigenvalue(loss, alphas, softmax_groups=[5] * 6)
    assert reduced.value == pytest.approx(full.value, rel=1e-8, abs=1e-10)
    # the left-out eigenvalues are zero: the full spectrum is the reduced one plus six zeros
    spectrum = torch.linalg.eigvalsh(alpha_hessian(loss, alphas))
    assert int((spectrum.abs() < 1e-8).sum()) >= 6
