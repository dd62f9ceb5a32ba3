"""Perturbation-based architecture selection (DARTS-PT) as a derivation option of every method.

Wang, Cheng, Chen, Tang & Hsieh, "Rethinking Architecture Selection in Differentiable NAS"
(ICLR 2021); reference code ``ruocwang/darts-pt@4ec3149``, ``nasbench201/projection.py``
(``pt_project``) and ``nasbench201/search_model_darts_proj.py``. Magnitude selection (the
method's own ``derive``, DARTS's argmax alpha) and perturbation selection are scored side by side:
the loop writes this selection's genotype and tabular scores as ``pt_*`` columns next to the
method's own.

The procedure, on NB201's six edges (the reference's facts, with file:line):

- The supernet's mixing weights are the method's ``eval`` mixing (DARTS: softmax(alpha)) with the
  edges decided so far replaced by the one-hot of their chosen op
  (``search_model_darts_proj.py:22-30``).
- Fine-tuning: ``tune_epochs * (edges - 1)`` epochs (``projection.py:76-78``; 5 * 5 = 25 with the
  reference's ``--proj_intv 5``, ``exp_scripts/darts-proj-201.sh`` and ``train_search.py:67``).
  An edge is decided at the start of fine-tune epochs ``0, k, 2k, ...`` and of the last one
  (``projection.py:84``), so with ``tune_epochs=1`` only ``edges - 1`` edges are decided and the
  last one keeps the argmax of its weights, as the reference's ``genotype()``
  (``search_model_darts_proj.py:61-74``). ``tune_epochs=0`` decides every edge without
  fine-tuning (not in the reference).
- Which edge: a uniformly random undecided one (``--edge_decision random``, ``projection.py:24-25``).
- Which op: for each op of the edge, the supernet with that op's weight set to 0 (no
  renormalisation, ``projection.py:39-42``) is evaluated; the op whose removal gives the lowest
  accuracy (``criterion="acc"``, the default, ``projection.py:31-33``) or the highest loss
  (``"loss"``) is kept; ties keep the first op. ``none`` is a candidate unless the method derives
  without it (``Method.include_none``).
- Each fine-tune epoch: per batch pair, a first-order arch step on the search-valid batch
  (Adam, the run's arch optimiser with its state, ``architect_ig.py:9-11, 44-48``) when the method
  trains its alphas in that epoch, then a weight step on the search-train batch with the run's
  gradient clip (``search_model.py:165-169``), both under the projected weights; the weights'
  SGD is a fresh one at ``lr_factor`` (0.1) times ``optim.lr``, constant, with ``optim.momentum``
  and ``optim.weight_decay`` and no Nesterov (``projection.py:79``, ``search_model.py:190-196``).

Deviations, all for cost or determinism: the candidates are scored on the loop's fixed
evaluation images (``tracking.final_eval_images``; the reference uses the whole search-valid
half) with batch statistics that are not moved (the reference's train-mode evaluation moves the
running statistics); the forward uses the method's ``eval`` forward options (DARTS-PT trains
DARTS, which has none). The selection works on a copy: everything it changes (weights, alphas,
optimiser states, BN statistics, torch's RNG) is restored afterwards, so the search goes on as
if it had not run, and a resumed run selects the same. The reference runs it once, after the
search (100 epochs, ``train_search.py:43``) on the supernet itself.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from nasbench_harness.errors import ConfigError

if TYPE_CHECKING:
    from nasbench_harness.methods.engine.base import SearchState
    from nasbench_harness.methods.engine.loop import Search

COLUMNS = ("pt_genotype", "pt_valid_acc_table", "pt_test_acc_table", "pt_regret_valid", "pt_regret_test", "pt_time_s")
"""The trajectory columns of the selection (tracking.schema documents them); null on epochs without one."""
SEED_SALT = 7_919
"""Separates the selection's random numbers (edge order, fine-tune batches) from the search's."""


def due(search: Search, epoch: int) -> bool:
    """Whether schedule epoch ``epoch`` runs the selection: the last epoch and every ``every``."""
    cfg = search.config.selection
    return cfg.perturbation and (epoch == search.config.epochs or (cfg.every > 0 and epoch % cfg.every == 0))


def selection_columns(search: Search, epoch: int) -> dict[str, Any]:
    """The ``pt_*`` columns of schedule epoch ``epoch`` (all null when the selection is not due)."""
    if not due(search, epoch):
        return dict.fromkeys(COLUMNS)
    started = time.perf_counter()
    genotype = perturbation_select(search, epoch)
    scores = search.state.space.score_columns(search.bench, genotype, search.config.dataset)
    dataset = search.config.dataset
    return {
        "pt_genotype": genotype.to_string(),
        "pt_valid_acc_table": _table(scores, dataset, "valid"),
        "pt_test_acc_table": _table(scores, dataset, "test"),
        "pt_regret_valid": scores["regret_valid"],
        "pt_regret_test": scores["regret_test"],
        "pt_time_s": time.perf_counter() - started,
    }


def _table(scores: dict[str, Any], dataset: str, split: str) -> float:
    from nasbench_harness.tabular.nb201_metrics import canonical_dataset
    from nasbench_harness.tracking.schema import nb201_table_column

    return scores[nb201_table_column(canonical_dataset(dataset), split)]


def perturbation_select(search: Search, epoch: int) -> Any:
    """The NB201 genotype perturbation-based selection picks after schedule epoch ``epoch``;
    the search's state is left as it was."""
    s = search.state
    if s.space.name != "nb201":
        raise ConfigError(f"selection.perturbation is defined on NB201's edges; {s.space.name} has none")
    if s.snapshot is None or s.restore is None:
        raise ConfigError("perturbation selection needs the loop's snapshot service (SearchState.snapshot)")
    saved = s.snapshot()
    training = s.net.training
    devices = [s.alphas.device] if s.alphas.device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(search.config.seed * 1_000_003 + epoch * SEED_SALT + 1)
            return _select(search, epoch)
    finally:
        s.restore(saved)
        s.net.train(training)


