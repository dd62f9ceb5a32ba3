"""The search loop: one epoch after another, each committed to the run directory.

Per batch pair (search-train, search-valid): the method's arch step, then a weight step (SGD,
cross-entropy + the components' extra terms, gradient clipping). After each epoch: the
supernet's and the derived final net's accuracy on the same validation images (the gap),
the genotype's ground truth from the NB201 table, the Hessian eigenvalue every k epochs, and
the method's state; then trajectory, alphas and checkpoint are written atomically.

Determinism: ``seed`` seeds the network and alphas; each epoch reseeds torch with
(seed, epoch), and the data order and augmentation derive from (seed, epoch), so a run resumed
from epoch k continues exactly as the uninterrupted run would (on the same device and threads; on
a GPU also in ``numerics.deterministic`` mode, see the README).
"""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nasbench_harness.config import SearchConfig, resolve_channels_last
from nasbench_harness.data import SearchData
from nasbench_harness.data.loader import BatchLoader
from nasbench_harness.errors import TrainingError
from nasbench_harness.methods.components.hessian import dominant_eigenvalue, frozen_bn_stats
from nasbench_harness.methods.engine.adapters import get_search_space
from nasbench_harness.methods.engine.base import Batch, Method, Rollback, SearchState, Stop
from nasbench_harness.methods.engine.selection import selection_columns
from nasbench_harness.methods.engine.steps import training_step
from nasbench_harness.tracking import RunDir

Progress = Callable[[str, dict[str, Any]], None]
"""Called with ("step", {epoch, step, steps, loss}) every ``tracking.sync_every`` steps and at an
epoch's last (``loss``: the epoch's mean training loss so far), and with ("epoch", trajectory row)."""


@dataclass
class Loaders:
    """Batches for the weight step, the arch step, and the end-of-epoch evaluation."""

    train: BatchLoader
    valid: BatchLoader
    evaluation: BatchLoader
    eigen_batch: Batch


def build_loaders(config: SearchConfig, data: SearchData, device: torch.device) -> Loaders:
    """The loaders of a search, all seeded by ``config.seed``.

    Both halves of the search split go through the training transform (``data.augment``): every
    reference feeds its architecture step augmented batches (quark0/darts ``train_search.py``
    builds ``valid_queue`` over ``train_data``; AutoDL's ``SearchDataset`` wraps the train
    transform for both halves; RobustDARTS, SmoothDARTS and NB-1Shot1 do the same). The
    end-of-epoch evaluation and the fixed eigenvalue batch stay unaugmented. The evaluation
    images are a fixed subset of search-valid (``tracking.final_eval_images``, the same images
    every epoch, drawn from the seed), in batches of ``tracking.eval_batch_size``.
    """
    if config.batch_size > len(data.train):
        from nasbench_harness.errors import ConfigError

        raise ConfigError(  # one batch of the whole split would hide the typo until memory runs out
            f"batch_size {config.batch_size} is more than the {len(data.train)} search-train images; "
            f"use 2..{len(data.train)} (or more images: data.train_size)"
        )
    nhwc = resolve_channels_last(config, device)
    common = {"mean": data.mean, "std": data.std, "device": device, "channels_last": nhwc}
    train = BatchLoader(
        data.train,
        batch_size=config.batch_size,
        shuffle=True,
        augment=config.data.augment,
        seed=config.seed,
        drop_last=config.speed.cuda_graph,  # a captured step has one batch shape
        **common,
    )
    valid = BatchLoader(
        data.valid,
        batch_size=config.batch_size,
        shuffle=True,
        augment=config.data.augment,
        seed=config.seed + 1,
        **common,
    )
    n_eval = min(config.tracking.final_eval_images or len(data.valid), len(data.valid))
    order = np.random.default_rng(config.seed).permutation(len(data.valid))
    evaluation = BatchLoader(
        data.valid.take(np.sort(order[:n_eval])),
        batch_size=config.tracking.eval_batch_size,  # fixed: batch-statistics BN makes it part of the number
        shuffle=False,
        augment=False,
        seed=0,
        **common,
    )
    eigen = BatchLoader(
        data.valid.take(np.sort(order[: config.tracking.eigen_batch_size])),
        batch_size=config.tracking.eigen_batch_size,
        shuffle=False,
        augment=False,
        seed=0,
        **common,
    )
    return Loaders(train, valid, evaluation, next(iter(eigen.epoch(0))))


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu."""
    from nasbench_harness.errors import ConfigError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but torch sees no CUDA device; use --device cpu or auto")
    if name not in {"cpu", "cuda"} and not name.startswith("cuda:"):
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")
    return torch.device(name)


def build_state(
    config: SearchConfig, method: Method, num_classes: int, device: torch.device
) -> tuple[SearchState, torch.optim.lr_scheduler.LRScheduler]:
    """Network, alphas, optimisers and the cosine schedule of ``config``, seeded by ``config.seed``."""
    torch.manual_seed(config.seed)
    space = get_search_space(config.space)
    built = (c.build_net(space, config.model, num_classes) for c in method.all_components)
    net = next((n for n in built if n is not None), None)
    net = (space.build_net(config.model, num_classes) if net is None else net).to(device)
    if resolve_channels_last(config, device):
        net = net.to(memory_format=torch.channels_last)
    generator = torch.Generator().manual_seed(config.seed)
    alphas = torch.nn.Parameter(space.init_alphas(generator, config.arch_optim.init_scale).to(device))
    o, a = config.optim, config.arch_optim
    w_optim = torch.optim.SGD(
        net.parameters(), lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay
    )
    a_optim = torch.optim.Adam([alphas], lr=a.lr, betas=a.betas, weight_decay=a.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(w_optim, T_max=config.epochs, eta_min=o.lr_min)
    state = SearchState(net, alphas, w_optim, a_optim, o.grad_clip, method, space, epochs=config.epochs)
    apply_speed(state, config, device)
    return state, scheduler


COMPILE_BACKEND = "inductor"
"""``torch.compile``'s backend for ``speed.compile`` (tests trace with ``aot_eager``, which skips code generation)."""


