"""Read, check and apply the per-method protocol files of :mod:`nasbench_harness.protocols`.

Checks on reading (each error names the file, the space section and the key): the file's shape
(unknown fields, a missing ``source``), ``method`` equal to the file's name, every ``source`` of
the form ``owner/repo@commit path...``, every ``key`` a leaf of
:class:`~nasbench_harness.config.SearchConfig` that a protocol may set (not tracking, numerics,
speed or run identity) or ``method_options.NAME``, no key twice in a section, NB201-only and
NB-1Shot1-only model keys in their own sections, ``value`` inside ``grid``, and every value (and
grid point) accepted by the config. Torch-free, so ``config_values`` can apply a protocol before
anything heavy is imported.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nasbench_harness.config import SearchConfig, config_values, merge_overrides
from nasbench_harness.errors import ConfigError
from nasbench_harness.spaces.catalog import SPACE_NAMES
from nasbench_harness.yaml_loader import load_yaml

PROTOCOL_DIR = Path(__file__).parent
"""Where the shipped protocol files live (package data)."""
SOURCE = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{7,40} \S")
"""A source: ``owner/repo@commit path[:line[-line]]``, more joined by ``; ``."""
NOT_PROTOCOL = frozenset(
    {"space", "method", "dataset", "seed", "preset", "protocol", "threads", "plugins", "plugin_timeout_s"}
    | {"tracking", "numerics", "speed"}
)
"""Config keys (or sections) no protocol sets: what is run, how it is measured, how fast."""
SECTION_ONLY = {"model.cells_per_stage": "nb201", "model.num_cells": "nb1shot1"}
"""Keys that mean something on one space family only."""
SHARED_SECTION = "nb1shot1"
"""The section the three NB-1Shot1 spaces share unless one has its own."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Entry(_Strict):
    """One protocol value: the config key, its value, where it was read, and optionally a note
    and the reference's sweep (``grid``) of which the value is one point."""

    key: str = Field(min_length=1)
    value: Any
    source: str = Field(min_length=1)
    note: str | None = None
    grid: list[Any] | None = Field(None, min_length=1)


class Remark(_Strict):
    """Something about the reference, with its source (not a config value)."""

    what: str = Field(min_length=1)
    source: str = Field(min_length=1)


class SpaceProtocol(_Strict):
    """A method's protocol on one space (or on the NB-1Shot1 spaces together)."""

    adapted_from: str | None = Field(None, min_length=1)
    entries: list[Entry] = Field(min_length=1)
    not_expressible: list[Remark] = Field(default_factory=list)
    notes: list[Remark] = Field(default_factory=list)

    def values(self) -> dict[str, Any]:
        """Config key -> value, in the file's order."""
        return {entry.key: entry.value for entry in self.entries}


class _File(_Strict):
    method: str = Field(min_length=1)
    references: dict[str, str] = Field(min_length=1)
    spaces: dict[str, SpaceProtocol] = Field(min_length=1)


@dataclass(frozen=True)
class Protocol:
    """A checked protocol file: its method, path, SHA-256 and sections by space name."""

    method: str
    path: Path
    sha256: str
    references: dict[str, str]
    spaces: dict[str, SpaceProtocol]

    def provenance(self, section: str) -> str:
        """What a config records in ``protocol``: ``METHOD/SECTION FILE sha256:DIGEST`` (12 hex)."""
        return f"{self.method}/{section} {self.path.name} sha256:{self.sha256[:12]}"

    def applies_to(self, section: str) -> list[str]:
        """The search spaces that use ``section``."""
        if section != SHARED_SECTION:
            return [section]
        return [s for s in SPACE_NAMES if s.startswith(SHARED_SECTION) and s not in self.spaces]


def protocol_path(method: str) -> Path:
    """The shipped protocol file of ``method`` (it may not exist)."""
    return PROTOCOL_DIR / f"{method}.yaml"


@functools.cache
def load_protocol(method: str) -> Protocol:
    """The checked protocol of ``method``; a :class:`ConfigError` when it has none or it is bad."""
    path = protocol_path(method)
    if not path.is_file():
        raise ConfigError(
            f"no protocol for method {method!r} ({path} is missing): `--preset paper` needs one; "
            "use --preset common, or add the file (see nasbench_harness/protocols)"
        )
    return read_protocol(path)


