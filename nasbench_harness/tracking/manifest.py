"""The ``manifest.json`` of a run directory: the caller's record plus the fields the directory keeps."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nasbench_harness.errors import ConfigError, RunDirError

MANIFEST_FILE = "manifest.json"
SCHEMA_VERSION = 1
STATUSES = ("running", "finished", "failed")
MAINTAINED = ("schema_version", "status", "error", "created", "updated", "epochs_completed", "last_epoch")
"""Fields the run directory sets; callers change ``status``/``error`` through ``RunDir.set_status``."""


def new_manifest(fields: Mapping[str, Any], now: str) -> dict[str, Any]:
    """The manifest of a new run: the kept fields first (status "running"), then the caller's ``fields``."""
    if not isinstance(fields, Mapping):
        raise ConfigError(f"a run manifest must be a dict, got {type(fields).__name__}")
    refuse_maintained(fields, "create()")
    kept = {
        "schema_version": SCHEMA_VERSION,
        "status": "running",
        "error": None,
        "created": now,
        "updated": now,
        "epochs_completed": 0,
        "last_epoch": None,
    }
    return {**kept, **fields}


def refuse_maintained(fields: Mapping[str, Any], caller: str) -> None:
    """``ConfigError`` if ``fields`` sets any field the run directory keeps itself."""
    clash = [key for key in fields if key in MAINTAINED]
    if clash:
        raise ConfigError(
            f"{caller} cannot set {', '.join(clash)}: the run directory keeps {', '.join(MAINTAINED)} itself "
            f"(change status and error with set_status())"
        )


def check_status(status: str) -> None:
    """``ConfigError`` unless ``status`` is one a run can have."""
    if status not in STATUSES:
        raise ConfigError(f"run status must be one of {', '.join(STATUSES)}, got {status!r}")


def read_manifest_file(file: Path) -> dict[str, Any]:
    """The manifest at ``file``; ``RunDirError`` when it is missing, damaged or of a newer schema."""
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunDirError(
            f"no {file.name} in {file.parent}: it is not a run directory (or the run was never created); "
            f"check the path, or start a new run there"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{file} cannot be read ({exc})") from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunDirError(
            f"{file} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); it is written "
            f"atomically, so it was edited or damaged outside the harness; repair or restore it, "
            f"or rerun in a new directory"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("status") not in STATUSES:
        raise RunDirError(
            f"{file} is not a run manifest (a JSON object with a status of {', '.join(STATUSES)}); "
            f"repair or restore it, or rerun in a new directory"
        )
    version = manifest.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        from nasbench_harness import __version__

        raise RunDirError(
            f"{file} has run directory schema version {version!r}, but this nasbench-harness ({__version__}) "
            f"reads versions up to {SCHEMA_VERSION}; open it with the version that wrote it"
        )
    return manifest
