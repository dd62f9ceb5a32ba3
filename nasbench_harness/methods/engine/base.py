"""What a search method is: an architecture step plus components plugged into fixed hook points.

The loop (:mod:`nasbench_harness.methods.engine.loop`) calls, for every batch pair:

1. ``method.arch_step.step(state, train_batch, valid_batch)``: update the alphas;
2. ``component.mixing(state, alphas, phase)``: how alphas become the supernet's mixing weights
   in a phase (``"arch"``, ``"weights"``, ``"eval"``); the first component that answers wins,
   else the space's softmax per edge (GDAS: a hard Gumbel sample; DrNAS: a Dirichlet sample);
3. ``component.weight_step_weights(state, weights)``: a change of the weight step's mixing
   weights (SDARTS: a perturbation);
4. ``component.forward_options(state, phase)``: keyword options of the supernet's forward
   (R-DARTS(DP): ``drop_prob``);
5. ``component.extra_loss(state, phase, weights)``: regularisers added to the loss of the
   weight step (``phase="weights"``) or the arch step (``phase="arch"``);

``component.arch_step_on(state)`` may turn step 1 off for an epoch (single-stage after freezing);
and after each epoch ``component.end_of_epoch(state, row)``, which may stop the search
(:class:`Stop`, e.g. early stopping on the Hessian eigenvalue) or roll it back to an earlier
snapshot (:class:`Rollback`, DARTS-ADA), and ``state.derive()`` (a component's ``derive``, else
the space's argmax rule). Components report ``state_columns()`` into the trajectory and say in
``check_space`` when they cannot run on a space. They measure through the state's services
(``state.evaluate``, ``state.evaluate_genotype``, ``state.eigenvalue``) rather than their own
copies. No hook knows which method it belongs to.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F

from nasbench_harness.errors import TrainingError
from nasbench_harness.methods.components.hessian import eval_mode, frozen_bn_stats
from nasbench_harness.methods.engine.adapters import SearchSpaceAdapter
from nasbench_harness.methods.engine.options import Options, parse_options
from nasbench_harness.methods.engine.watch import FiniteWatch, WatchError

Batch = tuple[torch.Tensor, torch.Tensor]


Phase = str
"""``"arch"`` (the arch step), ``"weights"`` (the weight step) or ``"eval"`` (end-of-epoch measurements)."""


class Stop(NamedTuple):
    """End the search after this epoch; ``result_epoch`` names the epoch whose genotype is the
    method's answer (None: the last one)."""

    reason: str
    result_epoch: int | None = None


class Rollback(NamedTuple):
    """Continue from ``snapshot`` (a :meth:`SearchState.snapshot` taken after epoch ``to_epoch``)."""

    to_epoch: int
    snapshot: dict[str, Any]
    reason: str


EpochAction = Stop | Rollback | None


