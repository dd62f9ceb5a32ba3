"""Deprecated: the plugin API moved to :mod:`nasbench_harness.plugins` (this alias goes in the next release).

``from nasbench_harness.methods.plugins import Regularizer`` keeps working with a
:class:`DeprecationWarning`; import from ``nasbench_harness.plugins`` instead. The built-in
penalties ``BetaDecayPenalty`` and ``ZeroOnePenalty`` are now ``BetaDecay`` and ``ZeroOneLoss``.
"""

from __future__ import annotations

import warnings

from nasbench_harness.plugins import *  # noqa: F403
from nasbench_harness.plugins import BetaDecay as BetaDecayPenalty
from nasbench_harness.plugins import ZeroOneLoss as ZeroOnePenalty
from nasbench_harness.plugins import __all__ as _all
from nasbench_harness.spaces.catalog import SPACE_NAMES

__all__ = [*_all, "BetaDecayPenalty", "ZeroOnePenalty"]
ALL_SPACES = SPACE_NAMES

warnings.warn(
    "nasbench_harness.methods.plugins is deprecated; import the plugin API from nasbench_harness.plugins",
    DeprecationWarning,
    stacklevel=2,
)
