"""Random search with weight sharing (RSWS): train the supernet on uniformly sampled paths, then
pick the best of random architectures by their accuracy with the shared weights."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from pydantic import Field

from nasbench_harness.errors import ConfigError
from nasbench_harness.methods.engine.base import ArchStep, Batch, Method, Phase, SearchState
from nasbench_harness.methods.engine.options import Options, parse_options


class RSWSOptions(Options):
    """How many random architectures are ranked each epoch, and on how many validation images."""

    n_candidates: int = Field(20, ge=1, description="random architectures ranked at the end of every epoch")
    eval_images: int | None = Field(256, ge=1, description="validation images per candidate (None: all)")


def uniform_genotype(state: SearchState, generator: torch.Generator | None = None) -> Any:
    """A genotype drawn uniformly from the space (torch's global RNG unless ``generator``).

    The space's own rule applied to i.i.d. uniform scores: NB201 takes each edge's argmax (a
    uniform op, ``none`` included when the method allows it), NB-1Shot1 each group's top k (a
    uniform op per block and a uniform k-subset of parents per node), so every configuration is
    equally likely.
    """
    scores = torch.rand(state.alphas.shape, generator=generator)
    return state.space.derive(scores, state.method.include_none)


def uniform_genotypes(state: SearchState, n: int) -> list[Any]:
    """``n`` genotypes of :func:`uniform_genotype`, from torch's global RNG."""
    return [uniform_genotype(state) for _ in range(n)]


class EpochPaths:
    """The weight step's paths, one cell per step (its one-hot weights and its path's mask), for
    methods that train sampled cells: rsws and SETN (uniform cells), ENAS (the controller's).

    All of an epoch's cells are drawn at its first step by ``draw(state, n)``, in the order the
    steps would draw them, and their weights uploaded in one copy, so a step neither waits for
    the host nor copies to the device. ``passes`` counts the epochs whose cells were drawn."""

    def __init__(self, draw: Callable[[SearchState, int], list[Any]]) -> None:
        self.draw = draw
        self.passes = 0
        self._paths: tuple[int, torch.Tensor, list[Any]] | None = None  # epoch, weights (steps, ...), masks
        self._sample: tuple[tuple[int, int], Any] | None = None  # (epoch, step), mask of the weight step

    def mixing(self, state: SearchState, alphas: torch.Tensor) -> torch.Tensor:
        """The one-hot weights of this step's cell; its mask is the step's forward option."""
        weights, mask = self._path(state, alphas)
        self._sample = ((state.epoch, state.step), mask)
        return weights

    def _path(self, state: SearchState, alphas: torch.Tensor) -> tuple[torch.Tensor, Any]:
        if state.step == 0 or self._paths is None or self._paths[0] != state.epoch:
            self.passes += 1
            self._paths = (state.epoch, *self._upload(state, alphas, max(state.steps, 1)))
        epoch, weights, masks = self._paths
        if state.step >= len(masks):  # a caller that did not say how many steps the epoch has
            more, more_masks = self._upload(state, alphas, state.step + 1 - len(masks))
            self._paths = epoch, weights, masks = (epoch, torch.cat([weights, more]), masks + more_masks)
        return weights[state.step], masks[state.step]

    def _upload(self, state: SearchState, alphas: torch.Tensor, n: int) -> tuple[torch.Tensor, list[Any]]:
        """``n`` drawn cells: their one-hot weights stacked (one copy to ``alphas``'s device) and masks."""
        drawn = [state.space.final_net(g, torch.device("cpu")) for g in self.draw(state, n)]
        weights = torch.stack([w.to(alphas.dtype).reshape(alphas.shape) for w, _ in drawn])
        return weights.to(alphas.device), [mask for _, mask in drawn]

    def forward_options(self, state: SearchState, phase: Phase) -> dict[str, Any]:
        """The mask of this step's cell in the weight step."""
        if phase == "weights" and self._sample is not None and self._sample[0] == (state.epoch, state.step):
            return {"mask": self._sample[1]}
        return {}

    def end_of_epoch(self) -> None:
        self._sample = None


def oneshot_accuracy(state: SearchState, genotype: Any, batches: Iterable[Batch]) -> float:
    """Accuracy (%) of ``genotype``'s final net with the supernet's shared weights on ``batches``,
    as the loop evaluates final nets (:meth:`SearchState.evaluate_genotype`: only the path is
    computed, every BN uses the batch's statistics without moving them)."""
    return state.evaluate_genotype(genotype, batches)