def apply_speed(state: SearchState, config: SearchConfig, device: torch.device) -> None:
    """Switch on the ``speed`` options of ``config`` for ``state`` (none is on by default).

    - ``amp_bf16``: the weight step's forward and loss under bfloat16 autocast; the arch step,
      the finite differences and the Hessian stay in float32;
    - ``compile``: ``torch.compile`` of the supernet for the arch and weight steps' forwards
      without a path mask (final nets, evaluations, sampled paths and the Hessian run eagerly, so
      a new genotype never recompiles);
    - ``cuda_graph``: the weight step replayed from a CUDA graph (:mod:`.graphs`), CUDA only.
    """
    from nasbench_harness.errors import ConfigError

    speed = config.speed
    if speed.amp_bf16:
        state.weight_step_dtype = torch.bfloat16
    if speed.compile:
        state.compiled_net = torch.compile(state.net, dynamic=False, backend=COMPILE_BACKEND)
    if speed.cuda_graph:
        from nasbench_harness.methods.engine.graphs import GraphedWeightStep, check_graphable

        if device.type != "cuda":
            raise ConfigError(f"speed.cuda_graph needs a CUDA device, and this run is on {device}; turn it off")
        check_graphable(state.method)
        state.weight_step_graph = GraphedWeightStep()


