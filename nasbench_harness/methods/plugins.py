"""The plugin API: a new regularizer (or perturbation, sampler, early stopper) in one small file.

Subclass one of the four bases, declare typed parameters as a ``Params`` model
(:class:`~nasbench_harness.methods.options.Options`, i.e. pydantic) and implement one method:

=================  =====================================  ====================================
base               implement                              plugs into
=================  =====================================  ====================================
:class:`Regularizer`   ``penalty(state, weights, phase)``  the loss of ``phases`` (x ``weight``)
:class:`Perturbation`  ``perturb(state, weights)``         the weight step's mixing weights
:class:`Sampler`       ``sample(state, alphas, phase)``    alphas -> mixing weights
:class:`EarlyStopper`  ``should_stop(state, row)``         end of every epoch (a reason stops)
=================  =====================================  ====================================

Run it like a built-in: ``nbh search --regularizer path/to/file.py:MyReg --reg-weight 0.1
--reg-param key=value``, or ``mypkg.module:MyReg``, or the name of an installed entry point
(group ``nasbench_harness.regularizers``). :func:`nasbench_harness.testing.check_regularizer`
is the contract test to call on your class.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

import torch

from nasbench_harness.errors import ConfigError, TrainingError
from nasbench_harness.methods.base import Component, Phase, SearchState, Stop
from nasbench_harness.methods.options import Options, parse_options

ALL_SPACES = ("nb201", "nb1shot1-1", "nb1shot1-2", "nb1shot1-3")
ENTRY_POINT_GROUP = "nasbench_harness.regularizers"


class _Plugin(Component):
    """Shared by the four bases: typed ``Params``, declared ``spaces``, a column name."""

    Params: ClassVar[type[Options]] = Options
    spaces: ClassVar[tuple[str, ...]] = ALL_SPACES

    def __init__(self, params: Options | dict[str, Any] | None = None) -> None:
        label = type(self).__name__
        self.params = params if isinstance(params, Options) else parse_options(self.Params, params, label)
        if not isinstance(self.params, self.Params):
            raise ConfigError(f"{label} takes {self.Params.__name__} parameters, got {type(self.params).__name__}")

    @property
    def column(self) -> str:
        """The trajectory-column stem: ``name`` if the class sets one, else its name in lower case."""
        return self.name if type(self).name != Component.name else type(self).__name__.lower()

    def check_space(self, space: str) -> str | None:
        if space not in self.spaces:
            return f"{type(self).__name__} declares the spaces {', '.join(self.spaces)} only"
        return None


class Regularizer(_Plugin):
    """A penalty added to the loss of ``phases`` ("arch": the arch step, "weights": the weight step).

    ``penalty`` returns a finite 0-dim tensor, differentiable w.r.t. what it regularises (for an
    arch penalty: ``state.alphas``); it is multiplied by ``weight``. Column ``reg_<name>``: the
    unweighted penalty of the epoch's last step.
    """

    phases: ClassVar[tuple[str, ...]] = ("arch",)

    def __init__(self, weight: float = 1.0, params: Options | dict[str, Any] | None = None) -> None:
        super().__init__(params)
        self.weight = float(weight)
        self._last: float | None = None

    def penalty(self, state: SearchState, weights: torch.Tensor, phase: Phase) -> torch.Tensor:
        """The unweighted penalty (0-dim tensor)."""
        raise NotImplementedError(f"{type(self).__name__} must implement penalty(state, weights, phase)")

    def extra_loss(self, state: SearchState, phase: Phase, weights: torch.Tensor) -> torch.Tensor | None:
        if phase not in self.phases or self.weight == 0.0:
            return None
        value = self.penalty(state, weights, phase)
        if not isinstance(value, torch.Tensor) or value.dim() != 0:
            raise TrainingError(f"{type(self).__name__}.penalty must return a 0-dim tensor, got {value!r:.80}")
        self._last = float(value.detach())
        if not torch.isfinite(value):
            raise TrainingError(
                f"{type(self).__name__}.penalty returned {self._last} in epoch {state.epoch}, step {state.step + 1}"
            )
        return self.weight * value

    def state_columns(self) -> dict[str, float | int | str | None]:
        return {f"reg_{self.column}": self._last}


class Perturbation(_Plugin):
    """Changes the mixing weights the weight step trains under (as SDARTS does)."""

    def perturb(self, state: SearchState, weights: torch.Tensor) -> torch.Tensor:
        """The weights to train under, same shape as ``weights``."""
        raise NotImplementedError(f"{type(self).__name__} must implement perturb(state, weights)")

    def weight_step_weights(self, state: SearchState, weights: torch.Tensor) -> torch.Tensor:
        out = self.perturb(state, weights)
        if out.shape != weights.shape:
            raise TrainingError(f"{type(self).__name__}.perturb changed the weights' shape {tuple(weights.shape)}")
        return out


class Sampler(_Plugin):
    """Turns alphas into mixing weights for a phase (None: leave it to the default softmax)."""

    def sample(self, state: SearchState, alphas: torch.Tensor, phase: Phase) -> torch.Tensor | None:
        """Mixing weights for ``alphas`` in ``phase``."""
        raise NotImplementedError(f"{type(self).__name__} must implement sample(state, alphas, phase)")

    def mixing(self, state: SearchState, alphas: torch.Tensor, phase: Phase) -> torch.Tensor | None:
        return self.sample(state, alphas, phase)


class EarlyStopper(_Plugin):
    """Looks at every epoch's trajectory row; a returned reason stops the search."""

    def should_stop(self, state: SearchState, row: dict[str, Any]) -> str | None:
        """A reason to stop after this epoch, or None."""
        raise NotImplementedError(f"{type(self).__name__} must implement should_stop(state, row)")

    def end_of_epoch(self, state: SearchState, row: dict[str, Any]) -> Any:
        reason = self.should_stop(state, row)
        return Stop(reason) if reason else None


