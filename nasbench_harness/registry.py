"""Names -> the things they name, imported lazily: methods ("module:attr", so listing them is
cheap and torch-free) and plugins (``path/to/file.py:Class``, ``package.module:Class``, a built-in
name or an installed entry point)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import importlib.util
import inspect
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasbench_harness.errors import ConfigError, NbhError, TrainingError

if TYPE_CHECKING:  # the registry itself stays torch-free, so `nbh search --help` starts fast
    from nasbench_harness.methods.components.regularizers import Regularizer
    from nasbench_harness.methods.engine.base import Method, Plugin

METHODS: dict[str, str] = {
    "darts": "nasbench_harness.methods.zoo.darts:darts",
    "darts-2nd": "nasbench_harness.methods.zoo.darts:darts_second_order",
    "darts-es": "nasbench_harness.methods.zoo.rdarts:darts_es",
    "darts-ada": "nasbench_harness.methods.zoo.rdarts:darts_ada",
    "rdarts-l2": "nasbench_harness.methods.zoo.rdarts:rdarts_l2",
    "rdarts-dp": "nasbench_harness.methods.zoo.rdarts:rdarts_dp",
    "sdarts-rs": "nasbench_harness.methods.zoo.sdarts:sdarts_rs",
    "sdarts-adv": "nasbench_harness.methods.zoo.sdarts:sdarts_adv",
    "darts-minus": "nasbench_harness.methods.zoo.darts_minus:darts_minus",
    "beta-darts": "nasbench_harness.methods.zoo.beta_darts:beta_darts",
    "fair-darts": "nasbench_harness.methods.zoo.fair_darts:fair_darts",
    "gdas": "nasbench_harness.methods.zoo.gdas:gdas",
    "snas": "nasbench_harness.methods.zoo.snas:snas",
    "drnas": "nasbench_harness.methods.zoo.drnas:drnas",
    "pc-darts": "nasbench_harness.methods.zoo.pc_darts:pc_darts",
    "sp-darts": "nasbench_harness.methods.zoo.sp_darts:sp_darts",
    "single-stage": "nasbench_harness.methods.zoo.single_stage:single_stage",
    "rsws": "nasbench_harness.methods.zoo.rsws:rsws",
    "setn": "nasbench_harness.methods.zoo.setn:setn",
    "enas": "nasbench_harness.methods.zoo.enas:enas",
}
"""Registered methods; a factory takes the ``method_options`` dict and returns a :class:`Method`."""
METHOD_HELP: dict[str, str] = {
    "darts": "DARTS, first order (method_options.order=2: second order)",
    "darts-2nd": "DARTS, second order (unrolled, finite-difference Hessian-vector product)",
    "darts-es": "DARTS with early stopping on the growth of the Hessian eigenvalue (R-DARTS)",
    "darts-ada": "DARTS, rolled back with 10x weight decay when the eigenvalue grows (R-DARTS)",
    "rdarts-l2": "R-DARTS(L2): DARTS with a larger weight decay",
    "rdarts-dp": "R-DARTS(DP): DARTS with ScheduledDropPath on every mixed op",
    "sdarts-rs": "SDARTS-RS: weight step under randomly perturbed mixing weights",
    "sdarts-adv": "SDARTS-ADV: weight step under adversarially (PGD) perturbed mixing weights",
    "darts-minus": "DARTS-: an auxiliary skip connection whose weight decays from 1 to 0",
    "beta-darts": "beta-DARTS: beta-decay regularisation of the alphas",
    "fair-darts": "FairDARTS: independent sigmoids and the zero-one loss",
    "gdas": "GDAS: one op per edge by Gumbel-max sampling, temperature 10 -> 0.1",
    "snas": "SNAS: relaxed Gumbel-softmax samples, alphas trained on the training loss",
    "drnas": "DrNAS: Dirichlet-distributed mixing weights",
    "pc-darts": "PC-DARTS: partial channel connections and edge normalisation",
    "sp-darts": "SP-DARTS: sparse low-temperature softmax with mixed-sparsity training",
    "single-stage": "single-stage: hard Gumbel samples, frozen architecture keeps training",
    "rsws": "random search with weight sharing",
    "setn": "SETN: uniform paths, first-order alphas, the best of the most probable cells",
    "enas": "ENAS: an LSTM controller samples the paths and learns by REINFORCE after each epoch",
}
"""One line per method for `nbh methods` and `--help`; the factory's docstring has the details."""


def make_method(name: str, options: dict[str, Any] | None = None) -> Method:
    """The method registered as ``name``, built with ``options``."""
    return factory(name)(dict(options or {}))