@dataclass
class SearchState:
    """The live objects of a search, handed to every hook.

    ``epoch`` is the epoch of the schedule being trained (1-based; after a rollback it repeats
    earlier values), ``step`` the batch within it. Set by the loop: ``snapshot``/``restore``, the
    full state (network, alphas, optimisers, schedule, components) as a detached copy, and back;
    ``batch``, the current search-train batch (during the arch and weight steps);
    ``arch_batch``, the arch step's search-valid batch (after an epoch: the epoch's last one);
    ``eval_batches``, the end-of-epoch evaluation images (a fixed subset of search-valid);
    ``eigenvalue(batch, weight_decay)``, the largest eigenvalue of the Hessian in the alphas of
    the loss on ``batch`` plus ``weight_decay / 2 * ||alpha||^2`` (network in training mode, BN
    statistics untouched, the method's ``eval`` mixing).

    Services for components: :meth:`evaluate` (the supernet under given mixing weights on the
    evaluation images), :meth:`evaluate_genotype` (a derived final net with inherited weights),
    :meth:`arch_step_on` (whether the alphas are trained in this epoch).
    """

    net: torch.nn.Module
    alphas: torch.nn.Parameter
    w_optim: torch.optim.Optimizer
    a_optim: torch.optim.Optimizer
    grad_clip: float | None
    method: Method
    space: SearchSpaceAdapter
    epoch: int = 0
    step: int = 0
    epochs: int = 0
    snapshot: Callable[[], dict[str, Any]] | None = None
    restore: Callable[[dict[str, Any]], int] | None = None
    batch: Batch | None = None
    arch_batch: Batch | None = None
    eval_batches: Callable[[], Iterable[Batch]] | None = None
    valid_batches: Callable[[int], Iterator[Batch]] | None = None
    """Search-valid batches in pass ``k``'s order, endlessly (ENAS trains its controller on them)."""
    eigenvalue: Callable[[Batch, float], float] | None = None
    compiled_net: Callable[..., torch.Tensor] | None = None
    """``torch.compile`` of ``net`` (``speed.compile``), used by the arch and weight steps' forwards
    without a path mask; evaluations, final nets, sampled paths and the Hessian stay eager."""
    weight_step_graph: Any = None
    """The captured weight step (``speed.cuda_graph``, :mod:`.graphs`), None to run it eagerly."""
    weight_step_dtype: torch.dtype | None = None
    """The autocast dtype of the weight step (``speed.amp_bf16``: bfloat16), None for full precision."""
    steps: int = 0
    """Batches per epoch (set by the loop)."""
    finite: FiniteWatch = field(default_factory=FiniteWatch, repr=False)
    """What :meth:`watch` keeps on the device until :meth:`check_finite` reads it."""

    def mixing(self, alphas: torch.Tensor | None = None, phase: Phase = "arch") -> torch.Tensor:
        """The mixing weights the supernet sees for ``alphas`` (default: the current ones) in ``phase``."""
        alphas = self.alphas if alphas is None else alphas
        for component in self.method.all_components:
            weights = component.mixing(self, alphas, phase)
            if weights is not None:
                return weights
        return self.space.softmax(alphas)

    @property
    def softmax_mixing(self) -> bool:
        """True when no component replaces the space's softmax (the Hessian then uses its basis)."""
        return not any(type(c).mixing is not Component.mixing for c in self.method.all_components)

    def derive(self) -> Any:
        """The genotype the method returns for the current alphas."""
        for component in self.method.all_components:
            genotype = component.derive(self)
            if genotype is not None:
                return genotype
        return self.space.derive(self.alphas, self.method.include_none)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, phase: Phase) -> torch.Tensor:
        """Logits of the supernet under ``weights`` with the components' forward options for ``phase``."""
        options: dict[str, Any] = {}
        for component in self.method.all_components:
            options.update(component.forward_options(self, phase))
        if self.compiled_net is not None and phase != "eval" and options.get("mask") is None:
            return self.compiled_net(x, weights, **options)
        return self.net(x, weights, **options)

    def loss(self, batch: Batch, weights: torch.Tensor, phase: Phase) -> tuple[torch.Tensor, torch.Tensor]:
        """(cross-entropy + the components' extra terms for ``phase``, logits).

        Every extra term must be a 0-dim tensor (a :class:`TrainingError` naming the component
        at once otherwise) and finite: that is :meth:`watch`ed, so a non-finite term fails the run,
        naming the component, at the next :meth:`check_finite`.
        """
        x, y = batch
        logits = self.forward(x, weights, phase)
        loss = F.cross_entropy(logits, y)
        for component in self.method.all_components:
            extra = component.extra_loss(self, phase, weights)
            if extra is not None:
                self._check_term(component, extra, phase)
                loss = loss + extra
        return loss, logits

    def watch(self, key: Hashable, value: torch.Tensor, error: WatchError) -> None:
        """Keep, on the device, whether and when in this epoch ``value`` was first not finite
        (:class:`~nasbench_harness.methods.engine.watch.FiniteWatch`); :meth:`check_finite`
        raises ``error(where, value)`` for the earliest."""
        self.finite.watch(self.step, key, value, error)

    def check_finite(self, *also: torch.Tensor) -> list[float]:
        """Read every watched flag and ``also`` in one host read; raise the error of the quantity
        that went non-finite first; return ``also``'s values, flattened."""
        return self.finite.check(self.epoch, *also)

    def _check_term(self, component: Component, extra: Any, phase: Phase) -> None:
        if not isinstance(extra, torch.Tensor) or extra.dim() != 0:
            raise TrainingError(
                f"{component_label(component)}.extra_loss returned {extra!r:.80} for the {phase} loss; it must return "
                "a 0-dim tensor (or None to add nothing). The run stops here and keeps the epochs already written"
            )
        label = component_label(component)
        self.watch(("term", id(component), phase), extra, lambda where, v: _nonfinite_term(label, phase, v, where))

    @torch.no_grad()
    def evaluate(
        self,
        weights: torch.Tensor,
        mask: Any = None,
        *,
        batch_stats: bool = False,
        batches: Iterable[Batch] | None = None,
    ) -> tuple[float, float]:
        """(mean cross-entropy, accuracy in %) of the supernet under ``weights`` (and the path
        ``mask``) on ``batches``, default the end-of-epoch evaluation images.

        ``batch_stats=False``: eval mode (the supernet as it is). ``True`` (final nets): every BN
        normalises with the batch's statistics, since a discretised net's activations differ from
        the supernet's running statistics; those statistics are left untouched. The sums stay on
        the device and are read once.
        """
        if batches is None:
            if self.eval_batches is None:
                raise RuntimeError("SearchState.evaluate needs batches: the state has no evaluation images")
            batches = self.eval_batches()
        loss_sum = correct = torch.zeros((), dtype=torch.float64, device=self.alphas.device)
        count = 0
        with frozen_bn_stats(self.net) if batch_stats else eval_mode(self.net):
            for x, y in batches:
                logits = self.net(x, weights, mask=mask)
                loss_sum = loss_sum + F.cross_entropy(logits, y, reduction="sum").double()
                correct = correct + (logits.argmax(1) == y).sum()
                count += y.numel()
        if count == 0:
            raise RuntimeError("SearchState.evaluate got no images")
        loss, hits = torch.stack([loss_sum, correct]).tolist()
        return loss / count, 100.0 * hits / count

    def final_net_batch_stats(self) -> bool:
        """Whether derived final nets are evaluated with batch statistics: the first component's
        answer (single-stage once frozen: no), else yes."""
        rules = (c.final_net_batch_stats(self) for c in self.method.all_components)
        return next((r for r in rules if r is not None), True)

    def evaluate_genotype(self, genotype: Any, batches: Iterable[Batch] | None = None) -> float:
        """Accuracy (%) of ``genotype``'s final net inheriting the supernet's weights: only its
        path is computed (the space's mask), BN as :meth:`final_net_batch_stats` says."""
        weights, mask = self.space.final_net(genotype, self.alphas.device)
        return self.evaluate(weights, mask, batch_stats=self.final_net_batch_stats(), batches=batches)[1]

    def arch_step_on(self) -> bool:
        """Whether the arch step runs in this epoch: no component's ``arch_step_on`` says no."""
        return all(c.arch_step_on(self) is not False for c in self.method.all_components)

    @property
    def weight_lr(self) -> float:
        """The weight optimiser's current learning rate."""
        return float(self.w_optim.param_groups[0]["lr"])

    @property
    def progress(self) -> float:
        """Fraction of the schedule done at the start of this epoch: (epoch - 1) / (epochs - 1), in [0, 1]."""
        return 0.0 if self.epochs <= 1 else min(1.0, max(0.0, (self.epoch - 1) / (self.epochs - 1)))


