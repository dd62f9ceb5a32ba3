"""ENAS (Pham et al., ICML 2018) as NAS-Bench-201's authors ran it: an LSTM controller samples the
paths the supernet trains on and is trained by REINFORCE after every epoch; see :func:`enas`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

import torch
from pydantic import Field

from nasbench_harness.errors import ConfigError
from nasbench_harness.methods.components.controller import Controller, ControllerEpoch, train_controller
from nasbench_harness.methods.engine.base import ArchStep, Batch, Method, Phase, SearchState
from nasbench_harness.methods.engine.options import Options, parse_options
from nasbench_harness.methods.zoo.rsws import EpochPaths

Beta = Annotated[float, Field(ge=0, lt=1)]


class ENASOptions(Options):
    """The controller and its training (defaults: the reference's values, except the two sizes of
    controller training, shrunk for the ``cpu`` preset; the paper protocol sets 50 x 20)."""

    controller_train_steps: int = Field(
        20, ge=1, description="Adam steps of the controller per epoch (reference 50: ENAS.sh:45)"
    )
    controller_num_aggregate: int = Field(
        5, ge=1, description="samples per Adam step, each on one search-valid batch (reference 20: ENAS.sh:46)"
    )
    controller_entropy_weight: float = Field(1e-4, ge=0, description="entropy bonus in the reward (ENAS.sh:43)")
    controller_baseline_decay: float = Field(0.99, ge=0, le=1, description="baseline decay (ENAS.sh:44)")
    controller_lr: float = Field(1e-3, gt=0, description="controller Adam learning rate (ENAS.config:12)")
    controller_betas: tuple[Beta, Beta] = Field((0.0, 0.999), description="controller Adam betas (ENAS.config:13)")
    controller_eps: float = Field(1e-3, gt=0, description="controller Adam eps (ENAS.config:14)")
    controller_grad_clip: float | None = Field(
        5.0, gt=0, description="controller gradient-norm clip, None: off (ENAS.py:169)"
    )
    controller_lstm_size: int = Field(32, ge=1, description="LSTM units (search_model_enas_utils.py:17)")
    controller_lstm_layers: int = Field(2, ge=1, description="LSTM layers (search_model_enas_utils.py:18)")
    controller_tanh_constant: float = Field(2.5, gt=0, description="logit bound (search_model_enas_utils.py:19)")
    controller_temperature: float = Field(
        5.0, gt=0, description="divides the logits before the tanh (search_model_enas_utils.py:20)"
    )
    num_samples: int = Field(10, ge=1, description="controller samples ranked after each epoch (ENAS.py:203, 435)")
    final_num_samples: int | None = Field(
        100, ge=1, description="samples ranked after the last epoch (ENAS.sh:47); None: num_samples"
    )
    baseline_update: Literal["epoch", "sample"] = Field(
        "epoch",
        description="epoch: every sample's baseline from the epoch-start one (ENAS.py:145-150); "
        "sample: a moving average over samples (the ENAS paper)",
    )
    score_batch_stats: bool = Field(
        False,
        description="False: score samples with the supernet in eval mode (ENAS.py:123, 206); "
        "True: every BN with the batch's statistics, as the loop's final nets",
    )


def _draw() -> int:
    """One number of torch's global RNG (reseeded by the loop each epoch) to seed a generator."""
    return int(torch.randint(0, 2**62, ()))


