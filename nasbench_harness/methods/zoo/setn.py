"""SETN (Dong & Yang, ICCV 2019) as NAS-Bench-201's authors ran it: uniform paths in the weight
step, DARTS's first-order arch step, and the best of the most probable cells; see :func:`setn`."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from nasbench_harness.methods.components.arch_steps import FirstOrderStep
from nasbench_harness.methods.engine.base import Batch, Component, Method, Phase, SearchState
from nasbench_harness.methods.engine.options import Options, parse_options
from nasbench_harness.methods.zoo.rsws import (
    EpochPaths,
    evaluation_batches,
    first_images,
    oneshot_accuracy,
    uniform_genotypes,
)
from nasbench_harness.spaces.nb201 import NUM_CELLS, NUM_EDGES, NUM_OPS, NB201Genotype


class SETNOptions(Options):
    """How many of the most probable cells are scored after each epoch, and on which images."""

    select_num: int = Field(
        20, ge=1, le=NUM_CELLS, description="candidates: the most probable cells under softmax(alpha)"
    )
    eval_images: int | None = Field(
        256, ge=1, description="validation images per candidate, one batch (None: all evaluation images)"
    )
    candidate_images: Literal["next", "same"] = Field(
        "next",
        description="next: each candidate the next batch of a shuffled pass over the evaluation images, as the "
        "reference; same: every candidate the first eval_images of them, as rsws",
    )


@functools.cache
def all_cells() -> np.ndarray:
    """(15625, 6) op indices of every NB201 cell in the reference's enumeration order: lexicographic
    over the edges in arch-string order, the first edge the most significant (row r is the cell of
    code r, :meth:`NB201Genotype.from_code`); read-only."""
    digits = NUM_OPS ** np.arange(NUM_EDGES - 1, -1, -1)
    cells = (np.arange(NUM_CELLS)[:, None] // digits) % NUM_OPS
    cells.setflags(write=False)
    return cells


def cell_log_probs(alphas: torch.Tensor) -> np.ndarray:
    """log p(cell) = sum over edges of log_softmax(alpha)[edge, op] for every cell of
    :func:`all_cells`, in the alphas' precision, added edge by edge in edge order as the reference
    adds them, so its roundings (and so its ties) are the reference's."""
    log_p = torch.log_softmax(alphas.detach().reshape(NUM_EDGES, NUM_OPS), dim=-1).cpu().numpy()
    picked = log_p[np.arange(NUM_EDGES), all_cells()]  # (15625, 6)
    total = picked[:, 0].copy()
    for edge in range(1, NUM_EDGES):
        total = total + picked[:, edge]
    return total


