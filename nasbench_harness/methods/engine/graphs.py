"""The weight step replayed from a CUDA graph (``speed.cuda_graph``): one launch per step
instead of a few thousand.

A graph replays the kernels it recorded with the values it recorded: the learning rate, the
weight decay, a drop-path probability or a perturbation radius are baked in, and a component
that decides something on the host per step (a sampled path, a per-step temperature, a count
kept in a Python attribute) would be replayed with its first decision. So:

- only methods whose weight step is the same computation at every step of an epoch are
  accepted (:func:`check_graphable`: components that do not touch the weight step, and those
  whose weight-step hooks change once per epoch and compute on the device);
- the graph is recaptured whenever what it baked in changes: at every epoch (the learning rate
  follows the cosine schedule) and whenever the optimiser's settings or the batch shape change
  (``speed.cuda_graph`` drops the ragged last batch, so an epoch has one shape);
- capturing needs warm-up steps on a side stream; they run on the step's own batch and are then
  undone (weights, buffers and optimiser state restored), so the run trains exactly the steps it
  would train without a graph. The first replay then performs the step itself.

The finiteness of the loss is watched outside the graph, on its static output, as the eager
step does (:meth:`~nasbench_harness.methods.engine.base.SearchState.watch`).
"""

from __future__ import annotations

from typing import Any

import torch

from nasbench_harness.errors import ConfigError
from nasbench_harness.methods.engine.base import Batch, Component, Method, SearchState

WEIGHT_STEP_HOOKS = ("mixing", "weight_step_weights", "forward_options", "extra_loss")
"""The hooks a component may use to change the weight step."""
PER_EPOCH_ON_DEVICE = {
    "RandomPerturbation": "SDARTS-RS: uniform noise drawn on the device, radius fixed within an epoch",
    "ScheduledDropPath": "R-DARTS(DP): Bernoulli masks drawn on the device, probability fixed within an epoch",
    "AuxiliarySkip": "DARTS-: beta fixed within an epoch",
    "SigmoidMixing": "FairDARTS: sigmoid of the alphas, no host state",
    "BetaDecay": "beta-DARTS: an arch-step penalty only",
    "ZeroOneLoss": "FairDARTS: an arch-step penalty only",
    "Entropy": "an arch-step penalty only",
}
"""Built-in components (matched by class, :func:`_per_epoch_classes`, not by name) that override a
weight-step hook and are still the same computation at every step of an epoch (the reason for each)."""
WARMUP_STEPS = 3


def graph_blockers(method: Method) -> list[str]:
    """The components of ``method`` that would make a captured weight step wrong, with the hook."""
    from nasbench_harness.methods.components.regularizers import Regularizer

    safe = _per_epoch_classes()
    blockers = []
    for component in method.all_components:
        hooks = [h for h in WEIGHT_STEP_HOOKS if getattr(type(component), h) is not getattr(Component, h)]
        if isinstance(component, Regularizer) and "weights" in component.phases:
            blockers.append(f"{type(component).__name__} (a weight-step penalty)")
        elif hooks and type(component) not in safe:
            blockers.append(f"{type(component).__name__} ({', '.join(hooks)})")
    return blockers


def _per_epoch_classes() -> set[type]:
    """The classes named in :data:`PER_EPOCH_ON_DEVICE` (a plugin of the same name is not one of them)."""
    from nasbench_harness.methods.components.mixing import AuxiliarySkip, SigmoidMixing
    from nasbench_harness.methods.components.perturbation import RandomPerturbation
    from nasbench_harness.methods.components.regularizers import BetaDecay, Entropy, ZeroOneLoss
    from nasbench_harness.methods.components.training import ScheduledDropPath

    classes = {RandomPerturbation, ScheduledDropPath, AuxiliarySkip, SigmoidMixing, BetaDecay, ZeroOneLoss, Entropy}
    assert {c.__name__ for c in classes} == set(PER_EPOCH_ON_DEVICE)
    return classes


def check_graphable(method: Method) -> None:
    """A :class:`ConfigError` naming the components that stop ``method``'s weight step from being
    captured (their weight step changes from step to step, or is decided on the host)."""
    blockers = graph_blockers(method)
    if blockers:
        raise ConfigError(
            f"speed.cuda_graph cannot capture {method.name}'s weight step: {'; '.join(blockers)} "
            "change it from step to step or decide it on the host; turn speed.cuda_graph off for this method"
        )


class GraphedWeightStep:
    """``weight_step`` captured in a CUDA graph, recaptured when what it baked in changes."""

    def __init__(self) -> None:
        self.graph: Any = None
        self.key: tuple[Any, ...] | None = None
        self.inputs: tuple[torch.Tensor, torch.Tensor] | None = None
        self.outputs: tuple[torch.Tensor, torch.Tensor] | None = None
        self.captures = 0

    def invalidate(self) -> None:
        """Recapture at the next step (the optimiser's state was replaced: a restore, a rollback)."""
        self.key = None

    def _key(self, state: SearchState, batch: Batch) -> tuple[Any, ...]:
        groups = tuple(
            tuple(sorted((k, v) for k, v in g.items() if isinstance(v, int | float | bool)))
            for g in state.w_optim.param_groups
        )
        return (state.epoch, groups, tuple(batch[0].shape), batch[0].dtype, tuple(batch[1].shape))

    def __call__(self, state: SearchState, batch: Batch, eager: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """One weight step on ``batch``; ``eager(state, batch)`` is the uncaptured step (warm-up, capture)."""
        key = self._key(state, batch)
        if key != self.key:
            self._capture(state, batch, eager)
            self.key = key
        assert self.inputs is not None and self.outputs is not None
        self.inputs[0].copy_(batch[0])
        self.inputs[1].copy_(batch[1])
        self.graph.replay()
        return self.outputs[0].clone(), self.outputs[1].clone()

    def _capture(self, state: SearchState, batch: Batch, eager: Any) -> None:
        saved = _snapshot(state)
        x = batch[0].clone(memory_format=torch.preserve_format)
        y = batch[1].clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):  # cuDNN autotuning, optimiser buffers, allocator pools
                eager(state, (x, y), watch=False)
        torch.cuda.current_stream().wait_stream(side)
        _restore(state, saved)
        state.w_optim.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            loss, logits = eager(state, (x, y), watch=False)
        # Capturing records kernels without running them: the weights are still the restored ones.
        self.graph, self.inputs, self.outputs = graph, (x, y), (loss, logits)
        self.captures += 1


def _snapshot(state: SearchState) -> dict[str, Any]:
    with torch.no_grad():
        return {
            "net": {k: v.detach().clone() for k, v in state.net.state_dict().items()},
            "optim": {
                id(p): {k: v.detach().clone() for k, v in per_param.items() if isinstance(v, torch.Tensor)}
                for p, per_param in state.w_optim.state.items()
            },
        }


def _restore(state: SearchState, saved: dict[str, Any]) -> None:
    """Back to ``saved``, in place (the captured graph keeps reading and writing the same buffers).

    An optimiser buffer the warm-up created (SGD's momentum at the run's first step) is zeroed: a
    zero momentum buffer gives the same first step as none (``buf = momentum * 0 + grad``)."""
    with torch.no_grad():
        for k, v in state.net.state_dict().items():
            v.copy_(saved["net"][k])
        for p, per_param in state.w_optim.state.items():
            kept = saved["optim"].get(id(p), {})
            for name, value in per_param.items():
                if isinstance(value, torch.Tensor):
                    value.copy_(kept[name]) if name in kept else value.zero_()