class RandomWeightSharing(ArchStep):
    """No architecture learning; uniform paths in the weight step; the best of random candidates."""

    name = "rsws"

    def __init__(self, options: RSWSOptions) -> None:
        self.options = options
        self.paths = EpochPaths(uniform_genotypes)
        self._best: tuple[int, Any, float] | None = None  # epoch, genotype, one-shot accuracy
        self.candidates: list[tuple[Any, float]] = []
        """The last ranking: (genotype, one-shot accuracy %) of every candidate, in drawing order."""

    def arch_step_on(self, state: SearchState) -> bool:
        return False  # the alphas are never trained

    def mixing(self, state: SearchState, alphas: torch.Tensor, phase: Phase) -> torch.Tensor | None:
        if phase != "weights":
            return None  # evaluation and Hessian see softmax(alpha): the untrained, uniform mixture
        return self.paths.mixing(state, alphas)

    def forward_options(self, state: SearchState, phase: Phase) -> dict[str, Any]:
        return self.paths.forward_options(state, phase)

    def derive(self, state: SearchState) -> Any:
        if self._best is None or self._best[0] != state.epoch:
            self._best = (state.epoch, *self._rank(state))
        return self._best[1]

    def _rank(self, state: SearchState) -> tuple[Any, float]:
        batches = first_images(evaluation_batches(state), self.options.eval_images)
        # one draw from the global RNG (reseeded by the loop each epoch) seeds the candidates
        generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, ())))
        self.candidates = []
        for _ in range(self.options.n_candidates):
            genotype = uniform_genotype(state, generator)
            self.candidates.append((genotype, oneshot_accuracy(state, genotype, batches)))
        best = max(range(len(self.candidates)), key=lambda i: (self.candidates[i][1], -i))  # ties: first drawn
        return self.candidates[best]

    def end_of_epoch(self, state: SearchState, row: dict[str, Any]) -> None:
        self.paths.end_of_epoch()
        return None

    def state_columns(self) -> dict[str, float | int | str | None]:
        return {"rsws_best_oneshot_acc": None if self._best is None else self._best[2]}


def evaluation_batches(state: SearchState, method: str = "rsws") -> Iterable[Batch]:
    """The loop's end-of-epoch evaluation images, on which ``method`` ranks its candidates."""
    if state.eval_batches is None:
        raise ConfigError(
            f"{method} ranks architectures on validation images, which this search state does not have "
            "(SearchState.eval_batches is unset; the search loop sets it)"
        )
    return state.eval_batches()


def first_images(batches: Iterable[Batch], limit: int | None) -> list[Batch]:
    """The batches holding the first ``limit`` images (all when None), cut to exactly ``limit``."""
    out: list[Batch] = []
    seen = 0
    for x, y in batches:
        if limit is not None and seen + y.numel() > limit:
            x, y = x[: limit - seen], y[: limit - seen]
        out.append((x, y))
        seen += y.numel()
        if limit is not None and seen >= limit:
            break
    return out


def rsws(options: dict[str, Any]) -> Method:
    """Random search with weight sharing (Li & Talwalkar, 2019, "Random Search and Reproducibility
    for Neural Architecture Search", UAI 2019).

    Formulas: each weight step trains the supernet under one architecture drawn uniformly from the
    space (one-hot weights and the path's mask; NB-1Shot1: a uniform configuration, ops and parent
    sets); the alphas are never trained. The architecture the method would pick after an epoch is
    the best of ``n_candidates`` uniform random architectures by accuracy with the shared weights
    (batch-statistics BN, as final nets) on the first ``eval_images`` of the loop's fixed
    validation images; the candidates are drawn from one number of torch's global RNG, which the
    loop reseeds per epoch, so they depend on (seed, epoch) only and a resumed run draws the same.

    Defaults: ``n_candidates=20`` and ``eval_images=256`` keep the ranking a fraction of a ``cpu``
    epoch; the paper ranks 1000 architectures once, at the end of the search. ``valid_acc`` is the
    supernet under softmax(alpha) with the untrained alphas (the uniform mixture), so ``gap``
    compares that mixture with the chosen path.

    Trajectory column: ``rsws_best_oneshot_acc`` (one-shot accuracy in % of the chosen candidate on
    the ranking images).
    """
    opts = parse_options(RSWSOptions, options, "rsws")
    return Method(name="rsws", arch_step=RandomWeightSharing(opts))