class ENAS(ArchStep):
    """No alphas trained; controller-sampled paths in the weight step; REINFORCE after the epoch;
    the best of the controller's samples as the genotype."""

    name = "enas"

    def __init__(self, options: ENASOptions) -> None:
        from nasbench_harness.spaces.nb201 import NUM_EDGES, NUM_OPS

        self.options = o = options
        self.controller = Controller(
            NUM_EDGES,
            NUM_OPS,
            o.controller_lstm_size,
            o.controller_lstm_layers,
            o.controller_tanh_constant,
            o.controller_temperature,
            generator=torch.Generator().manual_seed(0),  # setup() draws the run's own
        )
        self.optimizer = self._adam()
        self.baseline: float | None = None
        """The baseline carried into the next controller training (None before the first)."""
        self.last: ControllerEpoch | None = None
        """The last controller training, sample by sample."""
        self.candidates: list[tuple[Any, float]] = []
        """The last ranking: (genotype, one-shot accuracy %) of every sample, in drawing order."""
        # the controller does not change during the weight pass: all of an epoch's paths are
        # drawn at its first step (one batch of the LSTM, a generator seeded from the global RNG)
        self.paths = EpochPaths(lambda state, n: self._sample_genotypes(n))
        self._trained_for = -1  # the weight pass the controller was last trained after
        self._best: tuple[Any, float] | None = None

    def _adam(self) -> torch.optim.Adam:
        o = self.options
        return torch.optim.Adam(
            self.controller.parameters(), lr=o.controller_lr, betas=o.controller_betas, eps=o.controller_eps
        )

    def check_space(self, space: str) -> str | None:
        if space == "nb201":
            return None
        return (
            "its controller samples one of NB201's 5 ops on each of NB201's 6 edges, as the only reference "
            "does (NB201's ENAS in D-X-Y/AutoDL-Projects); automl/nasbench-1shot1 has no ENAS to follow, "
            "so the harness runs it on nb201 only"
        )

    def setup(self, state: SearchState) -> None:
        """The run's controller: initialised from one draw of the global RNG (seeded by the run's
        seed), a fresh Adam, no baseline (a resumed run then loads its checkpoint)."""
        self.controller.reset_parameters(torch.Generator().manual_seed(_draw()))
        self.optimizer = self._adam()
        self.baseline = None

    def arch_step_on(self, state: SearchState) -> bool:
        return False  # the alphas are never trained: the controller is the architecture

    # -- the weight step -------------------------------------------------------------------
    def mixing(self, state: SearchState, alphas: torch.Tensor, phase: Phase) -> torch.Tensor | None:
        if phase != "weights":
            return None  # evaluation and Hessian see softmax(alpha): the untrained, uniform mixture
        return self.paths.mixing(state, alphas)

    @torch.no_grad()
    def _sample_genotypes(self, n: int) -> list[Any]:
        from nasbench_harness.spaces.nb201 import NB201Genotype

        self.controller.eval()
        sample = self.controller(n, torch.Generator().manual_seed(_draw()))
        return [NB201Genotype.from_ops(ops) for ops in sample.arch.tolist()]

    def forward_options(self, state: SearchState, phase: Phase) -> dict[str, Any]:
        return self.paths.forward_options(state, phase)

    # -- after the weight pass: controller training, then the ranking -------------------------
    def _after_weights(self, state: SearchState) -> None:
        """Train the controller once per weight pass (the loop derives before ``end_of_epoch``,
        and ENAS.py trains the controller before ``get_best_arch``: whichever comes first)."""
        if self._trained_for == self.paths.passes:
            return
        o = self.options
        batches = _valid_batches(state, state.epoch)
        generator = torch.Generator().manual_seed(_draw())
        self.last = train_controller(
            self.controller,
            self.optimizer,
            lambda ops: self._score(state, _genotype(ops), next(batches)) / 100.0,
            steps=o.controller_train_steps,
            aggregate=o.controller_num_aggregate,
            entropy_weight=o.controller_entropy_weight,
            baseline_decay=o.controller_baseline_decay,
            baseline=self.baseline,
            grad_clip=o.controller_grad_clip,
            generator=generator,
            per_sample_baseline=o.baseline_update == "sample",
        )
        self.baseline = self.last.carried
        self._trained_for, self._best = self.paths.passes, None

    def _score(self, state: SearchState, genotype: Any, batch: Batch) -> float:
        """Top-1 accuracy (%) of ``genotype``'s path on one batch, the supernet in eval mode
        (or with batch statistics, ``score_batch_stats``)."""
        weights, mask = state.space.final_net(genotype, state.alphas.device)
        return state.evaluate(weights, mask, batch_stats=self.options.score_batch_stats, batches=[batch])[1]

    def derive(self, state: SearchState) -> Any:
        self._after_weights(state)
        if self._best is None:
            self._best = self._rank(state)
        return self._best[0]

    def _rank(self, state: SearchState) -> tuple[Any, float]:
        o = self.options
        last = state.epochs > 0 and state.epoch >= state.epochs
        n = o.final_num_samples if last and o.final_num_samples else o.num_samples
        batches = _valid_batches(state, state.epochs + state.epoch)  # a pass of its own, as a fresh iterator
        self.candidates = [(g, self._score(state, g, next(batches))) for g in self._sample_genotypes(n)]
        best = max(range(len(self.candidates)), key=lambda i: (self.candidates[i][1], -i))  # ties: first drawn
        return self.candidates[best]

    def end_of_epoch(self, state: SearchState, row: dict[str, Any]) -> None:
        self._after_weights(state)
        self.paths.end_of_epoch()
        return None

    # -- trajectory and checkpoint -----------------------------------------------------------
    def state_columns(self) -> dict[str, float | int | str | None]:
        last = self.last
        return {
            "enas_baseline": self.baseline,
            "enas_reward": _mean(last.reward) if last else None,
            "enas_entropy": _mean(last.entropy) if last else None,
            "enas_best_oneshot_acc": None if self._best is None else self._best[1],
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "controller": self.controller.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "baseline": self.baseline,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.controller.load_state_dict(state["controller"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline = None if state["baseline"] is None else float(state["baseline"])


def _genotype(ops: list[int]) -> Any:
    from nasbench_harness.spaces.nb201 import NB201Genotype

    return NB201Genotype.from_ops(ops)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _valid_batches(state: SearchState, k: int) -> Iterator[Batch]:
    if state.valid_batches is None:
        raise ConfigError(
            "enas trains its controller on search-valid batches, which this search state does not have "
            "(SearchState.valid_batches is unset; the search loop sets it)"
        )
    return state.valid_batches(k)


def enas(options: dict[str, Any]) -> Method:
    """ENAS (Pham, Guan, Zoph, Le & Dean, ICML 2018, "Efficient Neural Architecture Search via
    Parameter Sharing") as NAS-Bench-201 ran it (``D-X-Y/AutoDL-Projects@f46486e``,
    ``exps/NAS-Bench-201-algos/ENAS.py``; the controller in
    ``xautodl/models/cell_searchs/search_model_enas_utils.py``; values from
    ``configs/nas-benchmark/algos/ENAS.config`` and ``scripts-search/NAS-Bench-201-algos/ENAS.sh``).

    Formulas:

    - Controller (:mod:`nasbench_harness.methods.components.controller`): a 2-layer LSTM of 32
      units reads, edge after edge, a learned start vector or the embedding of the previous
      edge's op; op logits ``2.5 * tanh(W h / 5)`` (search_model_enas_utils.py:17-20, 55-57);
      a sample returns the sum of its log-probabilities and of its per-edge entropies
      (lines 59-73); uniform(-0.1, 0.1) initialisation as lines 42-46.
    - Weight step: one controller sample per minibatch, without gradient; the supernet computes
      only that path (one-hot weights and the path's mask), SGD with gradient clipping
      (ENAS.py:55-64; ``optim.grad_clip`` 5). The alphas are never trained.
    - After the epoch's weight pass, ``controller_train_steps`` x ``controller_num_aggregate``
      samples (ENAS.py:128), each scored on the next search-valid batch (augmented, as
      ENAS.py:282-284 gives the valid loader the training transform): ``top1`` = accuracy as a
      fraction (line 143), ``reward = top1 + controller_entropy_weight * entropy`` (line 144,
      the entropy keeping its gradient), baseline ``b = top1`` while none exists, else ``b = B0 -
      (1 - decay) * (B0 - reward)`` (lines 145-150), ``loss = -log_prob * (reward - b) /
      num_aggregate`` (lines 152, 162); every ``num_aggregate`` samples the controller's
      gradient is clipped to norm 5 and Adam (lr 1e-3, betas (0, 0.999), eps 1e-3;
      ENAS.config:12-14, ENAS.py:313-318) steps (lines 168-172).
    - The baseline quirk, reproduced (``baseline_update="epoch"``): ``B0`` is the baseline at the
      start of the epoch for every sample of the epoch (``config.baseline`` is never updated
      inside ``train_controller``), and only the epoch's last value carries to the next epoch
      (ENAS.py:199, 403). In the first epoch every sample's baseline is its own ``top1``, so the
      advantage is the entropy bonus alone; later ``reward - b = decay * (reward - B0)``.
      ``baseline_update="sample"`` chains the moving average from sample to sample instead.
    - Scoring: the supernet in eval mode (ENAS.py:123 in training, 206 in ranking): BN with the
      running statistics where the network keeps them (stem, residual blocks, head; the cells'
      as ``model.bn_track_running_stats`` says, batch statistics by default), no statistics
      moved. ``score_batch_stats=True`` scores with batch statistics, as the loop's final nets.
    - Genotype (``get_best_arch``, ENAS.py:203-228): ``num_samples`` (10) controller samples,
      each scored on one search-valid batch, the first of the best; after the last epoch
      ``final_num_samples`` (100, ENAS.sh:47; ENAS.py:502-504). Cached per epoch.

    Determinism: the controller is initialised in ``setup`` from one draw of torch's global RNG
    (seeded by the run's seed) and its samples come from generators seeded by single draws of
    the global RNG, which the loop reseeds per epoch; the controller, its Adam state and the
    carried baseline are in the checkpoint, so a resumed run continues exactly.

    Where the harness differs from ENAS.py: (1) the learning rate follows the harness's cosine
    over all epochs (ENAS.config:6 sets ``T_max`` 10, so the reference's learning rate
    oscillates with a 20-epoch period; no config key says so); (2) when controller training
    needs more batches than one pass over search-valid, the harness repeats that pass's order
    and augmentation (the reference reshuffles and re-augments); the ranking reads a pass of its
    own (pass ``epochs + epoch``), where the reference starts a freshly shuffled iterator;
    (3) each Adam step's ``num_aggregate`` samples are drawn as one batch of the LSTM and
    backpropagated together (the same gradient as the reference's per-sample calls); the
    weight pass's paths are drawn at its first step; the controller runs on the CPU; (4) the
    last epoch's genotype is the reference's final answer (100 samples): its per-epoch pick of
    10 samples and the full-valid re-evaluation of each epoch's pick (ENAS.py:437, logging and
    "best" bookkeeping only) are not computed. NB-1Shot1: refused, no reference exists.

    Defaults: ``controller_train_steps=20`` and ``controller_num_aggregate=5`` (100 scored
    batches an epoch) keep controller training a fraction of a ``cpu`` epoch; the paper
    protocol (``--preset paper``) sets the reference's 50 and 20 (1,000 batches). ``valid_acc``
    is the supernet under softmax(alpha) with the untrained alphas (the uniform mixture).

    Trajectory columns: ``enas_baseline`` (the baseline carried to the next epoch),
    ``enas_reward`` and ``enas_entropy`` (means over the epoch's controller-training samples),
    ``enas_best_oneshot_acc`` (% of the chosen sample on its batch).
    """
    opts = parse_options(ENASOptions, options, "enas")
    return Method(name="enas", arch_step=ENAS(opts))
