"""Every key of the search config is read by some code path: a key that nothing reads is a setting
that silently does nothing (and still changes the run's config hash)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

import nasbench_harness
from nasbench_harness.config import SearchConfig

PACKAGE = Path(nasbench_harness.__file__).parent
DECLARED_IN = PACKAGE / "methods" / "config.py"


def config_keys(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(dotted key, field name) of every field of ``model``, nested models included."""
    for name, field in model.model_fields.items():
        yield prefix + name, name
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from config_keys(annotation, f"{prefix}{name}.")
        for arg in getattr(annotation, "__args__", ()):  # list[PluginSpec]
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                yield from config_keys(arg, f"{prefix}{name}[].")


def attributes_read_outside_the_config_module() -> set[str]:
    """Names accessed as attributes (``x.name``) anywhere in the package but the config module."""
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        if path == DECLARED_IN:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                names.add(node.attr)
    return names


def test_the_walk_sees_every_nested_key() -> None:
    keys = dict(config_keys(SearchConfig))
    assert {"tracking.eigen_every", "model.channels", "plugins[].ref", "optim.grad_clip"} <= set(keys)


def test_every_config_key_is_read_somewhere() -> None:
    read = attributes_read_outside_the_config_module()
    unread = sorted(key for key, name in config_keys(SearchConfig) if name not in read)
    assert not unread, f"config keys no code path reads (wire them or remove them): {unread}"


def test_the_check_would_catch_an_unread_key() -> None:
    class Probe(BaseModel):
        eigen_every: int = 1
        setting_nothing_reads_xyz: bool = True

    read = attributes_read_outside_the_config_module()
    assert [key for key, name in config_keys(Probe) if name not in read] == ["setting_nothing_reads_xyz"]
