"""REINFORCE on the NB201 table: the NAS-Bench-201 paper's policy-gradient baseline, without weight sharing.

Reference: D-X-Y/AutoDL-Projects@f46486e ``exps/NAS-Bench-201-algos/reinforce.py`` (cited below
as ``reinforce.py:LINE``), run by ``scripts-search/NAS-Bench-201-algos/REINFORCE.sh``
(``REINFORCE.sh:LINE``) and documented in ``docs/NAS-Bench-201.md``.

- Policy: one logit per (edge, op), 6 x 5 on NB201, edges in arch-string order (1<-0, 2<-0, 2<-1,
  3<-0, 3<-1, 3<-2) and ops in the official order (reinforce.py:35-39, 50). The logits start at
  ``1e-3 * N(0, 1)`` (reinforce.py:40-42), drawn from the seed's numpy Generator.
- Action: one op per edge, drawn from the softmax of the edge's logits (reinforce.py:68-70, 92-97).
- Reward: the table's validation accuracy (%) of the sampled cell (reinforce.py:187).
- Baseline: a bias-corrected exponential moving average, ``num <- m num + (1 - m) r``,
  ``den <- m den + (1 - m)``, value ``num / den``, momentum ``m`` = 0.9 (reinforce.py:73-89;
  REINFORCE.sh:35). It is updated with the current reward *before* the advantage
  ``r - baseline`` is computed (reinforce.py:195-197), so the first advantage is always 0.
- Loss: ``-sum_edges log pi(a_e) * (r - baseline)`` (reinforce.py:197), whose gradient with
  respect to edge e's logits is ``-(r - baseline) * (onehot(a_e) - softmax(logits_e))``.
- Optimizer: Adam on the logits with PyTorch's defaults, betas (0.9, 0.999), eps 1e-8, no
  weight decay (reinforce.py:164), one step per evaluation (reinforce.py:198-200). The learning
  rate has no default in the script (reinforce.py:245-247; REINFORCE.sh:18, 35 pass it in); 0.5
  here is the value of the documented command (docs/NAS-Bench-201.md:235).
- Result: the best reward seen in the trace, not the policy's argmax (reinforce.py:212-213);
  here the trace's incumbent (best validation accuracy, first of ties), as in the other baselines.

Deviations from the reference, and why:

- Reward metric: the reference's reward is the 12-epoch schedule's validation accuracy of one
  randomly picked training seed (``hp="12"``, ``is_random=True``; R_EA.py:44-57, imported at
  reinforce.py:27), a noisy reward. Here it is the metric random search and regularized evolution
  use (:func:`~nasbench_harness.tabular.nb201_metrics.resolve_metric`: the 200-epoch x-valid
  accuracy, mean over seeds), so that all three baselines are comparable in this harness.
- Budget: the reference samples until 12,000 s of simulated training time are spent
  (REINFORCE.sh:34; reinforce.py:183-193); here the budget is ``n`` evaluations, as for the other
  baselines. The reference also skips the update after the sample that overruns the budget
  (reinforce.py:190-193); here every evaluation is followed by an update (the result is the same).
- Numerics: float64 numpy with the analytic gradient instead of float32 torch autograd, and the
  numpy Generator instead of torch's RNG: the same distributions, other random streams.
- Repeats: with seed -1 the reference runs 500 searches with random seeds (reinforce.py:273,
  285-292); here one run per seed.
- A cell the table lacks (a partial table) is skipped without an update and counted, as in the
  other baselines; the reference asserts that every cell is present (R_EA.py:50).
- NB-1Shot1 is refused: the paper's REINFORCE is defined on NB201's per-edge op choices only.

This module never imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from nasbench_harness.baselines.tabular import EvaluationLog, TabularTrace, check_options, make_problem
from nasbench_harness.errors import ConfigError
from nasbench_harness.spaces.catalog import get_space_info
from nasbench_harness.spaces.nb201 import NUM_EDGES, NUM_OPS, NB201Genotype
from nasbench_harness.tabular.nb201 import NB201Benchmark

REINFORCE = "reinforce"
LEARNING_RATE = 0.5
"""Adam's learning rate: the documented command's value (docs/NAS-Bench-201.md:235)."""
EMA_MOMENTUM = 0.9
"""Momentum of the reward baseline (REINFORCE.sh:35)."""
INIT_SCALE = 1e-3
"""Standard deviation of the initial logits (reinforce.py:40-42)."""
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
"""torch.optim.Adam's defaults, which reinforce.py:164 keeps."""


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities of each row of ``logits`` (one row per edge)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def policy_entropy(logits: np.ndarray) -> float:
    """Sum over edges of the entropy of the edge's op distribution, in nats (6 ln 5 = 9.66 when uniform)."""
    log_p = log_softmax(logits)
    return float(-(np.exp(log_p) * log_p).sum())


