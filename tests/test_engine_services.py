"""The search state's services: supernet evaluation (against a plain loop over the batches, BN
statistics untouched) and the ``arch_step_on`` hook (the alphas stay put, the data order does not
change)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from tiny import TINY

from nasbench_harness.config import build_config
from nasbench_harness.methods.components.arch_steps import FirstOrderStep
from nasbench_harness.methods.engine.base import Component, Method, SearchState
from nasbench_harness.methods.engine.loop import build_state

pytestmark = pytest.mark.usefixtures("one_thread")


def _state(method: Method) -> SearchState:
    config = build_config("cpu", {**TINY, "epochs": 3, "method": "darts"})
    state, _ = build_state(config, method, 10, torch.device("cpu"))
    return state


def _batches(n: int = 40, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 3, 16, 16, generator=g), torch.randint(0, 10, (n,), generator=g)
    return [(x[:16], y[:16]), (x[16:32], y[16:32]), (x[32:], y[32:])]


def _buffers(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.named_buffers()}


@pytest.mark.parametrize("batch_stats", [False, True])
def test_evaluate_matches_a_plain_loop_and_leaves_bn_statistics(batch_stats: bool) -> None:
    state = _state(Method("darts", FirstOrderStep()))
    state.net.train()
    with torch.no_grad():  # running statistics that differ from any batch's
        for _ in range(2):
            state.net(torch.randn(16, 3, 16, 16) * 3 + 1, state.mixing())
    batches, weights = _batches(), state.mixing().detach()
    before = _buffers(state.net)

    loss, acc = state.evaluate(weights, batch_stats=batch_stats, batches=batches)

    after = _buffers(state.net)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert state.net.training  # the mode is restored
    state.net.train(batch_stats)  # train mode = batch statistics; the buffers are restored below
    total = hits = 0.0
    with torch.no_grad():
        for x, y in batches:
            logits = state.net(x, weights)
            total += float(F.cross_entropy(logits, y, reduction="sum"))
            hits += float((logits.argmax(1) == y).sum())
    for k, v in state.net.named_buffers():
        v.copy_(before[k])
    assert loss == pytest.approx(total / 40, rel=1e-6)
    assert acc == pytest.approx(100.0 * hits / 40)
    assert 0.0 <= acc <= 100.0


def test_evaluate_genotype_is_the_final_net_with_batch_statistics() -> None:
    state = _state(Method("darts", FirstOrderStep()))
    genotype = state.derive()
    weights, mask = state.space.final_net(genotype, torch.device("cpu"))
    batches = _batches()
    expected = state.evaluate(weights, mask, batch_stats=True, batches=batches)[1]
    assert state.evaluate_genotype(genotype, batches) == expected
    assert state.final_net_batch_stats() is True


def test_evaluate_without_images_is_an_error() -> None:
    state = _state(Method("darts", FirstOrderStep()))
    with pytest.raises(RuntimeError, match="no evaluation images"):
        state.evaluate(state.mixing().detach())
    with pytest.raises(RuntimeError, match="no images"):
        state.evaluate(state.mixing().detach(), batches=[])


class _ArchOffAfter(Component):
    def __init__(self, last: int) -> None:
        self.last = last

    def arch_step_on(self, state: SearchState) -> bool | None:
        return None if state.epoch <= self.last else False


class _CountingStep(FirstOrderStep):
    def __init__(self) -> None:
        self.calls: list[int] = []

    def step(self, state: SearchState, train: Any, valid: Any) -> Any:
        self.calls.append(state.epoch)
        return super().step(state, train, valid)


def test_arch_step_off_after_an_epoch(tmp_path: Any) -> None:
    from nasbench_harness.data import synthetic_search_data
    from nasbench_harness.methods.engine.loop import Search
    from nasbench_harness.tracking import RunDir

    def search(last: int) -> tuple[_CountingStep, list[torch.Tensor], list[Any]]:
        step = _CountingStep()
        method = Method("darts", step, [_ArchOffAfter(last)])
        config = build_config("cpu", {**TINY, "epochs": 3, "method": "darts"})
        data = synthetic_search_data(n_train=32, n_valid=32, image_size=16, seed=0)
        run = Search(config, method, data, _NoBench(), RunDir(tmp_path / f"off-{last}"), torch.device("cpu"))
        alphas, arch_batches = [], []
        for epoch in range(1, 4):
            run.train_epoch(epoch)
            alphas.append(run.state.alphas.detach().clone())
            arch_batches.append(run.state.arch_batch[1].clone())
        return step, alphas, arch_batches

    step, alphas, batches = search(last=1)
    assert sorted(set(step.calls)) == [1]  # epochs 2 and 3 ran no arch step
    assert not torch.equal(alphas[0], _state(Method("darts", FirstOrderStep())).alphas.detach())
    assert torch.equal(alphas[0], alphas[1]) and torch.equal(alphas[1], alphas[2])
    reference_step, _, reference_batches = search(last=3)
    assert sorted(set(reference_step.calls)) == [1, 2, 3]
    # the arch batches are drawn either way: the data order does not depend on the hook
    assert all(torch.equal(a, b) for a, b in zip(batches, reference_batches, strict=True))


class _NoBench:
    """train_epoch never scores; a table would only be read by ``track``."""
