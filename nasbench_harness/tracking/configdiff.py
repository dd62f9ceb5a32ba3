"""Which settings of two (nested) configurations differ, named by dotted keys such as ``optimizer.lr``."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Mapping
from typing import Any

_MISSING = object()


def config_diff(old: Mapping[str, Any], new: Mapping[str, Any], ignore: Iterable[str] = ()) -> list[str]:
    """Dotted keys whose values differ between ``old`` and ``new``, sorted.

    Nested dicts are compared key by key; lists and other values as a whole (NaN equals NaN).
    A key present on one side only counts as different. ``ignore`` holds dotted keys or glob
    patterns (``"seed"``, ``"logging.*"``); ignoring a key ignores everything below it.
    """
    patterns = list(ignore)
    return sorted(key for key in _diff(old, new, "") if not _ignored(key, patterns))


def describe_config_diff(old: Mapping[str, Any], new: Mapping[str, Any], ignore: Iterable[str] = ()) -> str:
    """``config_diff`` as text for an error message: ``optimizer.lr (0.025 vs 0.05), seed (1 vs 2)``."""
    parts = []
    for key in config_diff(old, new, ignore):
        parts.append(f"{key} ({_show(_lookup(old, key))} vs {_show(_lookup(new, key))})")
    return ", ".join(parts)


def _diff(old: Any, new: Any, prefix: str) -> list[str]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        keys = list(old) + [k for k in new if k not in old]
        found = []
        for key in keys:
            dotted = f"{prefix}{key}"
            a, b = old.get(key, _MISSING), new.get(key, _MISSING)
            if isinstance(a, Mapping) and isinstance(b, Mapping):
                found += _diff(a, b, dotted + ".")
            elif not _same(a, b):
                found.append(dotted)
        return found
    return [] if _same(old, new) else [prefix.rstrip(".")]


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, bool) != isinstance(b, bool):  # True == 1 in Python, but not as a setting
        return False
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # e.g. arrays, whose == is elementwise
        return False


def _ignored(key: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(key, p) or key.startswith(p + ".") for p in patterns)


def _lookup(config: Mapping[str, Any], dotted: str) -> Any:
    """The value at ``dotted``; keys holding dots themselves are tried whole first."""
    if dotted in config:
        return config[dotted]
    head, _, rest = dotted.partition(".")
    value = config.get(head, _MISSING)
    if rest and isinstance(value, Mapping):
        return _lookup(value, rest)
    return value if not rest else _MISSING


def _show(value: Any) -> str:
    if value is _MISSING:
        return "not set"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
