"""Checkpoints hold tensors and plain containers only, and are loaded so that nothing in them runs.

A ``checkpoint.pt`` may come from anywhere (a colleague's run directory, a shared results folder,
a tarball), so it is read with ``torch.load(weights_only=True)``: torch's restricted unpickler
rebuilds tensors, numbers, strings, ``None``, lists, tuples, sets and dicts (plus ``torch.Size``,
dtypes and devices) and refuses any other class or function *before* calling it. Nothing is added
to torch's allow-list: the net's and optimisers' state dicts, the LR scheduler's, the alphas and
every built-in component's state hold nothing else (a test checks every registered method).

Before loading, every record of the zip archive ``torch.save`` writes is checked against its
CRC-32 (``torch.load`` does not: a flipped bit in a tensor would be resumed silently).

Saving applies the same rule (:func:`serialize_checkpoint`), so a plugin whose ``state_dict()``
returns, say, a numpy array fails when its epoch is committed, naming the key, not on resume.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import pickletools
import re
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

from nasbench_harness.errors import ConfigError, RunDirError

_ATOMS = (bool, int, float, complex, str, bytes, type(None))
_CONTAINERS = (dict, OrderedDict, list, tuple, set)
_MAX_DEPTH = 64
_ECHO = 80


def serialize_checkpoint(checkpoint: dict[str, Any]) -> bytes:
    """``checkpoint`` as ``torch.save`` writes it; ``ConfigError`` naming the first value (key path
    and type) that :func:`load_checkpoint_file` would refuse."""
    import torch

    problem = _first_foreign(checkpoint, "checkpoint", 0, _torch_values(torch))
    if problem is not None:
        where, kind = problem
        raise ConfigError(
            f"the checkpoint of epoch {checkpoint.get('epoch')} holds a {kind} at {where}; a checkpoint may hold "
            "only tensors, numbers, strings, None and lists, tuples, sets and dicts of them (it is loaded with "
            "torch.load(weights_only=True)); return such values from the component's state_dict()"
        )
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    return buffer.getvalue()


def load_checkpoint_file(file: Path, map_location: Any, fix: str) -> Any:
    """The object saved in ``file``, unpickled with torch's weights-only loader. ``RunDirError``
    naming the file (and the class or function, when the file names one that is not allowed) when
    it cannot be loaded; ``fix`` says what to do and ends the message."""
    import torch

    damaged = _failed_crc(file)  # torch.load itself reads flipped bits in tensor data silently
    if damaged:
        raise RunDirError(_damaged(file, f"its record {damaged} fails its CRC-32 check", fix))
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols and storages of foreign files
            warnings.simplefilter("ignore")
            return torch.load(file, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        names = _refused_names(file, str(exc)) if "weights only" in str(exc).lower() else []
        if not names:  # refused, but for its form (garbage, an unsupported pickle opcode), not for a name in it
            raise RunDirError(_damaged(file, _first_line(exc), fix)) from None
        raise RunDirError(
            f"{file} names {', '.join(names[:3])}, which no nbh checkpoint holds; it was not loaded (checkpoints are "
            f"loaded as tensors and plain containers only, so nothing in them runs). Resume only checkpoints you "
            f"trust; {fix}"
        ) from None
    except Exception as exc:  # torch.load raises many kinds for truncated or foreign files
        raise RunDirError(_damaged(file, _first_line(exc), fix)) from None


def _echo(text: str) -> str:
    """Text read from a file, for a one-line message: printable characters only, about 80 of them."""
    text = "".join(c if c.isprintable() else "?" for c in text[: _ECHO + 1])
    return text if len(text) <= _ECHO else text[: _ECHO - 3] + "..."


def _first_line(exc: Exception) -> str:
    line = _echo((str(exc).splitlines() or [""])[0])
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def _damaged(file: Path, detail: str, fix: str) -> str:
    if file.is_file() and file.stat().st_size == 0:
        detail = "the file is empty"
    return (
        f"{file} cannot be loaded ({detail}); it is written atomically, so it was "
        f"damaged or replaced outside the harness; {fix}"
    )


def _failed_crc(file: Path) -> str | None:
    """The first record of a zip-format checkpoint whose bytes disagree with their CRC-32 (None:
    all agree, or not a readable zip file, which ``torch.load`` then reports)."""
    import zipfile

    try:
        with zipfile.ZipFile(file) as archive:
            bad = archive.testzip()
    except (OSError, EOFError, zipfile.BadZipFile, ValueError, NotImplementedError, RuntimeError):
        return None
    return None if bad is None else _echo(bad)


def _torch_values(torch: Any) -> tuple[type, ...]:
    return (torch.Tensor, torch.nn.Parameter, torch.Size, torch.dtype, torch.device)


def _first_foreign(value: Any, where: str, depth: int, torch_values: tuple[type, ...]) -> tuple[str, str] | None:
    """(key path, type name) of the first value that is not a tensor, an atom or a plain container."""
    kind = type(value)
    if kind in _ATOMS or kind in torch_values:
        return None
    if kind not in _CONTAINERS:
        return where, f"{kind.__module__}.{kind.__qualname__}"
    if depth >= _MAX_DEPTH:
        return where, f"container nested deeper than {_MAX_DEPTH} levels"
    if isinstance(value, dict):
        for key, item in value.items():
            found = _first_foreign(key, f"{where} (a key)", depth + 1, torch_values) or _first_foreign(
                item, f"{where}[{key!r}]"[:200], depth + 1, torch_values
            )
            if found:
                return found
        return None
    for i, item in enumerate(value):
        found = _first_foreign(item, f"{where}[{i}]", depth + 1, torch_values)
        if found:
            return found
    return None


def _refused_names(file: Path, message: str) -> list[str]:
    """The classes or functions a refused checkpoint names that the safe loader does not allow:
    read from the pickle's opcodes without running them (else from torch's message); torch's own last."""
    allowed = _allowed_names()
    found = [n.replace("__builtin__.", "builtins.", 1) for n in _names_in_pickle(file)]
    found = [n for n in found if n not in allowed] or re.findall(r"GLOBAL ([\w.]+)", message)
    return sorted((_echo(n) for n in dict.fromkeys(found)), key=lambda n: n.startswith("torch."))


def _allowed_names() -> set[str]:
    """What torch's weights-only unpickler resolves (its private registry; empty if that moved)."""
    try:
        from torch import _weights_only_unpickler as unpickler

        return set(unpickler._get_allowed_globals()) | set(unpickler._get_user_allowed_globals())
    except Exception:
        return set()


def _names_in_pickle(file: Path) -> list[str]:
    """GLOBAL / STACK_GLOBAL / INST names in ``file`` read as a plain pickle (read, never executed)."""
    try:
        data = file.read_bytes()
    except OSError:
        return []
    if data[:2] == b"PK":  # torch's zip format: the pickle is the archive's data.pkl
        data = _zip_pickle(file) or b""
    names: list[str] = []
    strings: list[str] = []
    with contextlib.suppress(Exception):  # a damaged pickle: keep what was read before the damage
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name in ("GLOBAL", "INST"):
                names.append(str(arg).replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                names.append(f"{strings[-2]}.{strings[-1]}")
            elif isinstance(arg, str):
                strings.append(arg)
    return names


def _zip_pickle(file: Path) -> bytes | None:
    import zipfile

    try:
        with zipfile.ZipFile(file) as archive:
            member = next((n for n in archive.namelist() if n.endswith("/data.pkl")), None)
            return archive.read(member) if member else None
    except (OSError, zipfile.BadZipFile, ValueError):
        return None
