"""The single-stage searching protocol (Subbotko, Jablonski & Bilinski, 2024): hard samples, then a
frozen architecture whose path keeps training, so the final net is the supernet, never decoded from
continuous weights nor retrained; see :func:`single_stage`."""

from __future__ import annotations

import math
from typing import Any

import torch
from pydantic import Field, model_validator

from nasbench_harness.errors import ConfigError
from nasbench_harness.methods.components.arch_steps import FirstOrderStep
from nasbench_harness.methods.components.regularizers import group_entropy
from nasbench_harness.methods.engine.base import Method, Phase, SearchState
from nasbench_harness.methods.engine.options import Options, parse_options


class SingleStageOptions(Options):
    """Hard-sample search, then a frozen architecture whose path keeps training."""

    tau_max: float = Field(10.0, gt=0, description="Gumbel-softmax temperature in epoch 1")
    tau_min: float = Field(0.1, gt=0, description="Gumbel-softmax temperature in the freeze epoch")
    entropy_weight: float = Field(0.0, ge=0, description="lambda of the entropy penalty on the arch loss")
    freeze_epoch: int | None = Field(None, ge=1, description="last epoch that trains the alphas (None: ceil(epochs/2))")

    @model_validator(mode="after")
    def _ordered(self) -> SingleStageOptions:
        if self.tau_min > self.tau_max:
            raise ValueError(f"tau_min ({self.tau_min}) must be <= tau_max ({self.tau_max})")
        return self


