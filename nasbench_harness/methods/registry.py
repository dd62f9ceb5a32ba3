"""Method names -> factories, imported lazily ("module:attr"), so listing methods is cheap."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nasbench_harness.errors import ConfigError

if TYPE_CHECKING:  # the registry itself stays torch-free, so `nbh search --help` starts fast
    from nasbench_harness.methods.base import Method

METHODS: dict[str, str] = {
    "darts": "nasbench_harness.methods.darts:darts",
    "darts-2nd": "nasbench_harness.methods.darts:darts_second_order",
    "darts-es": "nasbench_harness.methods.robust:darts_es",
    "darts-ada": "nasbench_harness.methods.robust:darts_ada",
    "rdarts-l2": "nasbench_harness.methods.robust:rdarts_l2",
    "rdarts-dp": "nasbench_harness.methods.robust:rdarts_dp",
    "sdarts-rs": "nasbench_harness.methods.sdarts:sdarts_rs",
    "sdarts-adv": "nasbench_harness.methods.sdarts:sdarts_adv",
    "darts-minus": "nasbench_harness.methods.variants:darts_minus",
    "beta-darts": "nasbench_harness.methods.variants:beta_darts",
    "fair-darts": "nasbench_harness.methods.variants:fair_darts",
    "gdas": "nasbench_harness.methods.sampling:gdas",
    "snas": "nasbench_harness.methods.sampling:snas",
    "drnas": "nasbench_harness.methods.sampling:drnas",
    "pc-darts": "nasbench_harness.methods.pcdarts:pc_darts",
    "sp-darts": "nasbench_harness.methods.sparse:sp_darts",
    "single-stage": "nasbench_harness.methods.sparse:single_stage",
    "rsws": "nasbench_harness.methods.rsws:rsws",
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

    from nasbench_harness.methods.options import DECLARED, describe_options

    make = factory(name)
    doc = inspect.getdoc(make) or "(no documentation)"
    make({})  # the factory declares its options model as it parses them
    model = DECLARED.get(name)
    options = "\n".join(describe_options(model)) if model and model.model_fields else "  (none)"
    return f"{name}: {METHOD_HELP.get(name, '')}\n\n{doc}\n\nOptions (--set method_options.NAME=VALUE):\n{options}"


def build_method(config: Any) -> tuple[Method, list[dict[str, Any]]]:
    """The method of a :class:`~nasbench_harness.methods.config.SearchConfig` with its plugins
    added as components, checked against the config's space; and the plugins' provenance."""
    from nasbench_harness.methods.plugins import Regularizer, load_plugin, plugin_provenance

    method = make_method(config.method, config.method_options)
    provenance = []
    for spec in config.plugins:
        cls = load_plugin(spec.ref)
        if issubclass(cls, Regularizer):
            component = cls(spec.weight, spec.params)
        elif spec.weight != 1.0:
            raise ConfigError(f"{spec.ref} is a {cls.__mro__[1].__name__}, not a regularizer: it takes no weight")
        else:
            component = cls(spec.params)
        method.components = [*method.components, component]
        provenance.append({"ref": spec.ref, "weight": spec.weight, "params": spec.params, **plugin_provenance(cls)})
    method.check_space(config.space)
    return method, provenance