def component_label(component: Any) -> str:
    """How errors name ``component``: its plugin reference and class when it was named as a
    plugin (``plugin my_reg.py:MyReg``), else its class name."""
    ref = getattr(type(component), "plugin_ref", None)
    return f"plugin {ref}" if ref else type(component).__name__


def _nonfinite_term(label: str, phase: Phase, value: float | None, where: str) -> TrainingError:
    return TrainingError(
        f"{label} added a non-finite term ({value}) to the {phase} loss {where}; the run stops here and keeps "
        "the epochs already written. Fix the component (nasbench_harness.testing.check_regularizer tests a "
        "regularizer's contract), lower its weight, or run without it"
    )


class Component:
    """A piece of a method. Every hook is optional; the defaults change nothing."""

    name = "component"

    def check_space(self, space: str) -> str | None:
        """Why this component cannot run on ``space`` (e.g. "nb1shot1-2"), or None when it can."""
        return None

    def build_net(self, space: Any, model: Any, num_classes: int) -> torch.nn.Module | None:
        """A supernet of its own for the space adapter ``space`` and the config's ``model`` section
        (PC-DARTS: partial channels), or None for the space's standard one."""
        return None

    def setup(self, state: SearchState) -> None:
        """Called once the network, alphas and optimisers exist (before a resumed run's restore)."""

    def arch_step_on(self, state: SearchState) -> bool | None:
        """False to skip the arch step in ``state.epoch`` (the alphas stay as they are: single-stage
        after freezing, rsws always); None (the default) leaves it on. The loop still draws the
        arch batch, so the data order and ``state.arch_batch`` do not depend on it."""
        return None

    def mixing(self, state: SearchState, alphas: torch.Tensor, phase: Phase) -> torch.Tensor | None:
        """The mixing weights for ``alphas`` in ``phase``; None leaves it to later components / the softmax."""
        return None

    def weight_step_weights(self, state: SearchState, weights: torch.Tensor) -> torch.Tensor:
        """The mixing weights the weight step trains under."""
        return weights

    def forward_options(self, state: SearchState, phase: Phase) -> dict[str, Any]:
        """Keyword options for the supernet's forward in ``phase`` (e.g. ``{"drop_prob": 0.2}``)."""
        return {}

    def extra_loss(self, state: SearchState, phase: Phase, weights: torch.Tensor) -> torch.Tensor | None:
        """A term added to the loss of ``phase`` ("weights" or "arch")."""
        return None

    def end_of_epoch(self, state: SearchState, row: dict[str, Any]) -> EpochAction | str:
        """Look at the finished epoch's trajectory row; :class:`Stop` (or a reason string),
        :class:`Rollback`, or None to go on."""
        return None

    def derive(self, state: SearchState) -> Any:
        """The genotype this method returns now, or None for the space's argmax rule."""
        return None

    def final_net_batch_stats(self, state: SearchState) -> bool | None:
        """Whether the derived final net is evaluated with batch statistics in every BN (the
        loop's rule, for nets cut out of a supernet), or False once the final net is what was
        trained (single-stage after freezing); None leaves it to the loop."""
        return None

    def state_columns(self) -> dict[str, float | int | str | None]:
        """Method-state values for the trajectory (e.g. the current epsilon)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of this component."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` on resume."""


