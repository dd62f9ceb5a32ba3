"""Configuration files: a strict YAML loader (duplicate keys are errors, not silent overrides).

Suite and mapping files are small and hand-written, so anything else is refused with a message
naming the file (and the line where there is one): a directory or device instead of a file, a
file over :data:`MAX_BYTES`, bytes that are not UTF-8, a key that is a list or a mapping, an
alias that contains itself, and aliases that expand to more than :data:`MAX_VALUES` values.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from nasbench_harness.errors import ConfigError

MAX_BYTES = 1 << 20
"""Largest config file read (1 MiB; the shipped suites are about 1 KB)."""
MAX_VALUES = 100_000
"""Most values (scalars, lists, mappings) a file may hold once its aliases are expanded."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        mark = key_node.start_mark
        try:
            repeated = key in seen
        except TypeError:  # a list or mapping as a key
            raise ConfigError(
                f"{mark.name}, line {mark.line + 1}: a key must be a name or a number, not a {type(key).__name__}"
            ) from None
        if repeated:
            raise ConfigError(
                f"{mark.name}, line {mark.line + 1}: key {key!r:.80} appears twice in the same mapping; keep one"
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: str | os.PathLike[str], max_bytes: int = MAX_BYTES) -> Any:
    """Parse a YAML file strictly (None for an empty one); errors name the file and line."""
    path = Path(path)
    try:
        if path.is_dir():
            raise ConfigError(f"{path} is a directory; give a YAML file")
        if path.exists() and not path.is_file():
            raise ConfigError(f"{path} is not a regular file (a device or a pipe); give a YAML file")
        with open(path, "rb") as stream:
            data = stream.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ConfigError(
                f"{path} is larger than {max_bytes // 1024} KiB; a config file is a few KB: is it the right file?"
            )
        loader = _StrictLoader(data.decode("utf-8"))
        loader.name = str(path)  # error marks name the file
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_values(node, path)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a UTF-8 text file; a YAML file was expected") from None
    except RecursionError:
        raise ConfigError(f"{path} nests lists or mappings too deeply to be a config file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_problem(path, exc)) from None


def _yaml_problem(path: Path, exc: yaml.YAMLError) -> str:
    """One line: the file, the line and column, and what the parser expected."""
    mark = getattr(exc, "problem_mark", None)
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    what = "; ".join(str(p) for p in parts if p) or " ".join(str(exc).split())
    return f"{path}{where}: not valid YAML: {what[:200]}"


def _check_values(root: yaml.Node, path: Path) -> None:
    """ConfigError for an alias inside the value it names, or more than MAX_VALUES values once
    aliases are expanded (a "billion laughs" file would take minutes and gigabytes to read)."""
    count = 0
    open_nodes: set[int] = set()

    def visit(node: yaml.Node) -> None:
        nonlocal count
        count += 1
        if count > MAX_VALUES:
            raise ConfigError(
                f"{path}: more than {MAX_VALUES} values once its aliases (*name) are expanded; write it out plainly"
            )
        if id(node) in open_nodes:
            raise ConfigError(
                f"{path}, line {node.start_mark.line + 1}: an alias refers to a value that contains it; "
                "a config file cannot be recursive"
            )
        if isinstance(node, yaml.SequenceNode):
            children: list[yaml.Node] = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            return
        open_nodes.add(id(node))
        for child in children:
            visit(child)
        open_nodes.discard(id(node))

    visit(root)