def factory(name: str) -> Any:
    """The factory registered as ``name`` (imported on demand)."""
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; registered methods: {', '.join(sorted(METHODS))}")
    module, _, attr = METHODS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def describe(name: str) -> str:
    """``name``'s one-line summary and its factory's documentation (paper, formula, defaults, columns)."""
    import inspect

    from nasbench_harness.methods.engine.options import DECLARED, describe_options

    make = factory(name)
    doc = inspect.getdoc(make) or "(no documentation)"
    make({})  # the factory declares its options model as it parses them
    model = DECLARED.get(name)
    options = "\n".join(describe_options(model)) if model and model.model_fields else "  (none)"
    return f"{name}: {METHOD_HELP.get(name, '')}\n\n{doc}\n\nOptions (--set method_options.NAME=VALUE):\n{options}"


def build_method(config: Any) -> tuple[Method, list[dict[str, Any]]]:
    """The method of a :class:`~nasbench_harness.config.SearchConfig` with its plugins
    added as components, checked against the config's space; and the plugins' provenance."""
    from nasbench_harness.methods.components.regularizers import Regularizer

    method = make_method(config.method, config.method_options)
    provenance = []
    for spec in config.plugins:
        cls = load_plugin(spec.ref)
        weight = spec.weight if isinstance(spec.weight, float) else spec.weight.model_dump()
        if not issubclass(cls, Regularizer) and weight != 1.0:
            raise ConfigError(f"{spec.ref} is a {cls.__mro__[1].__name__}, not a regularizer: it takes no weight")
        guarded = guard_plugin(cls, spec.ref, config.plugin_timeout_s or getattr(cls, "timeout_s", None))
        args = (weight, spec.params) if issubclass(cls, Regularizer) else (spec.params,)
        try:
            component = guarded(*args)
        except NbhError:
            raise
        except (Exception, SystemExit) as exc:  # a plugin's __init__ is its author's code
            raise ConfigError(f"plugin {spec.ref}: creating it failed: {_what(exc)}") from exc
        method.components = [*method.components, component]
        provenance.append({"ref": spec.ref, "weight": weight, "params": spec.params, **plugin_provenance(cls)})
    method.check_space(config.space)
    return method, provenance


ENTRY_POINT_GROUP = "nasbench_harness.regularizers"


def load_regularizer(ref: str) -> type[Regularizer]:
    """The :class:`Regularizer` class named by ``ref``: ``path/to/file.py:Class``,
    ``package.module:Class``, a built-in name (:data:`BUILTIN_REGULARIZERS`) or an installed
    entry point of the group ``nasbench_harness.regularizers``."""
    from nasbench_harness.methods.components.regularizers import Regularizer

    cls = load_plugin(ref, Regularizer)
    return cls  # type: ignore[return-value]


def load_plugin(ref: str, base: type[Plugin] | None = None) -> type[Plugin]:
    """The plugin class named by ``ref`` (see :func:`load_regularizer`), checked to subclass
    ``base`` (default: any of :class:`Regularizer`, :class:`Perturbation`, :class:`Sampler`,
    :class:`EarlyStopper`)."""
    from nasbench_harness.methods.engine.base import Plugin

    base = base or Plugin
    ref = ref.strip()
    if ":" in ref:
        where, _, attr = ref.rpartition(":")
        module = _import_file(where) if where.endswith(".py") or "/" in where else _import_module(where)
        obj = getattr(module, attr, None)
        if obj is None:
            found = [
                n
                for n, v in vars(module).items()
                if inspect.isclass(v)
                and issubclass(v, Plugin)
                and (v.__module__ == module.__name__ or n in getattr(module, "__all__", ()))
            ]
            raise ConfigError(f"{where} has no {attr!r}; plugin classes defined there: {', '.join(found) or 'none'}")
    else:
        obj = _named(ref)
    if not (inspect.isclass(obj) and issubclass(obj, base)):
        wanted = "plugin" if base is Plugin else base.__name__
        raise ConfigError(
            f"{ref} is not a {wanted} class (a subclass of Regularizer, Perturbation, Sampler or EarlyStopper "
            f"from nasbench_harness.plugins); got {obj!r:.80}"
        )
    return obj


PLUGIN_TRUST = "plugins are Python code, run with your permissions: name only plugins you trust"
"""The note the manifest keeps beside every plugin (see the README, "What is trusted")."""


def plugin_provenance(cls: type) -> dict[str, Any]:
    """Where a plugin class came from: module, file and the file's SHA-256, and the trust note
    (for the manifest)."""
    try:
        source = inspect.getsourcefile(cls)
    except TypeError:
        source = None
    digest = hashlib.sha256(Path(source).read_bytes()).hexdigest() if source and Path(source).is_file() else None
    return {"class": f"{cls.__module__}:{cls.__qualname__}", "file": source, "sha256": digest, "trust": PLUGIN_TRUST}


