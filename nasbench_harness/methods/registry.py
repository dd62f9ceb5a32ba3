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
}
"""Registered methods; a factory takes the ``method_options`` dict and returns a :class:`Method`."""
METHOD_HELP: dict[str, str] = {
    "darts": "DARTS, first order (method_options.order=2: second order)",
    "darts-2nd": "DARTS, second order (unrolled, finite-difference Hessian-vector product)",
}


def make_method(name: str, options: dict[str, Any] | None = None) -> Method:
    """The method registered as ``name``, built with ``options``."""
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; registered methods: {', '.join(sorted(METHODS))}")
    module, _, attr = METHODS[name].partition(":")
    factory = getattr(importlib.import_module(module), attr)
    return factory(dict(options or {}))