def section_for(protocol: Protocol, space: str) -> str | None:
    """The section of ``protocol`` that ``space`` uses: its own, else the shared NB-1Shot1 one."""
    if space in protocol.spaces:
        return space
    if space.startswith(SHARED_SECTION) and SHARED_SECTION in protocol.spaces:
        return SHARED_SECTION
    return None


def protocol_values(method: str, space: str) -> dict[str, Any]:
    """The nested config values of ``method``'s protocol on ``space``, with its provenance under
    ``protocol``. Empty for a space or method nobody knows (the config and the registry report
    those); a :class:`ConfigError` when a registered method has no protocol for a known space."""
    from nasbench_harness.registry import METHODS

    if space not in SPACE_NAMES or method not in METHODS:
        return {}
    protocol = load_protocol(method)
    section = section_for(protocol, space)
    if section is None:
        raise ConfigError(
            f"{protocol.path} has no protocol for {space} (it has {', '.join(protocol.spaces)}); "
            "use --preset common, or add the space to the file"
        )
    nested: dict[str, Any] = {}
    for entry in protocol.spaces[section].entries:
        nested = merge_overrides(nested, _nest(entry.key, entry.value))
    nested["protocol"] = protocol.provenance(section)
    return nested


def read_protocol(path: Path) -> Protocol:
    """Read and check the protocol file at ``path`` (see the module docstring for the checks)."""
    raw = path.read_bytes() if path.is_file() else b""
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a protocol file is a mapping with method, references and spaces")
    try:
        parsed = _File.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("; ".join(_shape_problem(path, data, err) for err in exc.errors())) from None
    if parsed.method != path.stem:
        raise ConfigError(f"{path}: method is {parsed.method!r}, but the file is named for {path.stem!r}")
    for section, protocol in parsed.spaces.items():
        _check_section(path, parsed.method, section, protocol)
    digest = hashlib.sha256(raw).hexdigest()
    return Protocol(parsed.method, path, digest, dict(parsed.references), dict(parsed.spaces))


def _shape_problem(path: Path, data: dict[str, Any], err: Any) -> str:
    loc = list(err["loc"])
    where = ".".join(map(str, loc))
    if len(loc) >= 4 and loc[0] == "spaces" and loc[2] == "entries" and isinstance(loc[3], int):
        try:
            key = data["spaces"][loc[1]]["entries"][loc[3]].get("key")
        except (KeyError, IndexError, TypeError, AttributeError):
            key = None
        if key:
            where = f"spaces.{loc[1]}: entry {key!r}" + (f": {'.'.join(map(str, loc[4:]))}" if loc[4:] else "")
    message = "missing (every value needs one)" if err["type"] == "missing" else err["msg"]
    return f"{path}: {where}: {message}"


def _check_section(path: Path, method: str, section: str, protocol: SpaceProtocol) -> None:
    where = f"{path}: spaces.{section}"
    if section not in SPACE_NAMES and section != SHARED_SECTION:
        raise ConfigError(f"{where}: unknown space; use nb201, {SHARED_SECTION} or one of {', '.join(SPACE_NAMES)}")
    seen: set[str] = set()
    for entry in protocol.entries:
        _check_source(f"{where}: entry {entry.key!r}", entry.source)
        _check_key(f"{where}: entry {entry.key!r}", entry.key, section)
        if entry.key in seen:
            raise ConfigError(f"{where}: entry {entry.key!r} appears twice; keep one")
        seen.add(entry.key)
        if entry.grid is not None and entry.value not in entry.grid:
            raise ConfigError(f"{where}: entry {entry.key!r}: value {entry.value!r} is not in its grid {entry.grid}")
    for remark in [*protocol.not_expressible, *protocol.notes]:
        _check_source(f"{where}: remark {remark.what[:40]!r}", remark.source)
    space = section if section in SPACE_NAMES else f"{SHARED_SECTION}-1"
    base = config_values("common", {"space": space, "method": method})
    _validate(where, base, protocol.values())
    for entry in protocol.entries:
        for point in entry.grid or ():
            _validate(where, base, {**protocol.values(), entry.key: point})