def sample_actions(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One op index per edge, drawn from the edge's softmax (inverse CDF of one uniform per edge)."""
    cdf = np.cumsum(np.exp(log_softmax(logits)), axis=-1)
    u = rng.random(logits.shape[0])
    return np.minimum((cdf < u[:, None]).sum(axis=-1), logits.shape[1] - 1)


def log_prob_gradient(logits: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Gradient of ``sum_e log pi(actions[e])`` with respect to ``logits``: ``onehot - softmax`` per edge."""
    grad = -np.exp(log_softmax(logits))
    grad[np.arange(logits.shape[0]), actions] += 1.0
    return grad


class ExponentialMovingAverage:
    """The bias-corrected moving average of the rewards (reinforce.py:73-89)."""

    def __init__(self, momentum: float) -> None:
        self.momentum = momentum
        self.numerator = 0.0
        self.denominator = 0.0

    def update(self, value: float) -> None:
        """Fold ``value`` in: both sums decay by the momentum and gain (1 - momentum) weight."""
        self.numerator = self.momentum * self.numerator + (1.0 - self.momentum) * value
        self.denominator = self.momentum * self.denominator + (1.0 - self.momentum)

    def value(self) -> float:
        """The average so far (numerator / denominator; undefined before the first update)."""
        return self.numerator / self.denominator


class Adam:
    """Adam without weight decay, in the arithmetic of ``torch.optim.Adam`` (single tensor,
    amsgrad off): ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``."""

    def __init__(self, learning_rate: float, betas: tuple[float, float] = ADAM_BETAS, eps: float = ADAM_EPS) -> None:
        self.learning_rate, self.betas, self.eps = learning_rate, betas, eps
        self.t = 0
        self.m: np.ndarray | float = 0.0
        self.v: np.ndarray | float = 0.0

    def step(self, param: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """The parameters after one step down ``grad`` (a new array; ``param`` is left as it is)."""
        b1, b2 = self.betas
        self.t += 1
        self.m = b1 * self.m + (1.0 - b1) * grad
        self.v = b2 * self.v + (1.0 - b2) * grad * grad
        step_size = self.learning_rate / (1.0 - b1**self.t)
        denom = np.sqrt(self.v) / math.sqrt(1.0 - b2**self.t) + self.eps
        return param - step_size * self.m / denom


class Policy:
    """The per-edge categorical policy, its reward baseline and its optimizer."""

    def __init__(
        self,
        rng: np.random.Generator,
        learning_rate: float = LEARNING_RATE,
        ema_momentum: float = EMA_MOMENTUM,
        shape: tuple[int, int] = (NUM_EDGES, NUM_OPS),
    ) -> None:
        self.logits = INIT_SCALE * rng.standard_normal(shape)
        self.baseline = ExponentialMovingAverage(ema_momentum)
        self.optimizer = Adam(learning_rate)

    def probabilities(self) -> np.ndarray:
        """The op probabilities of each edge (rows sum to 1)."""
        return np.exp(log_softmax(self.logits))

    def update(self, actions: np.ndarray, reward: float) -> float:
        """One REINFORCE step for the sampled ``actions`` and their ``reward`` (%); returns the advantage.

        The baseline takes the reward first, then the advantage is measured against it
        (reinforce.py:195-197).
        """
        self.baseline.update(reward)
        advantage = reward - self.baseline.value()
        loss_grad = -advantage * log_prob_gradient(self.logits, actions)
        self.logits = self.optimizer.step(self.logits, loss_grad)
        return advantage


def reinforce(
    bench: NB201Benchmark,
    space: str,
    dataset: str,
    n: int,
    seed: int,
    learning_rate: float = LEARNING_RATE,
    ema_momentum: float = EMA_MOMENTUM,
) -> TabularTrace:
    """REINFORCE with ``n`` evaluations on the NB201 table (numpy Generator seeded by ``seed``).

    Each step samples a cell from the policy, reads its validation accuracy (%) from the table
    and updates the policy. Rows as for the other baselines (``parent`` is None), plus
    ``policy_entropy``: the entropy (nats) of the policy the row's cell was drawn from.
    """
    check_options(n, seed)
    check_reinforce_options(space, learning_rate, ema_momentum)
    problem = make_problem(bench, space, dataset)
    rng = np.random.default_rng(seed)
    policy = Policy(rng, learning_rate, ema_momentum)
    log = EvaluationLog(problem, n)
    entropies: list[float] = []
    while not log.done:
        actions = sample_actions(policy.logits, rng)
        entropy = policy_entropy(policy.logits)
        reward = log.offer(NB201Genotype(tuple(int(a) for a in actions)))
        if reward is not None:
            entropies.append(entropy)
            policy.update(actions, reward)
    rows = [row | {"policy_entropy": h} for row, h in zip(log.rows(), entropies, strict=True)]
    options = {"learning_rate": float(learning_rate), "ema_momentum": float(ema_momentum)}
    return TabularTrace(REINFORCE, problem.space, problem.dataset, seed, rows, options=options)


def check_reinforce_options(space: str, learning_rate: float, ema_momentum: float) -> None:
    """REINFORCE's options, checked before any table is read: a :class:`ConfigError` naming the
    first bad one and what it may be."""
    info = get_space_info(space)
    if info.family != "nb201":
        raise ConfigError(
            f"reinforce runs on the nb201 space only (its policy picks one op per NB201 edge), not {space}; "
            "on the NB-1Shot1 spaces use random-search or regularized-evolution"
        )
    _check_number("learning_rate", learning_rate, lambda x: x > 0, "a finite number > 0")
    _check_number("ema_momentum", ema_momentum, lambda x: 0 <= x < 1, "a number in [0, 1)")


def _check_number(name: str, value: object, ok: Callable[[float], bool], allowed: str) -> None:
    number = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or not ok(float(value)):  # type: ignore[arg-type]
        raise ConfigError(f"{name} must be {allowed}, got {value!r}")
