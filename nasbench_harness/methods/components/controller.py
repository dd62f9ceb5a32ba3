"""ENAS's architecture controller: an LSTM that samples one op per edge, and its REINFORCE update.

The controller follows NB201's ENAS (``D-X-Y/AutoDL-Projects@f46486e``,
``xautodl/models/cell_searchs/search_model_enas_utils.py``, class ``Controller``):

- a ``layers``-layer LSTM of ``lstm_size`` units (2 and 32, lines 17-18), an embedding of the
  ops and a linear predictor of the op logits;
- edge by edge, the LSTM reads a learned start vector (first edge) or the embedding of the op it
  sampled on the previous edge, and the op of the edge is drawn from
  ``softmax(tanh_constant * tanh(w_pred(h) / temperature))`` (2.5 and 5.0; the division comes
  before the tanh, lines 55-57);
- it returns the sum over edges of the sampled ops' log-probabilities, the sum of the per-edge
  entropies of those distributions, and the sampled op indices (lines 59-73);
- initialisation (lines 42-46): uniform(-0.1, 0.1) for the start vector, the first layer's LSTM
  weights, the embedding and the predictor's weight; every other parameter keeps PyTorch's
  default (uniform(-1/sqrt(lstm_size), +1/sqrt(lstm_size)) for the LSTM's, the predictor's bias
  as ``nn.Linear``'s), reproduced here from an explicit generator.

Here one call samples ``n`` architectures as a batch of the LSTM (the reference calls the
controller once per architecture): each row of the batch is an independent draw from the same
distribution, and the gradient of a sum over rows is the sum of the rows' gradients, so
``n = num_aggregate`` rows backpropagated at once give the gradient the reference accumulates
over ``num_aggregate`` calls. Draws use the ``generator`` given (``torch.multinomial``), so a
run that seeds it from (seed, epoch) samples the same architectures after a resume.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ControllerSample:
    """``n`` sampled architectures: per row the summed log-probability and entropy (nats, with
    gradients when sampled in grad mode) and the op index per edge, (n, edges), on the CPU."""

    log_prob: torch.Tensor
    entropy: torch.Tensor
    arch: torch.Tensor


class Controller(nn.Module):
    """The LSTM controller of NB201's ENAS over ``num_edges`` edges of ``num_ops`` ops each."""

    def __init__(
        self,
        num_edges: int,
        num_ops: int,
        lstm_size: int = 32,
        layers: int = 2,
        tanh_constant: float = 2.5,
        temperature: float = 5.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.num_edges, self.num_ops = num_edges, num_ops
        self.tanh_constant, self.temperature = tanh_constant, temperature
        self.input_vars = nn.Parameter(torch.empty(1, 1, lstm_size))
        self.w_lstm = nn.LSTM(input_size=lstm_size, hidden_size=lstm_size, num_layers=layers)
        self.w_embd = nn.Embedding(num_ops, lstm_size)
        self.w_pred = nn.Linear(lstm_size, num_ops)
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """The reference's initialisation (see the module doc), drawn from ``generator``."""
        bound = 1.0 / math.sqrt(self.w_lstm.hidden_size)  # nn.LSTM's and nn.Linear's default bound here
        for name, param in self.w_lstm.named_parameters():
            nn.init.uniform_(param, -bound, bound, generator=generator)
            if name in ("weight_ih_l0", "weight_hh_l0"):
                nn.init.uniform_(param, -0.1, 0.1, generator=generator)
        for param in (self.input_vars, self.w_embd.weight, self.w_pred.weight):
            nn.init.uniform_(param, -0.1, 0.1, generator=generator)
        nn.init.uniform_(self.w_pred.bias, -bound, bound, generator=generator)

    def edge_logits(self, output: torch.Tensor) -> torch.Tensor:
        """The op logits from the LSTM's output: ``tanh_constant * tanh(w_pred(h) / temperature)``."""
        return self.tanh_constant * torch.tanh(self.w_pred(output) / self.temperature)

    def forward(self, n: int = 1, generator: torch.Generator | None = None) -> ControllerSample:
        """``n`` architectures drawn from the controller (see :class:`ControllerSample`)."""
        inputs = self.input_vars.expand(1, n, -1)
        hidden: tuple[torch.Tensor, torch.Tensor] | None = None
        log_probs, entropies, ops = [], [], []
        for _ in range(self.num_edges):
            output, hidden = self.w_lstm(inputs, hidden)
            log_p = F.log_softmax(self.edge_logits(output[0]), dim=-1)  # (n, num_ops)
            op = torch.multinomial(log_p.detach().exp(), 1, generator=generator)  # (n, 1)
            log_probs.append(log_p.gather(1, op)[:, 0])
            entropies.append(-(log_p.exp() * log_p).sum(-1))
            ops.append(op[:, 0])
            inputs = self.w_embd(op.T)  # (1, n, lstm_size): the sampled op feeds the next edge
        return ControllerSample(torch.stack(log_probs, 1).sum(1), torch.stack(entropies, 1).sum(1), torch.stack(ops, 1))


def enas_baselines(
    reward: Sequence[float] | torch.Tensor,
    top1: Sequence[float],
    start: float | None,
    decay: float,
    per_sample: bool = False,
) -> tuple[list[torch.Tensor | float], float | None]:
    """The baselines of consecutive samples with ``reward`` (tensors keep their gradient) and
    ``top1`` (the accuracy part of the reward, a fraction), and the baseline carried on.

    As NB201's ENAS (``exps/NAS-Bench-201-algos/ENAS.py:145-150``): with no baseline yet
    (``start`` None) a sample's baseline is its own ``top1``; else ``start - (1 - decay) *
    (start - reward)``. ``per_sample=False`` is the reference: ``start`` is the baseline at the
    start of the epoch for every sample of the epoch (``config.baseline`` is not updated inside
    ``train_controller``), and only the epoch's last value is carried to the next epoch
    (``ENAS.py:199``, ``403``). ``per_sample=True`` is the moving average the ENAS paper
    describes: each sample starts from the previous sample's baseline. The carried value is the
    last sample's baseline, or ``start`` when there are no samples.
    """
    out: list[torch.Tensor | float] = []
    carried = start
    for r, acc in zip(reward, top1, strict=True):
        base = start if not per_sample else carried
        value: torch.Tensor | float = acc if base is None else base - (1.0 - decay) * (base - r)
        out.append(value)
        carried = _value(value)
    return out, carried


def _value(x: torch.Tensor | float) -> float:
    return float(x.detach()) if isinstance(x, torch.Tensor) else float(x)


@dataclass
class ControllerEpoch:
    """What one round of controller training saw, sample by sample, and the baseline it carries."""

    top1: list[float] = field(default_factory=list)
    reward: list[float] = field(default_factory=list)
    entropy: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    carried: float | None = None


def train_controller(
    controller: Controller,
    optimizer: torch.optim.Optimizer,
    score: Callable[[list[int]], float],
    *,
    steps: int,
    aggregate: int,
    entropy_weight: float,
    baseline_decay: float,
    baseline: float | None,
    grad_clip: float | None,
    generator: torch.Generator | None = None,
    per_sample_baseline: bool = False,
) -> ControllerEpoch:
    """``steps`` REINFORCE updates of ``controller``, each from ``aggregate`` samples, as NB201's
    ENAS trains its controller after every epoch (``exps/NAS-Bench-201-algos/ENAS.py:91-200``).

    Per sample: ``top1 = score(ops)`` (accuracy as a fraction), ``reward = top1 + entropy_weight
    * entropy`` (lines 143-144; the entropy keeps its gradient, as there), the baseline from
    :func:`enas_baselines`, ``loss = -log_prob * (reward - baseline) / aggregate`` (lines 152,
    162); after every ``aggregate`` samples the gradients are clipped to norm ``grad_clip``
    (line 169) and the optimiser steps (lines 168-172).
    """
    record = ControllerEpoch(carried=baseline)
    controller.train()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        sample = controller(aggregate, generator)
        top1 = [float(score(ops)) for ops in sample.arch.tolist()]
        reward = torch.tensor(top1) + entropy_weight * sample.entropy
        start = record.carried if per_sample_baseline else baseline
        baselines, record.carried = enas_baselines(reward, top1, start, baseline_decay, per_sample_baseline)
        advantage = reward - torch.stack([torch.as_tensor(b, dtype=reward.dtype) for b in baselines])
        loss = -(sample.log_prob * advantage).sum() / aggregate
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(controller.parameters(), grad_clip)
        optimizer.step()
        record.top1 += top1
        record.reward += reward.detach().tolist()
        record.entropy += sample.entropy.detach().tolist()
        record.baseline += [_value(b) for b in baselines]
    optimizer.zero_grad(set_to_none=True)
    return record