def _select(search: Search, epoch: int) -> Any:
    from nasbench_harness.spaces.nb201 import NB201Genotype

    s, cfg = search.state, search.config.selection
    edges = s.mixing(phase="eval").shape[0]
    chosen: dict[int, int] = {}
    order = torch.randperm(edges).tolist()  # the random edge of each decision, in turn
    tune = cfg.tune_epochs * (edges - 1)
    if tune == 0:
        for edge in order:
            chosen[edge] = _best_op(s, projected(s, chosen), edge, cfg.criterion)
    else:
        w_optim = torch.optim.SGD(
            s.net.parameters(),
            lr=search.config.optim.lr * cfg.lr_factor,
            momentum=search.config.optim.momentum,
            weight_decay=search.config.optim.weight_decay,
        )
        train_alphas = s.arch_step_on()
        for t in range(tune):
            if (t % cfg.tune_epochs == 0 or t == tune - 1) and len(chosen) < edges:
                edge = order[len(chosen)]
                chosen[edge] = _best_op(s, projected(s, chosen), edge, cfg.criterion)
            _fine_tune_epoch(search, chosen, w_optim, train_alphas, pass_=epoch * SEED_SALT + t)
    final = projected(s, chosen)
    return NB201Genotype.from_ops([chosen.get(e, int(final[e].argmax())) for e in range(edges)])


def projected(s: SearchState, chosen: dict[int, int], alphas: torch.Tensor | None = None) -> torch.Tensor:
    """The method's ``eval`` mixing weights with each decided edge one-hot on its chosen op
    (no gradient through decided edges)."""
    weights = s.mixing(alphas, phase="eval")
    if not chosen:
        return weights
    keep = torch.ones_like(weights)
    fixed = torch.zeros_like(weights)
    for edge, op in chosen.items():
        keep[edge] = 0.0
        fixed[edge, op] = 1.0
    return weights * keep + fixed


def _best_op(s: SearchState, weights: torch.Tensor, edge: int, criterion: str) -> int:
    """The op of ``edge`` whose removal hurts the supernet most on the evaluation images."""
    candidates = range(weights.shape[1]) if s.method.include_none else range(1, weights.shape[1])
    best, extreme = None, None
    for op in candidates:  # ops in NB201's order; "none" is op 0
        removed = weights.detach().clone()
        removed[edge, op] = 0.0
        loss, acc = s.evaluate(removed, None, batch_stats=True)
        value = acc if criterion == "acc" else -loss
        if extreme is None or value < extreme:  # strict: ties keep the first op, as the reference
            best, extreme = op, value
    assert best is not None
    return best


def _fine_tune_epoch(
    search: Search, chosen: dict[int, int], w_optim: torch.optim.Optimizer, train_alphas: bool, pass_: int
) -> None:
    """One epoch of first-order DARTS under the projected weights (see the module docstring)."""
    s = search.state
    s.net.train()
    valid = s.valid_batches(pass_) if s.valid_batches is not None else None
    clip = search.config.optim.grad_clip
    for x, y in search.loaders.train.epoch(pass_):
        if train_alphas and valid is not None:
            xv, yv = next(valid)
            s.a_optim.zero_grad(set_to_none=True)
            F.cross_entropy(s.forward(xv, projected(s, chosen, s.alphas), "eval"), yv).backward()
            s.a_optim.step()
        w_optim.zero_grad(set_to_none=True)
        s.alphas.grad = None
        with torch.no_grad():
            weights = projected(s, chosen)
        F.cross_entropy(s.forward(x, weights, "eval"), y).backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(s.net.parameters(), clip)
        w_optim.step()
