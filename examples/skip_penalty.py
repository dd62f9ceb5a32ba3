"""A worked plugin: penalise the mixing weight of parameter-free ops (DARTS's collapse mode).

DARTS drifts towards skip connections on NB201 (the R-DARTS paper's failure mode). This
regularizer adds ``mean over edges of softmax(alpha_e)[op]`` for the ops in ``ops`` to the
arch step's loss, so the alphas of those ops pay for their growth.

Run it like a built-in method component:

    nbh search --space nb201 --method darts --regularizer examples/skip_penalty.py:SkipPenalty \
        --reg-weight 0.5 --reg-param 'ops=["skip_connect"]'

Its test (examples/test_skip_penalty.py) calls the contract kit, then runs it end to end.
"""

from __future__ import annotations

import torch
from pydantic import field_validator

from nasbench_harness.methods.engine.options import Options
from nasbench_harness.plugins import Regularizer
from nasbench_harness.spaces.nb201 import OPS


class SkipPenaltyParams(Options):
    """Which NB201 ops to penalise (names as in the NB201 arch string)."""

    ops: tuple[str, ...] = ("skip_connect",)

    @field_validator("ops")
    @classmethod
    def _known(cls, ops: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(ops) - set(OPS))
        if unknown or not ops:
            raise ValueError(f"ops must be a non-empty list of NB201 ops {OPS}, got unknown {unknown}")
        return ops


class SkipPenalty(Regularizer):
    """mean_e sum_{o in ops} softmax(alpha_e)_o on the arch loss (NB201 only)."""

    name = "skip_penalty"
    Params = SkipPenaltyParams
    phases = ("arch",)
    spaces = ("nb201",)

    def penalty(self, state, weights, phase):  # type: ignore[no-untyped-def]
        columns = [OPS.index(op) for op in self.params.ops]
        probs = torch.softmax(state.alphas, dim=-1)
        return probs[..., columns].sum(dim=-1).mean()