class Search:
    """One search run in ``run_dir`` (see :func:`run_search`)."""

    def __init__(
        self,
        config: SearchConfig,
        method: Method,
        data: SearchData,
        bench: Any,
        run_dir: RunDir,
        device: torch.device,
        progress: Progress | None = None,
    ) -> None:
        self.config, self.data, self.bench, self.run_dir = config, data, bench, run_dir
        self.device, self.progress = device, progress
        self.state, self.scheduler = build_state(config, method, data.num_classes, device)
        self.loaders = build_loaders(config, data, device)
        self.wall_time = 0.0
        self._correlation_sample: list[tuple[Any, float]] | None = None
        self.state.snapshot = lambda: copy.deepcopy(self.checkpoint(self.state.epoch, components=False))
        self.state.restore = functools.partial(self.restore, components=False)
        self.state.eval_batches = lambda: self.loaders.evaluation.epoch(0)
        self.state.valid_batches = lambda epoch: _repeat(self.loaders.valid, epoch)
        self.state.eigenvalue = self.eigenvalue
        for component in method.all_components:
            component.setup(self.state)

    # -- checkpoints --------------------------------------------------------------------------
    def checkpoint(self, epoch: int, components: bool = True) -> dict[str, Any]:
        """Everything needed to continue after schedule epoch ``epoch``.

        The tensors are the live ones (the run directory saves them at once); ``snapshot``
        deep-copies. ``components=False`` (a snapshot for a rollback) leaves out the components' state.
        """
        s = self.state
        return {
            "schedule_epoch": epoch,
            "net": s.net.state_dict(),
            "alphas": s.alphas.detach().cpu(),
            "w_optim": s.w_optim.state_dict(),
            "a_optim": s.a_optim.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "components": [c.state_dict() for c in s.method.all_components] if components else None,
            "wall_time": self.wall_time,
        }

    def restore(self, checkpoint: dict[str, Any], components: bool = True) -> int:
        """Load a checkpoint; returns the schedule epoch it completed.

        ``components=False`` keeps the components' own state (a rollback: the component that
        asked for it keeps its record of what happened).
        """
        s = self.state
        s.net.load_state_dict(checkpoint["net"])
        with torch.no_grad():
            s.alphas.copy_(checkpoint["alphas"].to(self.device))
        s.w_optim.load_state_dict(checkpoint["w_optim"])
        if s.weight_step_graph is not None:  # the optimiser's buffers are new tensors now
            s.weight_step_graph.invalidate()
        s.a_optim.load_state_dict(checkpoint["a_optim"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        if components:
            for component, saved in zip(s.method.all_components, checkpoint["components"], strict=True):
                component.load_state_dict(saved)
            self.wall_time = float(checkpoint["wall_time"])
        # checkpoints written before rollbacks existed count epochs in "epoch" only
        return int(checkpoint["schedule_epoch"] if "schedule_epoch" in checkpoint else checkpoint["epoch"])

    # -- the loop -----------------------------------------------------------------------------
    def run(self, done: int = 0, schedule_done: int = 0) -> Stop | None:
        """Train until the schedule's last epoch, after ``done`` committed epochs of which the
        last completed schedule epoch ``schedule_done``; returns the :class:`Stop`, if any.

        Committed epochs are numbered 1, 2, ... in the run directory (``epoch``); the schedule
        epoch (``schedule_epoch``) repeats earlier values after a :class:`Rollback`.
        """
        s, epoch, committed = self.state, schedule_done, done
        while epoch < self.config.epochs:
            epoch += 1
            committed += 1
            started = time.perf_counter()
            row = {"epoch": committed, "schedule_epoch": epoch, **self.train_epoch(epoch)}
            tracking_started = time.perf_counter()
            row.update(self.track(epoch))
            action = None
            for component in s.method.all_components:  # may measure too (early stopping's eigenvalue)
                action = action or component.end_of_epoch(s, row)
            if isinstance(action, str):
                action = Stop(action)
            now = time.perf_counter()
            self.wall_time += now - started
            row.update(epoch_time_s=now - started, tracking_time_s=now - tracking_started, wall_time_s=self.wall_time)
            row.update(s.method.state_columns())
            row["action"] = None if action is None else action.reason
            alpha_rows = self.alpha_rows(committed)
            if isinstance(action, Rollback):
                # The checkpoint is the state to continue from: a resumed run goes on from the rollback.
                epoch = self.restore(copy.deepcopy(action.snapshot), components=False)
                if epoch != action.to_epoch:
                    raise TrainingError(f"rollback to epoch {action.to_epoch} got a snapshot of epoch {epoch}")
            self.run_dir.commit_epoch(committed, row, alpha_rows, self.checkpoint(epoch))
            if self.progress:
                self.progress("epoch", row)
            if isinstance(action, Stop):
                return action
        return None

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        """One pass over search-train: arch step + weight step per batch pair.

        Nothing is read back from the device inside a step: the loss and accuracy sums stay on
        the device, and the host reads them, with the finiteness of every watched quantity
        (:meth:`SearchState.check_finite`), every ``tracking.sync_every`` steps and at the end
        of the epoch; progress is reported then too.
        """
        s, cfg = self.state, self.config
        torch.manual_seed(cfg.seed * 1_000_003 + epoch)
        s.epoch, s.steps = epoch, len(self.loaders.train)
        s.net.train()
        lr, arch_lr = s.weight_lr, float(s.a_optim.param_groups[0]["lr"])
        valid_batches = _repeat(self.loaders.valid, epoch)
        sums = torch.zeros(2, dtype=torch.float64, device=self.device)  # loss x images, correct predictions
        images, every = 0, cfg.tracking.sync_every
        for step, train in enumerate(self.loaders.train.epoch(epoch)):
            s.step = step
            loss, logits = training_step(s, train, next(valid_batches))
            n = train[1].shape[0]
            sums += torch.stack([loss.double() * n, (logits.argmax(1) == train[1]).sum().double()])
            images += n
            if (step + 1) % every == 0 or step + 1 == s.steps:
                loss_sum, _ = s.check_finite(sums)
                if self.progress:
                    self.progress(
                        "step", {"epoch": epoch, "step": step + 1, "steps": s.steps, "loss": loss_sum / images}
                    )
        s.batch = None  # s.arch_batch stays: the epoch's last, for end-of-epoch measurements
        self.scheduler.step()
        loss_sum, correct = sums.tolist()
        return {
            "train_loss": loss_sum / images,
            "train_acc": 100.0 * correct / images,
            "lr": lr,
            "arch_lr": arch_lr,
        }

    def track(self, epoch: int) -> dict[str, Any]:
        """End-of-epoch measurements: supernet vs final net, genotype, ground truth, eigenvalue."""
        s = self.state
        genotype = s.derive()
        weights = s.mixing(phase="eval").detach()
        valid_loss, valid_acc = self.evaluate(weights, None, batch_stats=False)
        final_acc = s.evaluate_genotype(genotype)
        row: dict[str, Any] = {
            "valid_loss": valid_loss,
            "valid_acc": valid_acc,
            "final_valid_acc": final_acc,
            "gap": valid_acc - final_acc,
            **s.space.genotype_columns(genotype, weights),
            **s.space.score_columns(self.bench, genotype, self.config.dataset),
        }
        every = self.config.tracking.eigen_every
        row["eigenvalue"] = self.eigenvalue() if every and epoch % every == 0 else None
        t = self.config.tracking
        if t.correlation_sample:
            due = epoch % t.correlation_every == 0 or epoch == self.config.epochs
            row["spearman_valid"] = self.correlation() if due else None
        if self.config.selection.perturbation:
            row.update(selection_columns(self, epoch))
        return row

    def correlation(self) -> float:
        """Spearman rank correlation, over a fixed sample of cells in the table, between each cell's
        error as a final net inside the supernet (inherited weights) and its table validation error."""
        from scipy.stats import spearmanr

        if self._correlation_sample is None:
            t = self.config.tracking
            self._correlation_sample = self.state.space.sample_with_truth(
                self.bench, t.correlation_sample, self.config.seed, self.config.dataset
            )
        one_shot, truth = [], []
        for genotype, table_error in self._correlation_sample:
            weights, mask = self.state.space.final_net(genotype, self.device)
            one_shot.append(100.0 - self.evaluate(weights, mask, batch_stats=True)[1])
            truth.append(table_error)
        return float(spearmanr(one_shot, truth).statistic) if len(truth) > 2 else float("nan")

    def evaluate(self, weights: torch.Tensor, mask: Any, batch_stats: bool) -> tuple[float, float]:
        """(mean cross-entropy, accuracy in %) on the evaluation images: :meth:`SearchState.evaluate`."""
        return self.state.evaluate(weights, mask, batch_stats=batch_stats)

    def eigenvalue(self, batch: Batch | None = None, weight_decay: float = 0.0) -> float:
        """Largest eigenvalue of the Hessian in the alphas of the loss on ``batch`` (default: the
        fixed, unaugmented eigen batch of the ``eigenvalue`` column) plus ``weight_decay / 2 *
        ||alpha||^2``, under the method's deterministic ``eval`` mixing and forward options (a
        sampling method's ``arch`` mixing is a random draw, drop path is random, and torch's
        Dirichlet sample is only once differentiable); the network in training mode, BN
        statistics untouched."""
        s = self.state
        x, y = self.loaders.eigen_batch if batch is None else batch
        with frozen_bn_stats(s.net):
            eig = dominant_eigenvalue(
                lambda a: F.cross_entropy(s.forward(x, s.mixing(a, phase="eval"), "eval"), y),
                s.alphas,
                softmax_groups=s.space.group_sizes if s.softmax_mixing else None,
                weight_decay=weight_decay,
            )
        return eig.value

    def alpha_rows(self, epoch: int) -> list[dict[str, Any]]:
        """Long-form alphas and their mixing weights after ``epoch``."""
        s = self.state
        return s.space.alpha_rows(epoch, s.alphas, s.mixing(phase="eval"))


def _repeat(loader: BatchLoader, epoch: int) -> Iterator[Batch]:
    """Epoch ``epoch`` of ``loader`` over and over (search-valid may have fewer batches than search-train)."""
    while True:
        yield from loader.epoch(epoch)