def _named(name: str) -> Any:
    from nasbench_harness.methods.components.regularizers import BUILTIN_REGULARIZERS

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
        try:
            return found[0].load()
        except (Exception, SystemExit) as exc:
            raise ConfigError(f"loading the entry point {name!r} ({found[0].value}) failed: {_what(exc)}") from exc
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
    except (Exception, SystemExit) as exc:  # importing runs the file: sys.exit() there must not end nbh silently
        del sys.modules[module_name]
        raise ConfigError(f"importing plugin file {file} failed: {_what(exc)}") from exc
    return module


def _import_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ConfigError(
            f"cannot import plugin module {name!r} ({exc}); is the package installed, or did you mean a file path?"
        ) from exc
    except (Exception, SystemExit) as exc:
        raise ConfigError(f"importing plugin module {name!r} failed: {_what(exc)}") from exc


def _what(exc: BaseException) -> str:
    """``exc`` in a few words for a message: its type and first line (``sys.exit(3)`` for SystemExit)."""
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r:.40}); a plugin must not end the process"
    first = (str(exc).splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:160]}"


# -- plugins at run time ----------------------------------------------------------------------
HOOKS = (
    "build_net", "setup", "arch_step_on", "mixing", "weight_step_weights", "forward_options", "extra_loss",
    "end_of_epoch", "derive", "final_net_batch_stats", "state_columns", "state_dict", "load_state_dict",
)  # fmt: skip
"""The component hooks through which the loop runs a plugin's code (see ``methods.engine.base``)."""


def guard_plugin(cls: type[Plugin], ref: str, timeout_s: float | None = None) -> type[Plugin]:
    """A subclass of ``cls`` (same name, same behaviour) whose hooks fail the run with a
    :class:`TrainingError` naming the plugin ``ref`` when they raise (a package error passes
    unchanged) or, with ``timeout_s``, when one call runs longer than that many seconds.

    The time bound is a ``SIGALRM`` timer (POSIX, main thread; elsewhere no bound): it interrupts
    Python code, but a call stuck inside one C function (a torch op) ends only when that returns.
    """
    from nasbench_harness.methods.engine.base import Component

    if timeout_s is not None and not timeout_s > 0:
        raise ConfigError(f"plugin {ref}: timeout_s must be a number of seconds > 0, got {timeout_s!r:.40}")
    hooks = {}
    for hook in HOOKS:
        method = getattr(cls, hook, None)
        if callable(method) and method is not getattr(Component, hook, None):  # only code the plugin brings
            hooks[hook] = _guarded(method, hook, f"plugin {ref}", timeout_s)
    names = {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__}
    return type(cls.__name__, (cls,), {**names, **hooks, "plugin_ref": ref})


def _guarded(method: Callable[..., Any], hook: str, label: str, timeout_s: float | None) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        state = args[0] if args else None
        try:
            if timeout_s is None:
                return method(self, *args, **kwargs)
            with time_limit(timeout_s, f"{label} did not return from {hook}() within {timeout_s:g} s{_at(state)}"):
                return method(self, *args, **kwargs)
        except NbhError:
            raise
        except (Exception, SystemExit) as exc:  # not KeyboardInterrupt nor a termination signal
            raise TrainingError(
                f"{label} failed in {hook}(){_at(state)}: {_what(exc)}; the run stops here and keeps the epochs "
                "already written"
            ) from exc

    return call


def _at(state: Any) -> str:
    epoch, step = getattr(state, "epoch", None), getattr(state, "step", None)
    return f" (epoch {epoch}, step {step + 1})" if isinstance(epoch, int) and isinstance(step, int) else ""


_DEADLINES: list[tuple[float, str]] = []
"""(monotonic deadline, message) of the armed time limits, innermost (and earliest) last."""


@contextlib.contextmanager
def time_limit(seconds: float, message: str) -> Iterator[None]:
    """Raise ``TrainingError(message)`` in the main thread when the block runs longer than
    ``seconds`` (SIGALRM); nested limits keep the earlier deadline. No limit off the main thread
    or without ``signal.setitimer``."""
    now = time.monotonic()
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable or (_DEADLINES and _DEADLINES[-1][0] <= now + seconds):  # an outer limit ends first
        yield
        return
    previous = None if _DEADLINES else signal.signal(signal.SIGALRM, _on_alarm)
    _DEADLINES.append((now + seconds, message))
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _DEADLINES.pop()
        if _DEADLINES:
            signal.setitimer(signal.ITIMER_REAL, max(_DEADLINES[-1][0] - time.monotonic(), 1e-3))
        else:
            signal.signal(signal.SIGALRM, signal.SIG_DFL if previous is None else previous)


def _on_alarm(signum: int, frame: Any) -> None:
    if _DEADLINES:
        raise TrainingError(
            f"{_DEADLINES[-1][1]}; the run stops here and keeps the epochs already written. Fix the plugin, or "
            "give it more time (--set plugin_timeout_s=SECONDS, or the plugin class's timeout_s)"
        )