def top_cells(alphas: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(codes, log-probabilities) of the ``k`` most probable cells, most probable first; equal
    log-probabilities keep the enumeration order (the reference's stable ``sorted``)."""
    log_p = cell_log_probs(alphas)
    order = np.argsort(-log_p, kind="stable")[:k]
    return order, log_p[order]


def cell(code: int) -> NB201Genotype:
    """The cell of row ``code`` of :func:`all_cells`."""
    return NB201Genotype(tuple(int(op) for op in all_cells()[code]))


class UniformPaths(Component):
    """The weight step trains one uniformly drawn cell per step (one-hot weights and its path's
    mask), rsws's paths; the arch step and evaluations see the softmax."""

    name = "uniform-paths"

    def __init__(self) -> None:
        self.paths = EpochPaths(uniform_genotypes)

    def mixing(self, state: SearchState, alphas: torch.Tensor, phase: Phase) -> torch.Tensor | None:
        return self.paths.mixing(state, alphas) if phase == "weights" else None

    def forward_options(self, state: SearchState, phase: Phase) -> dict[str, Any]:
        return self.paths.forward_options(state, phase)

    def end_of_epoch(self, state: SearchState, row: dict[str, Any]) -> None:
        self.paths.end_of_epoch()
        return None


class TemplateSelection(Component):
    """The genotype: of the ``select_num`` most probable cells, the one with the best one-shot
    accuracy on its batch, ranked once per epoch."""

    name = "setn-select"

    def __init__(self, options: SETNOptions) -> None:
        self.options = options
        self._best: tuple[int, NB201Genotype, float, float, int] | None = None  # epoch, cell, acc, log p, rank
        self.candidates: list[tuple[NB201Genotype, float, float]] = []
        """The last ranking: (cell, log-probability, one-shot accuracy %), most probable first."""

    def check_space(self, space: str) -> str | None:
        if space == "nb201":
            return None
        return (
            "SETN's candidates are the cells ranked by their probability under a softmax per edge, all 15,625 "
            "NB201 cells enumerated; an NB-1Shot1 cell chooses parent sets, which have no such distribution, "
            "and no reference runs SETN on NB-1Shot1 (automl/nasbench-1shot1 has none). Use nb201"
        )

    def derive(self, state: SearchState) -> NB201Genotype:
        if self._best is None or self._best[0] != state.epoch:
            self._best = (state.epoch, *self._select(state))
        return self._best[1]

    def _select(self, state: SearchState) -> tuple[NB201Genotype, float, float, int]:
        codes, log_probs = top_cells(state.alphas, self.options.select_num)
        batches = self._candidate_batches(state)
        self.candidates = []
        for code, log_p in zip(codes.tolist(), log_probs.tolist(), strict=True):
            genotype = cell(code)
            self.candidates.append((genotype, log_p, oneshot_accuracy(state, genotype, next(batches))))
        best = int(np.argmax([acc for _, _, acc in self.candidates]))  # ties: the more probable
        genotype, log_p, acc = self.candidates[best]
        return genotype, acc, log_p, best + 1

    def _candidate_batches(self, state: SearchState) -> Iterator[list[Batch]]:
        """Each candidate's images, in turn (see :func:`setn`)."""
        size = self.options.eval_images
        if self.options.candidate_images == "same" or size is None:
            return itertools.repeat(first_images(evaluation_batches(state, "setn"), size))
        seed = int(torch.randint(0, 2**62, ()))  # one draw of torch's global RNG, reseeded per epoch by the loop
        return _shuffled_passes(list(evaluation_batches(state, "setn")), size, seed)

    def state_columns(self) -> dict[str, float | int | str | None]:
        best = self._best
        return {
            "setn_best_oneshot_acc": None if best is None else best[2],
            "setn_best_log_prob": None if best is None else best[3],
            "setn_best_rank": None if best is None else best[4],
        }


def _shuffled_passes(batches: list[Batch], size: int, seed: int) -> Iterator[list[Batch]]:
    """Endless batches of ``size`` of the images in ``batches``: pass after pass over them, each
    in a new random order drawn from ``seed``, the last batch of a pass smaller when ``size`` does
    not divide them (a data loader over a shuffled sampler)."""
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(y), generator=generator).to(y.device)
        for start in range(0, len(y), size):
            picked = order[start : start + size]
            yield [(x[picked], y[picked])]


def setn(options: dict[str, Any]) -> Method:
    """SETN (Dong & Yang, 2019, "One-Shot Neural Architecture Search via Self-Evaluated Template
    Network", ICCV), as NAS-Bench-201's authors ran it (``D-X-Y/AutoDL-Projects@f46486e``;
    paths below are in that repository).

    Weight step: SGD on the training loss of one cell drawn uniformly from all 15,625 (``none``
    included), one draw per step shared by every cell of the supernet, computing only its path
    (``exps/NAS-Bench-201-algos/SETN.py:54-61``: ``dync_genotype(True)``, whose ops are
    ``random.choice`` over the op names, ``xautodl/models/cell_searchs/search_model_setn.py:114-130``,
    run in ``dynamic`` mode, ``search_cells.py:156-166``); the paths are rsws's.

    Arch step: DARTS first order on the search-valid batch under ``softmax(alpha)`` per edge (the
    ``joint`` mode, ``SETN.py:71-76``; ``search_cells.py:103-117``), Adam with ``arch_optim``
    (3e-4, betas (0.5, 0.999), weight decay 1e-3: ``scripts-search/NAS-Bench-201-algos/SETN.sh:43``,
    ``SETN.py:231-236``); the alphas start at ``1e-3 * N(0, 1)`` (``search_model_setn.py:61``).

    Genotype, after each epoch: the candidates are the ``select_num`` cells of highest
    ``log p(cell) = sum_e log_softmax(alpha_e)[op_e]``, all cells enumerated in
    ``Structure.gen_all``'s order (``genotypes.py:175-198``) and sorted by ``-log p`` with Python's
    stable sort, so ties keep that order (``search_model_setn.py:132-150``; the sum is taken edge by
    edge in the alphas' precision, as there). Each candidate's one-shot accuracy (its path with the
    shared weights, every BN on its batch's statistics: the loop's rule for final nets) is measured
    on one batch of ``eval_images``; the genotype is the first argmax (``SETN.py:117-140``). The
    ranking is cached for the epoch. Before training (epoch 0) the same rule ranks the untrained
    supernet's candidates, as the reference's initial genotype (``SETN.py:277``); the loop first
    derives after epoch 1.

    Candidate images, ``candidate_images="next"`` (default): each candidate gets the next batch of
    a shuffled pass over the loop's evaluation images (``tracking.final_eval_images``, a fixed
    unaugmented subset of search-valid), a new order each pass, the orders drawn from one number of
    torch's global RNG, which the loop reseeds per epoch (so a resumed run draws the same). The
    reference passes over all 25,000 valid-half images this way (``SETN.py:122-129``, a
    ``SubsetRandomSampler`` loader, ``xautodl/datasets/get_dataset_with_transform.py:277-283``), so
    its candidates see nearly disjoint images; with ``paper``'s 2,048 evaluation images and 512 a
    batch, four batches make a pass (set ``tracking.final_eval_images`` higher to come closer).
    ``"same"``: every candidate the first ``eval_images`` of the evaluation images, as rsws.
    ``eval_images=None``: every candidate all the evaluation images, in the loop's batches.

    Defaults: ``select_num=20``, ``eval_images=256`` keep the ranking a fraction of a ``cpu``
    epoch; the reference's 100 and 512 (``SETN.sh:44``, ``configs/nas-benchmark/algos/SETN.config:13``)
    are in the ``paper`` protocol. Deviations: the harness runs the arch step before the weight
    step of each batch pair (the reference the weight step first, ``SETN.py:53-76``); BN uses the
    batch's statistics in the candidates' evaluation whatever ``model.bn_track_running_stats``
    (the reference, in eval mode, uses running statistics when it tracks them). NB201 only:
    NB-1Shot1 is refused (no reference; its parent sets have no per-edge softmax to rank by).

    Trajectory columns: ``setn_best_oneshot_acc`` (% on the chosen candidate's batch),
    ``setn_best_log_prob`` (its log-probability under softmax(alpha), nats) and ``setn_best_rank``
    (its place among the candidates by probability, 1 = the most probable cell).
    """
    opts = parse_options(SETNOptions, options, "setn")
    return Method(name="setn", arch_step=FirstOrderStep(), components=[UniformPaths(), TemplateSelection(opts)])
