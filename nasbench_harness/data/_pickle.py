"""Restricted unpickling of the official image batches (CIFAR "python version", ImageNet16).

The batches are pickles, and a pickle may name any callable; a downloaded file must not be able
to run code. The unpickler below resolves only what a dict of numpy arrays, lists and strings
needs, and rejects everything else before it is called.
"""

from __future__ import annotations

import codecs
import hashlib
import importlib
import io
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nasbench_harness.errors import DataFormatError

_ECHO = 80
"""Characters of a name read from a file that a message repeats."""
_REPLACE = "Replace it with the official file (extract the data set's archive again)"

# Pickles written by numpy 1.x name numpy.core, those written by numpy 2.x name numpy._core.
_NUMPY_CORE = ("numpy.core", "numpy._core")


def _numpy_attr(submodule: str, name: str) -> Callable[..., Any]:
    """``numpy._core.<submodule>.<name>`` (or ``numpy.core`` on old numpy), without the deprecated shim."""
    for base in ("numpy._core", "numpy.core"):
        try:
            module = importlib.import_module(f"{base}.{submodule}")
        except ImportError:
            continue
        return getattr(module, name)
    raise DataFormatError(f"this numpy ({np.__version__}) has no {submodule}.{name} to rebuild an array with")


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as Python 3 uses it to store bytes in protocol-2 pickles (latin1 only)."""
    if not isinstance(text, str) or codecs.lookup(encoding).name != "iso8859-1":
        raise DataFormatError(
            f"the pickle encodes bytes with {encoding!r}; a data batch only ever uses latin1 for that, "
            "so the file is not an official batch"
        )
    return text.encode("latin1")


def _allowed() -> dict[tuple[str, str], Callable[[], Any]]:
    """(module, name) a data batch may refer to -> how to resolve it."""
    allowed: dict[tuple[str, str], Callable[[], Any]] = {
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
        ("_codecs", "encode"): lambda: _latin1_encode,
    }
    for core in _NUMPY_CORE:
        allowed[(f"{core}.multiarray", "_reconstruct")] = lambda: _numpy_attr("multiarray", "_reconstruct")
        allowed[(f"{core}.multiarray", "scalar")] = lambda: _numpy_attr("multiarray", "scalar")
        allowed[(f"{core}.numeric", "_frombuffer")] = lambda: _numpy_attr("numeric", "_frombuffer")
    return allowed


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler that only rebuilds numpy arrays, numpy scalars and plain containers."""

    def __init__(self, file: io.BytesIO, source: Path) -> None:
        super().__init__(file, encoding="latin1")
        self._source = source
        self._allowed = _allowed()

    def find_class(self, module: str, name: str) -> Any:
        resolve = self._allowed.get((module, name))
        if resolve is None:
            named = f"{module}.{name}"
            named = named if len(named) <= _ECHO else named[: _ECHO - 3] + "..."
            raise DataFormatError(
                f"{self._source} refers to {named}, which a data batch never does; the file is not an official "
                f"batch (it was not unpickled; a batch holds only numpy arrays, lists and strings). {_REPLACE}"
            )
        return resolve()

    def persistent_load(self, pid: Any) -> Any:
        raise DataFormatError(f"{self._source} uses persistent ids, which a data batch never does. {_REPLACE}")


@dataclass(frozen=True)
class SourceFile:
    """One file a data set was read from: its path relative to the data directory, size (bytes), sha256."""

    path: str
    size: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for the run manifest."""
        return {"path": self.path, "bytes": self.size, "sha256": self.sha256}


_UNPICKLE_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    LookupError,
    OverflowError,
    UnicodeError,
    MemoryError,
)


def load_batch(path: Path, relative_to: Path, expected: str) -> tuple[dict[str, Any], SourceFile]:
    """Unpickle one batch file into a dict with str keys, plus its size and sha256.

    ``expected`` describes the layout for error messages. Keys stored as bytes (Python 2 style) are
    decoded as latin1, so callers see ``"data"`` whichever way the file was written.
    """
    raw = path.read_bytes()
    source = SourceFile(path.relative_to(relative_to).as_posix(), len(raw), hashlib.sha256(raw).hexdigest())
    try:
        obj = _BatchUnpickler(io.BytesIO(raw), path).load()
    except DataFormatError as exc:
        if str(path) in str(exc):
            raise
        raise DataFormatError(f"{path}: {exc}. {_REPLACE}") from None
    except _UNPICKLE_ERRORS as exc:
        raise DataFormatError(
            f"{path} is truncated or not a pickled data batch ({type(exc).__name__}: {exc}); expected {expected}"
        ) from exc
    if not isinstance(obj, dict):
        raise DataFormatError(f"{path} holds a {type(obj).__name__}, not a dict; expected {expected}")
    batch = {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}
    return batch, source
