"""The ``speed`` options (issue 18): each off by default, each computing what the plain step
computes (exactly, or within bfloat16's precision), tested on the CPU where the option exists
there; CUDA graphs only exist on a GPU (``cuda``-marked tests)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from nasbench_harness.config import build_config
from nasbench_harness.data.synthetic import synthetic_search_data
from nasbench_harness.errors import ConfigError
from nasbench_harness.methods.engine.graphs import check_graphable, graph_blockers
from nasbench_harness.methods.engine.loop import build_loaders, build_state
from nasbench_harness.methods.engine.steps import training_step, weight_step
from nasbench_harness.registry import METHODS, build_method

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = {"model": {"channels": 4, "cells_per_stage": 1, "num_cells": 3}, "batch_size": 8, "epochs": 2}


def _setup(method: str = "darts", device: str = "cpu", **speed: bool) -> tuple[Any, Any]:
    config = build_config("cpu", {"method": method, **TINY, "speed": speed})
    m, _ = build_method(config)
    state, _ = build_state(config, m, 10, torch.device(device))
    loaders = build_loaders(config, synthetic_search_data(32, 32, image_size=16), torch.device(device))
    state.epoch, state.steps = 1, len(loaders.train)
    state.net.train()
    return state, loaders


def test_every_option_is_off_by_default() -> None:
    speed = build_config("cpu").speed
    assert not (speed.amp_bf16 or speed.compile or speed.cuda_graph)
    state, _ = _setup()
    assert state.weight_step_dtype is None and state.compiled_net is None and state.weight_step_graph is None


def test_bf16_autocast_changes_the_weight_step_only_and_only_within_its_precision() -> None:
    plain, loaders = _setup()
    amp, _ = _setup(amp_bf16=True)
    train, valid = next(iter(loaders.train.epoch(1))), next(iter(loaders.valid.epoch(1)))
    seen: list[torch.dtype] = []
    amp.net.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    loss_plain, _ = training_step(plain, train, valid)
    loss_amp, logits = training_step(amp, train, valid)
    assert seen == [torch.float32, torch.bfloat16]  # the arch step in fp32, the weight step in bf16
    assert logits.dtype == torch.bfloat16 and loss_amp.dtype == torch.float32
    assert float(loss_amp) == pytest.approx(float(loss_plain), rel=2e-2)
    assert torch.equal(plain.alphas, amp.alphas)  # the arch step ran before, identically
    moved = [(p - q).abs().max() for p, q in zip(plain.net.parameters(), amp.net.parameters(), strict=True)]
    assert max(moved) < 1e-2


def test_compile_gives_the_eager_step_and_leaves_evaluations_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    """Traced by dynamo and AOT autograd as ``inductor`` would be, without its code generation
    (minutes on this CPU; the GPU benchmark compiles with inductor)."""
    import nasbench_harness.methods.engine.loop as loop

    monkeypatch.setattr(loop, "COMPILE_BACKEND", "aot_eager")
    torch._dynamo.reset()
    eager, loaders = _setup()
    compiled, _ = _setup(compile=True)
    calls: list[int] = []
    inner = compiled.compiled_net
    compiled.compiled_net = lambda *a, **k: calls.append(1) or inner(*a, **k)
    for step, (train, valid) in enumerate(zip(loaders.train.epoch(1), loaders.valid.epoch(1), strict=False)):
        eager.step = compiled.step = step
        loss_e, _ = training_step(eager, train, valid)
        loss_c, _ = training_step(compiled, train, valid)
        assert float(loss_c) == pytest.approx(float(loss_e), rel=1e-4, abs=1e-5)
    assert len(calls) == 2 * len(loaders.train)  # the arch and the weight step's forwards
    for p, q in zip(eager.net.parameters(), compiled.net.parameters(), strict=True):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-5)
    compiled.eval_batches = eager.eval_batches = lambda: loaders.evaluation.epoch(0)
    for genotype in (
        "|skip_connect~0|+|none~0|nor_conv_3x3~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|",
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|",
    ):
        from nasbench_harness.spaces.nb201 import NB201Genotype

        g = NB201Genotype.from_string(genotype)
        assert compiled.evaluate_genotype(g) == pytest.approx(eager.evaluate_genotype(g), abs=1e-9)
    assert len(calls) == 2 * len(loaders.train)  # final nets never went through the compiled net


def test_cuda_graph_is_refused_off_a_gpu_and_for_steps_that_change_per_step() -> None:
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        _setup(cuda_graph=True)
    graphable = {m for m in METHODS if not graph_blockers(build_method(build_config("cpu", {"method": m}))[0])}
    assert {"darts", "darts-2nd", "rdarts-l2", "rdarts-dp", "sdarts-rs", "beta-darts", "darts-es"} <= graphable
    for name, blocker in (
        ("gdas", "GumbelSampler"),
        ("sdarts-adv", "AdversarialPerturbation"),
        ("rsws", "RandomWeightSharing"),
    ):
        with pytest.raises(ConfigError, match=blocker):
            check_graphable(build_method(build_config("cpu", {"method": name}))[0])


@pytest.mark.cuda
@pytest.mark.parametrize("method", ["darts", "sdarts-rs", "rdarts-dp"])
def test_a_captured_weight_step_trains_as_the_eager_one(method: str) -> None:
    """Three steps, then a new epoch (recapture): the same weights as the eager steps, up to the
    nondeterminism of cuDNN's algorithms (both runs seeded alike)."""
    results = []
    for graph in (False, True):
        torch.manual_seed(0)
        state, loaders = _setup(method, "cuda", cuda_graph=graph)
        for epoch in (1, 2):
            state.epoch = epoch
            torch.manual_seed(epoch)
            for step, train in enumerate(loaders.train.epoch(epoch)):
                state.step = step
                weight_step(state, train)
        state.check_finite()
        results.append([p.detach().clone() for p in state.net.parameters()])
        if graph:
            assert state.weight_step_graph.captures == 2
    for p, q in zip(*results, strict=True):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-5)