# -- built-in regularizers ---------------------------------------------------------------------


class Entropy(Regularizer):
    """``sum_e H(softmax(alpha_e))`` over the softmax groups (edges): low when each edge is decided."""

    name = "entropy"

    def penalty(self, state: SearchState, weights: torch.Tensor, phase: Phase) -> torch.Tensor:
        from nasbench_harness.methods.components.regularizers import groups_of

        total = state.alphas.new_zeros(())
        for group in groups_of(state.alphas, state.space.group_sizes):
            log_p = torch.log_softmax(group, dim=0)
            total = total - (log_p.exp() * log_p).sum()
        return total


class BetaDecayPenalty(Regularizer):
    """beta-DARTS's ``mean_e logsumexp(alpha_e)`` at a constant weight (beta-darts ramps it)."""

    name = "beta_decay"

    def penalty(self, state: SearchState, weights: torch.Tensor, phase: Phase) -> torch.Tensor:
        from nasbench_harness.methods.components.regularizers import beta_decay_loss

        return beta_decay_loss(state.alphas, state.space.group_sizes)


class ZeroOnePenalty(Regularizer):
    """FairDARTS's zero-one loss ``-(1/N) sum (sigmoid(alpha) - 0.5)^2`` at a constant weight."""

    name = "zero_one"

    def penalty(self, state: SearchState, weights: torch.Tensor, phase: Phase) -> torch.Tensor:
        from nasbench_harness.methods.components.regularizers import zero_one_loss

        return zero_one_loss(state.alphas)


BUILTIN_REGULARIZERS: dict[str, type[Regularizer]] = {
    "entropy": Entropy,
    "beta-decay": BetaDecayPenalty,
    "zero-one": ZeroOnePenalty,
}


# -- loading -----------------------------------------------------------------------------------


def load_regularizer(ref: str) -> type[Regularizer]:
    """The :class:`Regularizer` class named by ``ref``: ``path/to/file.py:Class``,
    ``package.module:Class``, a built-in name (:data:`BUILTIN_REGULARIZERS`) or an installed
    entry point of the group ``nasbench_harness.regularizers``."""
    cls = load_plugin(ref, Regularizer)
    return cls  # type: ignore[return-value]


def load_plugin(ref: str, base: type[_Plugin] | None = None) -> type[_Plugin]:
    """The plugin class named by ``ref`` (see :func:`load_regularizer`), checked to subclass
    ``base`` (default: any of :class:`Regularizer`, :class:`Perturbation`, :class:`Sampler`,
    :class:`EarlyStopper`)."""
    base = base or _Plugin
    ref = ref.strip()
    if ":" in ref:
        where, _, attr = ref.rpartition(":")
        module = _import_file(where) if where.endswith(".py") or "/" in where else _import_module(where)
        obj = getattr(module, attr, None)
        if obj is None:
            found = [
                n
                for n, v in vars(module).items()
                if inspect.isclass(v) and issubclass(v, _Plugin) and v.__module__ == module.__name__
            ]
            raise ConfigError(f"{where} has no {attr!r}; plugin classes defined there: {', '.join(found) or 'none'}")
    else:
        obj = _named(ref)
    if not (inspect.isclass(obj) and issubclass(obj, base)):
        wanted = "plugin" if base is _Plugin else base.__name__
        raise ConfigError(
            f"{ref} is not a {wanted} class (a subclass of Regularizer, Perturbation, Sampler or EarlyStopper "
            f"from nasbench_harness.methods.plugins); got {obj!r:.80}"
        )
    return obj


def plugin_provenance(cls: type) -> dict[str, Any]:
    """Where a plugin class came from: module, file and the file's SHA-256 (for the manifest)."""
    try:
        source = inspect.getsourcefile(cls)
    except TypeError:
        source = None
    digest = hashlib.sha256(Path(source).read_bytes()).hexdigest() if source and Path(source).is_file() else None
    return {"class": f"{cls.__module__}:{cls.__qualname__}", "file": source, "sha256": digest}


def _named(name: str) -> Any:
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if name in BUILTIN_REGULARIZERS and found:
        raise ConfigError(
            f"regularizer name {name!r} is both built in ({BUILTIN_REGULARIZERS[name].__module__}:"
            f"{BUILTIN_REGULARIZERS[name].__name__}) and the entry point {found[0].value} of "
            f"{found[0].dist.name if found[0].dist else 'an installed package'}; "
            f"name the class explicitly as module:Class"
        )
    if name in BUILTIN_REGULARIZERS:
        return BUILTIN_REGULARIZERS[name]
    if len(found) > 1:
        raise ConfigError(
            f"regularizer name {name!r} is defined by several entry points: {', '.join(ep.value for ep in found)}; "
            "name the class explicitly as module:Class"
        )
    if found:
        return found[0].load()
    raise ConfigError(
        f"unknown regularizer {name!r}; use path/to/file.py:Class, package.module:Class, an installed "
        f"entry point ({ENTRY_POINT_GROUP}), or a built-in: {', '.join(BUILTIN_REGULARIZERS)}"
    )


def _import_file(path: str) -> Any:
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"plugin file {file} does not exist; give the path to a .py file, e.g. my_reg.py:MyReg")
    module_name = "nbh_plugin_" + hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:12]
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot load {file} as a Python module; is it a .py file?")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise ConfigError(f"importing plugin file {file} failed: {type(exc).__name__}: {exc}") from exc
    return module


def _import_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ConfigError(
            f"cannot import plugin module {name!r} ({exc}); is the package installed, or did you mean a file path?"
        ) from exc