class ArchStep(Component):
    """How the alphas are updated from a (train batch, valid batch) pair."""

    name = "arch-step"

    def step(self, state: SearchState, train: Batch, valid: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Update ``state.alphas``; return (valid loss, valid logits) of the supernet, detached."""
        raise NotImplementedError


@dataclass
class Method:
    """A search method: an arch step and components. ``include_none`` decides whether NB201's
    ``none`` may win an edge under the space's argmax rule."""

    name: str
    arch_step: ArchStep
    components: Sequence[Component] = field(default_factory=list)
    include_none: bool = True

    @property
    def all_components(self) -> list[Component]:
        """The arch step followed by the other components."""
        return [self.arch_step, *self.components]

    def check_space(self, space: str) -> None:
        """ConfigError when a component cannot run on ``space``."""
        from nasbench_harness.errors import ConfigError

        for component in self.all_components:
            reason = component.check_space(space)
            if reason:
                raise ConfigError(f"method {self.name!r} cannot run on {space}: {reason}")

    def state_columns(self) -> dict[str, Any]:
        """All components' method-state columns."""
        out: dict[str, Any] = {}
        for component in self.all_components:
            out.update(component.state_columns())
        return out


class Plugin(Component):
    """A component a user may write and name on the command line: typed ``Params`` (a pydantic
    :class:`~nasbench_harness.methods.engine.options.Options` model), the ``spaces`` it declares,
    and the stem of its trajectory columns. The bases of the plugin API (regularizers,
    perturbations, samplers, early stoppers) derive from it, and so do the built-ins of each kind."""

    Params: ClassVar[type[Options]] = Options
    spaces: ClassVar[tuple[str, ...]] = ()
    """The spaces it runs on; empty: every registered space."""

    def __init__(self, params: Options | dict[str, Any] | None = None) -> None:
        from nasbench_harness.errors import ConfigError

        label = type(self).__name__
        self.params = params if isinstance(params, Options) else parse_options(self.Params, params, label)
        if not isinstance(self.params, self.Params):
            raise ConfigError(f"{label} takes {self.Params.__name__} parameters, got {type(self.params).__name__}")

    @property
    def column(self) -> str:
        """The trajectory-column stem: ``name`` if the class sets one, else its name in lower case."""
        return self.name if type(self).name != Component.name else type(self).__name__.lower()

    def check_space(self, space: str) -> str | None:
        if self.spaces and space not in self.spaces:
            return f"{type(self).__name__} declares the spaces {', '.join(self.spaces)} only"
        return None