def test_the_memory_format_is_chosen_per_device_and_recorded(tmp_path: Any, synthetic_nb201: Any) -> None:
    from tiny import tiny_config, tiny_search

    from nasbench_harness.config import resolve_channels_last
    from nasbench_harness.tracking import RunDir

    config = build_config("cpu")
    assert config.model.channels_last is None
    assert resolve_channels_last(config, "cpu") and resolve_channels_last(config, torch.device("cpu"))
    assert not resolve_channels_last(config, "cuda") and not resolve_channels_last(config, "cuda:1")
    forced = build_config("cpu", {"model": {"channels_last": False}})
    assert not resolve_channels_last(forced, "cpu")
    state, loaders = _setup()
    assert next(state.net.parameters()).dim() != 4 or any(
        p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous() for p in state.net.parameters()
    )
    assert next(iter(loaders.train.epoch(1)))[0].is_contiguous(memory_format=torch.channels_last)
    tiny_search(tmp_path, synthetic_nb201, config=tiny_config(epochs=1))
    assert RunDir(tmp_path / "run").read_manifest()["config"]["model"]["channels_last"] is True


def test_graphability_follows_the_class_not_its_name() -> None:
    from nasbench_harness.methods.components.arch_steps import FirstOrderStep
    from nasbench_harness.methods.components.perturbation import Perturbation
    from nasbench_harness.methods.components.regularizers import Regularizer
    from nasbench_harness.methods.engine.base import Method

    class RandomPerturbation(Perturbation):  # a plugin named like the built-in
        def perturb(self, state: Any, weights: torch.Tensor) -> torch.Tensor:
            return weights

    class ArchPenalty(Regularizer):
        def penalty(self, state: Any, weights: torch.Tensor, phase: str) -> torch.Tensor:
            return weights.sum()

    class WeightPenalty(ArchPenalty):
        phases = ("weights",)

    assert graph_blockers(Method("m", FirstOrderStep(), [ArchPenalty()])) == ["ArchPenalty (extra_loss)"]
    assert graph_blockers(Method("m", FirstOrderStep(), [RandomPerturbation()])) == [
        "RandomPerturbation (weight_step_weights)"
    ]
    assert graph_blockers(Method("m", FirstOrderStep(), [WeightPenalty()])) == ["WeightPenalty (a weight-step penalty)"]


def test_a_search_with_cuda_graph_is_refused_until_it_trains_as_the_eager_step(tmp_path: Any) -> None:
    """The captured step diverged from the eager one on an H200 (the cuda test above): a search
    refuses the option before anything is written, rather than train other numbers."""
    from nasbench_harness.methods.engine.run import run_search

    with pytest.raises(ConfigError, match=r"speed\.cuda_graph is refused until fixed"):
        run_search(build_config("cpu", {"speed": {"cuda_graph": True}}), tmp_path / "run", device="cpu")
    assert not (tmp_path / "run").exists()