def _check_source(where: str, source: str) -> None:
    parts = [part.strip() for part in source.split(";")]
    if not SOURCE.match(parts[0]) or not all(parts):
        raise ConfigError(
            f"{where}: source {source!r} is not owner/repo@commit path:line "
            "(e.g. automl/RobustDARTS@3dec3fe src/search/args.py:30; more paths joined by '; ')"
        )


def _check_key(where: str, key: str, section: str) -> None:
    parts = key.split(".")
    if parts[0] in NOT_PROTOCOL:
        raise ConfigError(f"{where}: {parts[0]} is not part of a search protocol (what runs, or how it is measured)")
    if parts[0] == "method_options":
        if len(parts) != 2 or not parts[1]:
            raise ConfigError(f"{where}: a method option is method_options.NAME")
        return
    model: type[BaseModel] = SearchConfig
    for depth, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            known = ", ".join(k for k in model.model_fields if k not in NOT_PROTOCOL)
            raise ConfigError(f"{where}: unknown config key {'.'.join(parts[: depth + 1])!r}; known here: {known}")
        annotation = field.annotation
        nested = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        if depth == len(parts) - 1 and nested:
            raise ConfigError(f"{where}: {key} is a section; name one of its keys")
        if depth < len(parts) - 1:
            if not nested:
                raise ConfigError(f"{where}: {'.'.join(parts[: depth + 1])} has no keys below it")
            model = annotation  # type: ignore[assignment]
    family = SHARED_SECTION if section.startswith(SHARED_SECTION) else "nb201"
    if SECTION_ONLY.get(key, family) != family:
        raise ConfigError(f"{where}: {key} applies to {SECTION_ONLY[key]} only, not to {section}")


def _validate(where: str, base: dict[str, Any], values: dict[str, Any]) -> None:
    merged = copy.deepcopy(base)
    for key, value in values.items():
        merged = merge_overrides(merged, _nest(key, value))
    try:
        SearchConfig.model_validate(merged)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(map(str, err["loc"]))
            key = next((k for k in values if loc == k or loc.startswith(k + ".")), loc)
            problems.append(f"{where}: entry {key!r} = {values.get(key)!r}: {err['msg']}")
        raise ConfigError("; ".join(problems)) from None


def _nest(key: str, value: Any) -> dict[str, Any]:
    out: Any = copy.deepcopy(value)
    for part in reversed(key.split(".")):
        out = {part: out}
    return out  # type: ignore[no-any-return]


def check_method_options(protocol: Protocol) -> None:
    """Check each section's ``method_options`` (and grid points) against the method's options
    class, and that the method runs on every space the section applies to. Imports the method."""
    from nasbench_harness.registry import make_method

    for section, space_protocol in protocol.spaces.items():
        options = {k.split(".", 1)[1]: v for k, v in space_protocol.values().items() if k.startswith("method_options.")}
        trials = [options] + [
            {**options, e.key.split(".", 1)[1]: point}
            for e in space_protocol.entries
            if e.key.startswith("method_options.")
            for point in e.grid or ()
        ]
        for trial in trials:
            try:
                method = make_method(protocol.method, trial)
                for space in protocol.applies_to(section):
                    method.check_space(space)
            except ConfigError as exc:
                raise ConfigError(f"{protocol.path}: spaces.{section}: {exc}") from None


def protocol_json(protocol: Protocol) -> dict[str, Any]:
    """The protocol as plain JSON: per section, the spaces it applies to, ``adapted_from``, the
    entries keyed by config key (``value``, ``source``, and ``note``/``grid`` where given), and
    the not-expressible and other notes."""
    sections = {}
    for section, sp in protocol.spaces.items():
        entries = {e.key: e.model_dump(exclude={"key"}, exclude_none=True) for e in sp.entries}
        sections[section] = {
            "applies_to": protocol.applies_to(section),
            "adapted_from": sp.adapted_from,
            "protocol": entries,
            "not_expressible": [r.model_dump() for r in sp.not_expressible],
            "notes": [r.model_dump() for r in sp.notes],
        }
    return {
        "method": protocol.method,
        "file": protocol.path.name,
        "sha256": protocol.sha256,
        "references": protocol.references,
        "spaces": sections,
    }