class SingleStage(FirstOrderStep):
    """First-order DARTS until the freeze epoch, then no arch step; mixing, forward options,
    penalty and derivation of :func:`single_stage`."""

    name = "single-stage"

    def __init__(self, options: SingleStageOptions) -> None:
        self.options = options
        self.frozen_epoch: int | None = None
        self._frozen: tuple[Any, torch.Tensor, Any] | None = None  # genotype, one-hot weights, mask
        self._sample: tuple[tuple[int, int], Any] | None = None  # (epoch, step), mask of the weight step
        self._columns: dict[str, float | int | str | None] = {}
        self._space: Any = None
        self._device = torch.device("cpu")
        self._freeze_at = 1

    @property
    def frozen(self) -> bool:
        """True once the architecture is frozen."""
        return self._frozen is not None

    def setup(self, state: SearchState) -> None:
        self._space, self._device = state.space, state.alphas.device
        wanted = self.options.freeze_epoch
        if wanted is not None and wanted > state.epochs:
            raise ConfigError(
                f"single-stage: freeze_epoch={wanted} is after the last epoch ({state.epochs}); "
                f"choose 1..{state.epochs}, or leave it unset for ceil(epochs / 2)"
            )
        self._freeze_at = wanted if wanted is not None else max(1, math.ceil(state.epochs / 2))

    def tau(self, epoch: int) -> float:
        """Gumbel temperature of ``epoch``: linear from tau_max (epoch 1) to tau_min (freeze epoch)."""
        o = self.options
        progress = min(1.0, (epoch - 1) / (self._freeze_at - 1)) if self._freeze_at > 1 else 0.0
        return o.tau_max - (o.tau_max - o.tau_min) * progress

    def arch_step_on(self, state: SearchState) -> bool:
        return not self.frozen  # once frozen, nothing to learn and nothing to compute

    def mixing(self, state: SearchState, alphas: torch.Tensor, phase: Phase) -> torch.Tensor | None:
        if self._frozen is not None:
            weights = self._frozen[1]
            # keeps the graph to the alphas (zero gradient) for the Hessian eigenvalue
            return weights + 0.0 * alphas if phase == "arch" and alphas.requires_grad else weights
        if phase == "eval":
            return None  # the supernet as DARTS evaluates it: softmax(alpha)
        noise = -torch.empty_like(alphas).exponential_().log()  # Gumbel(0, 1), torch's global RNG
        genotype = state.space.derive(alphas.detach() + noise, state.method.include_none)
        hard, mask = state.space.final_net(genotype, alphas.device)
        hard = hard.to(alphas.dtype).reshape(alphas.shape)
        if phase == "weights":
            self._sample = ((state.epoch, state.step), mask)
            return hard
        soft = state.space.softmax((alphas + noise) / self.tau(state.epoch))
        return hard - soft.detach() + soft  # straight-through: forward hard, gradient of soft

    def forward_options(self, state: SearchState, phase: Phase) -> dict[str, Any]:
        if self._frozen is not None and phase in ("weights", "eval"):
            return {"mask": self._frozen[2]}
        if self._frozen is None and phase == "weights" and self._sample is not None:
            key, mask = self._sample
            if key == (state.epoch, state.step):
                return {"mask": mask}
        return {}

    def extra_loss(self, state: SearchState, phase: Phase, weights: torch.Tensor) -> torch.Tensor | None:
        if phase != "arch" or self.frozen or self.options.entropy_weight == 0:
            return None
        return self.options.entropy_weight * group_entropy(state.alphas, state.space.group_sizes)

    def end_of_epoch(self, state: SearchState, row: dict[str, Any]) -> None:
        if not self.frozen and state.epoch >= self._freeze_at:
            self._freeze(state.derive(), state.epoch)
        with torch.no_grad():
            entropy = float(group_entropy(state.alphas, state.space.group_sizes))
        self._columns = {
            "single_stage_frozen": self.frozen,
            "single_stage_tau": self.tau(min(state.epoch, self._freeze_at)),
            "single_stage_entropy": entropy,
        }
        self._sample = None
        return None

    def _freeze(self, genotype: Any, epoch: int) -> None:
        weights, mask = self._space.final_net(genotype, self._device)
        self._frozen, self.frozen_epoch = (genotype, weights, mask), epoch

    def derive(self, state: SearchState) -> Any:
        return self._frozen[0] if self._frozen is not None else None

    def final_net_batch_stats(self, state: SearchState) -> bool | None:
        """False once frozen: the final net is trained, its BN running statistics are its own."""
        return False if self.frozen else None

    def state_columns(self) -> dict[str, float | int | str | None]:
        return dict(self._columns)

    def state_dict(self) -> dict[str, Any]:
        if self._frozen is None:
            return {"frozen_weights": None, "frozen_epoch": None}
        return {"frozen_weights": self._frozen[1].detach().cpu().clone(), "frozen_epoch": self.frozen_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        weights = state.get("frozen_weights")
        if weights is None:
            self._frozen = self.frozen_epoch = None
            return
        # one-hot weights derive back to exactly their genotype (every op may win, `none` included)
        self._freeze(self._space.derive(weights, True), int(state["frozen_epoch"]))


def single_stage(options: dict[str, Any]) -> Method:
    """Single-stage search (Subbotko, Jablonski & Bilinski, 2024, "The devil is in discretization
    discrepancy. Robustifying Differentiable NAS with Single-Stage Searching Protocol",
    arXiv:2405.16610): no decoding of continuous weights and no retraining; the architecture is
    frozen during the search and its path keeps training, so the supernet becomes the final net.

    Before the freeze: every forward uses a hard sample. The weight step trains the sampled path
    (one-hot weights and the path's mask); the arch step is a first-order DARTS step on the
    straight-through Gumbel-softmax ``hard - sg(soft) + soft``, ``soft = softmax((alpha + g) / tau)``,
    ``hard`` = the genotype the space derives from ``alpha + g`` (NB201: Gumbel-max per edge;
    NB-1Shot1: Gumbel-top-k per group, i.e. k parents drawn without replacement), with an optional
    penalty ``entropy_weight * sum_groups H(softmax(alpha_g))`` on the arch loss. tau falls
    linearly from ``tau_max`` (epoch 1) to ``tau_min`` (freeze epoch). The derived genotype is the
    argmax; the supernet evaluation uses softmax(alpha).

    At the end of epoch ``freeze_epoch`` the argmax genotype is frozen (checkpointed): from then on
    the arch step does nothing, every phase mixes with its one-hot weights and the weight step runs
    its path only (``mask``). The supernet evaluation (``valid_acc``) is then the final net with its
    own trained weights in eval mode, and so is ``final_valid_acc``: the final net is what was
    trained, so its BN running statistics are its own (``final_net_batch_stats``) and the gap is 0.

    What the paper specifies: only its abstract was reachable (arXiv 2405.16610v1; see
    ``docs/protocol-sources/single-stage.md``). It confirms the protocol's idea (no decoding, the
    trained weights kept, no retraining) and that penalising high architecture entropy hinders the
    supernet; it searches a DCNAS-derived segmentation space on Cityscapes, not NB201 or
    NB-1Shot1, and its dataset-split procedure is not described there. Everything else is this
    harness's construction: the hard Gumbel samples with a first-order straight-through step,
    tau 10 -> 0.1 (GDAS's NB201 setting, Dong & Yang, 2019), the freeze at half of the run (the
    budget split between search and training the final net), the LR schedule running on after the
    freeze, the entropy penalty summed over groups on the arch loss, off by default.

    Trajectory columns: ``single_stage_frozen`` (the architecture is frozen after this epoch),
    ``single_stage_tau`` (Gumbel temperature of the epoch; tau_min once frozen) and
    ``single_stage_entropy`` (sum over groups of H(softmax(alpha)), nats, the penalty's H).
    """
    opts = parse_options(SingleStageOptions, options, "single-stage")
    return Method(name="single-stage", arch_step=SingleStage(opts))
