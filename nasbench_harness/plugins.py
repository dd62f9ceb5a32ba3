"""The plugin API: a new regularizer (or perturbation, sampler, early stopper) in one small file.

Subclass one of the four bases, declare typed parameters as a ``Params`` model
(:class:`~nasbench_harness.methods.engine.options.Options`, i.e. pydantic) and implement one method:

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

The bases live with the components of their kind in :mod:`nasbench_harness.methods.components`;
the built-in regularizers (``entropy``, ``beta-decay``, ``zero-one``) are of the same family.
"""

from nasbench_harness.methods.components.early_stopping import EarlyStopper
from nasbench_harness.methods.components.perturbation import Perturbation
from nasbench_harness.methods.components.regularizers import (
    BUILTIN_REGULARIZERS,
    BetaDecay,
    Entropy,
    Regularizer,
    ZeroOneLoss,
    as_schedule,
)
from nasbench_harness.methods.components.samplers import Sampler
from nasbench_harness.methods.engine.base import Plugin
from nasbench_harness.registry import ENTRY_POINT_GROUP, load_plugin, load_regularizer, plugin_provenance

__all__ = [
    "BUILTIN_REGULARIZERS",
    "ENTRY_POINT_GROUP",
    "BetaDecay",
    "EarlyStopper",
    "Entropy",
    "Perturbation",
    "Plugin",
    "Regularizer",
    "Sampler",
    "ZeroOneLoss",
    "as_schedule",
    "load_plugin",
    "load_regularizer",
    "plugin_provenance",
]
