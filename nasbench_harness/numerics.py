"""How floating point is done in a run: TF32, deterministic algorithms, and which device did it.

A run sets every flag explicitly when it starts (:func:`numerics_applied`, which restores the
previous settings when the run ends) and records them, read back, in its manifest with a
description of the device (:func:`numerics_record`).

**TF32.** On NVIDIA GPUs since Ampere, PyTorch runs float32 cuDNN convolutions in TF32 by
default (``torch.backends.cudnn.allow_tf32`` defaults to True) and matmuls in full fp32. The
papers ran on GPUs without TF32, so ``numerics.tf32=False`` (the default) turns it off for both;
``True`` allows it for both in the training steps. CPU matmuls stay IEEE fp32 either way (oneDNN
has a TF32 mode of its own that torch's ``"high"`` matmul precision would switch on).
:func:`full_fp32` turns TF32 (and autocast) off for a block whatever the run chose: the finite
differences of second-order DARTS and the Hessian eigenvalue run in it, as TF32's 10-bit mantissa
would drown their small differences.

**Which API.** torch 2.9 added per-backend, per-op precisions
(``torch.backends.cuda.matmul.fp32_precision``, ``torch.backends.cudnn.conv.fp32_precision``:
``"ieee"``, ``"tf32"`` or ``"none"``, which inherits). The older setters
(``torch.set_float32_matmul_precision``, ``torch.backends.cudnn.allow_tf32``) write both the old
flag and the new per-op values; in torch 2.13 they do so without a warning (2.9-2.12 warned that
they would be deprecated; that warning is silenced here). The per-op API alone would leave the
old flags disagreeing with it, and torch then raises when anything reads an old flag, which
``torch.compile``'s Inductor does (``torch.backends.cudnn.allow_tf32``,
``torch.get_float32_matmul_precision()``). So the flags are set through the old setters, which
keep both views in agreement, and then the per-op values are pinned to explicit ``"ieee"`` or
``"tf32"`` (not ``"none"``, which a global ``torch.backends.fp32_precision`` could turn into TF32),
values that still agree with the old flags.

**Deterministic mode** (``numerics.deterministic``): ``cudnn.deterministic``,
``cudnn.benchmark = False``, ``torch.use_deterministic_algorithms(True)`` (an op without a
deterministic implementation then raises rather than silently varying), oneDNN's deterministic
flag where torch has it, and ``CUBLAS_WORKSPACE_CONFIG=:4096:8``, which cuBLAS needs for
reproducible results and reads once, when it starts: it is set if absent, and the record says
whether that happened before CUDA started in this process. Otherwise ``cudnn.benchmark = True``:
the supernet's shapes are fixed (the training batch, the ragged last batch, the evaluation and
Hessian batches), so cuDNN times its algorithms once per shape, a one-off cost of seconds, and
then uses the fastest; a run that is not deterministic matches a repeat only statistically anyway.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import shutil
import subprocess
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch

from nasbench_harness.config import NumericsConfig
from nasbench_harness.errors import ConfigError

CUBLAS_WORKSPACE_ENV = "CUBLAS_WORKSPACE_CONFIG"
CUBLAS_DETERMINISTIC = (":4096:8", ":16:8")
"""The values of ``CUBLAS_WORKSPACE_CONFIG`` that make cuBLAS reproducible (torch accepts these two)."""
DRIVER_QUERY_TIMEOUT_S = 5.0
_OPS = (  # (backend module path, op) pinned by the per-op API, where torch has it
    ("cuda", "matmul"),
    ("cudnn", "conv"),
    ("cudnn", "rnn"),
    ("mkldnn", "matmul"),
    ("mkldnn", "conv"),
)


# -- TF32 --------------------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence torch 2.9-2.12's notice that the old TF32 setters will be deprecated (2.13 has none)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*new API settings to control TF32.*")
        warnings.filterwarnings("ignore", message=".*API is going to be deprecated.*")
        yield


def _op_handle(backend: str, op: str) -> Any:
    """``torch.backends.<backend>.<op>`` (an object with ``fp32_precision``), or None before torch 2.9."""
    module = torch.backends.cuda if backend == "cuda" else getattr(torch.backends, backend)
    handle = getattr(module, op, None)
    try:
        return handle if handle is not None and isinstance(handle.fp32_precision, str) else None
    except (AttributeError, RuntimeError):
        return None


def _read(getter: Callable[[], Any]) -> Any:
    """``getter()``, or None when torch refuses (flags another caller set by a mix of the two APIs)."""
    try:
        return getter()
    except (AttributeError, RuntimeError):
        return None


def _tf32_state() -> dict[str, Any]:
    """Every TF32-related flag, raw (the per-op values as stored, ``"none"`` included)."""
    with _quiet():
        state: dict[str, Any] = {
            "matmul_precision": _read(torch.get_float32_matmul_precision),
            "cudnn_allow_tf32": _read(lambda: torch.backends.cudnn.allow_tf32),
            "cuda_matmul_allow_tf32": _read(lambda: torch.backends.cuda.matmul.allow_tf32),
        }
    for backend, op in _OPS:
        handle = _op_handle(backend, op)
        state[f"{backend}.{op}"] = None if handle is None else _read(lambda h=handle: h.fp32_precision)
    return state


def _set_tf32(allow: bool) -> None:
    """TF32 allowed (or not) for CUDA matmuls and cuDNN convolutions; CPU (oneDNN) matmuls and
    convolutions in IEEE fp32. Old and new views of the flags agree afterwards (see the module doc)."""
    with _quiet():
        torch.set_float32_matmul_precision("high" if allow else "highest")
        torch.backends.cudnn.allow_tf32 = allow
    wanted = "tf32" if allow else "ieee"
    for (backend, op), value in zip(_OPS, (wanted, wanted, wanted, "ieee", "ieee"), strict=True):
        handle = _op_handle(backend, op)
        if handle is not None:
            with contextlib.suppress(RuntimeError):  # a torch whose per-op API takes other names
                handle.fp32_precision = value


def _restore_tf32(state: Mapping[str, Any]) -> None:
    """Put back what :func:`_tf32_state` read: the old flags first, then the raw per-op values."""
    with _quiet():
        if state["matmul_precision"] is not None:
            torch.set_float32_matmul_precision(state["matmul_precision"])
        if state["cudnn_allow_tf32"] is not None:
            torch.backends.cudnn.allow_tf32 = state["cudnn_allow_tf32"]
    for backend, op in _OPS:
        handle, value = _op_handle(backend, op), state[f"{backend}.{op}"]
        if handle is not None and value is not None:
            with contextlib.suppress(RuntimeError):
                handle.fp32_precision = value


@contextlib.contextmanager
def full_fp32() -> Iterator[None]:
    """Run the block in full fp32: no TF32 in CUDA matmuls and cuDNN convolutions, no autocast;
    every flag as it was afterwards, also when the block raises. A handful of flag writes: cheap
    enough per step, and on the CPU it changes nothing a run computes (CPU fp32 stays IEEE)."""
    saved = _tf32_state()
    _set_tf32(False)
    try:
        with torch.autocast("cpu", enabled=False), torch.autocast("cuda", enabled=False):
            yield
    finally:
        _restore_tf32(saved)


# -- the whole set -----------------------------------------------------------------------------
def _deterministic_state() -> dict[str, Any]:
    return {
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "algorithms": torch.are_deterministic_algorithms_enabled(),
        "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "mkldnn_deterministic": getattr(torch.backends.mkldnn, "deterministic", None),
    }


def _set_deterministic(on: bool, benchmark: bool) -> None:
    torch.backends.cudnn.benchmark = benchmark
    torch.backends.cudnn.deterministic = on
    torch.use_deterministic_algorithms(on)
    if getattr(torch.backends.mkldnn, "deterministic", None) is not None:
        torch.backends.mkldnn.deterministic = on


def _restore_deterministic(saved: Mapping[str, Any]) -> None:
    torch.backends.cudnn.benchmark = saved["cudnn_benchmark"]
    torch.backends.cudnn.deterministic = saved["cudnn_deterministic"]
    torch.use_deterministic_algorithms(saved["algorithms"], warn_only=saved["warn_only"])
    if saved["mkldnn_deterministic"] is not None:
        torch.backends.mkldnn.deterministic = saved["mkldnn_deterministic"]


def numerics_flags() -> dict[str, Any]:
    """Every numerics flag as torch reports it now (None: not in this torch), for the manifest."""
    tf32 = _tf32_state()
    fill = getattr(getattr(torch.utils, "deterministic", None), "fill_uninitialized_memory", None)
    return {
        "float32_matmul_precision": tf32["matmul_precision"],
        "cuda_matmul_allow_tf32": tf32["cuda_matmul_allow_tf32"],
        "cudnn_allow_tf32": tf32["cudnn_allow_tf32"],
        **{f"{backend}_{op}_fp32_precision": tf32[f"{backend}.{op}"] for backend, op in _OPS},
        "cudnn_enabled": torch.backends.cudnn.enabled,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "deterministic_algorithms_warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "fill_uninitialized_memory": fill,
        "mkldnn_deterministic": getattr(torch.backends.mkldnn, "deterministic", None),
        CUBLAS_WORKSPACE_ENV.lower(): os.environ.get(CUBLAS_WORKSPACE_ENV),
    }


def apply_numerics(numerics: NumericsConfig, device: torch.device) -> dict[str, Any]:
    """Set every numerics flag for a run of ``numerics`` on ``device`` (process-wide); returns
    :func:`numerics_flags` read back after, plus how ``CUBLAS_WORKSPACE_CONFIG`` came to be.

    ``ConfigError`` when deterministic mode on CUDA cannot be had: the environment sets
    ``CUBLAS_WORKSPACE_CONFIG`` to a value cuBLAS is not reproducible with, or cuBLAS already
    started in this process without it. Call it before anything else runs on the device.
    """
    device = torch.device(device)
    cublas = _cublas_workspace(numerics.deterministic, device)
    _set_tf32(numerics.tf32)
    _set_deterministic(numerics.deterministic, benchmark=not numerics.deterministic)
    if numerics.deterministic and device.type == "cuda":
        _check_cublas_deterministic(device)
    return {**numerics_flags(), **cublas}


@contextlib.contextmanager
def numerics_applied(numerics: NumericsConfig, device: torch.device) -> Iterator[dict[str, Any]]:
    """:func:`apply_numerics` for the block (yields its flags); torch's flags as they were after,
    also when the block raises. ``CUBLAS_WORKSPACE_CONFIG`` stays set: cuBLAS has read it."""
    with preserved_numerics():
        yield apply_numerics(numerics, device)


@contextlib.contextmanager
def preserved_numerics() -> Iterator[None]:
    """Every flag :func:`apply_numerics` sets (TF32, cuDNN, deterministic algorithms) put back as
    it was when the block ends, however it ends (environment variables aside)."""
    saved_tf32, saved = _tf32_state(), _deterministic_state()
    try:
        yield
    finally:
        _restore_tf32(saved_tf32)
        _restore_deterministic(saved)


def _cublas_workspace(deterministic: bool, device: torch.device) -> dict[str, Any]:
    """Set ``CUBLAS_WORKSPACE_CONFIG`` where deterministic mode on CUDA needs it; how it came to be."""
    value = os.environ.get(CUBLAS_WORKSPACE_ENV)
    record: dict[str, Any] = {
        "cublas_workspace_config_set_by": "environment" if value is not None else None,
        "cublas_workspace_config_set_before_cuda_init": None,
    }
    if not (deterministic and device.type == "cuda"):
        return record
    if value is not None and value not in CUBLAS_DETERMINISTIC:
        raise ConfigError(
            f"numerics.deterministic needs {CUBLAS_WORKSPACE_ENV}={CUBLAS_DETERMINISTIC[0]} (or "
            f"{CUBLAS_DETERMINISTIC[1]}), but the environment sets it to {value!r}; unset it or set one of those"
        )
    if value is None:
        record["cublas_workspace_config_set_before_cuda_init"] = not torch.cuda.is_initialized()
        os.environ[CUBLAS_WORKSPACE_ENV] = CUBLAS_DETERMINISTIC[0]
        record["cublas_workspace_config_set_by"] = "nbh"
    return record


def _check_cublas_deterministic(device: torch.device) -> None:
    """One tiny matmul: torch raises at once if cuBLAS started in this process without a
    reproducible ``CUBLAS_WORKSPACE_CONFIG`` (it reads the variable at its first call)."""
    try:
        ones = torch.ones(2, 2, device=device)
        torch.mm(ones, ones)
    except RuntimeError as exc:
        if CUBLAS_WORKSPACE_ENV not in str(exc):
            raise
        raise ConfigError(
            f"numerics.deterministic: cuBLAS started in this process before {CUBLAS_WORKSPACE_ENV} was set; "
            f"set {CUBLAS_WORKSPACE_ENV}={CUBLAS_DETERMINISTIC[0]} in the environment before starting it"
        ) from None


# -- the device --------------------------------------------------------------------------------
def device_description(device: torch.device | str) -> dict[str, Any]:
    """What ran the numbers. CUDA: the GPU's name, compute capability, memory (bytes),
    multiprocessors, whether it has TF32 (compute capability 8.0 or later), the driver version
    (from NVML, else ``nvidia-smi``; None when neither answers), and the CUDA and cuDNN versions
    torch runs with. CPU: the processor's name (None where it cannot be read cheaply), torch's
    CPU capability (the widest vector instructions its kernels use), logical CPUs, torch's
    intra- and inter-op threads and the OpenMP/MKL thread variables."""
    device = torch.device(device)
    if device.type != "cuda":
        return _cpu_description()
    index = device.index if device.index is not None else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    driver, source = nvidia_driver_version()
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {
        "type": "cuda",
        "index": index,
        "name": props.name,
        "compute_capability": f"{props.major}.{props.minor}",
        "total_memory_bytes": int(props.total_memory),
        "multiprocessors": int(props.multi_processor_count),
        "tf32_capable": props.major >= 8,
        "driver_version": driver,
        "driver_version_source": source,
        "cuda_runtime": torch.version.cuda,
        "cudnn": str(cudnn) if cudnn is not None else None,
    }


def _cpu_description() -> dict[str, Any]:
    capability = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", None)
    return {
        "type": "cpu",
        "processor": cpu_name(),
        "cpu_capability": capability() if capability else None,
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "mkl": torch.backends.mkl.is_available(),
        "openmp": torch.backends.openmp.is_available(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "mkl_num_threads": os.environ.get("MKL_NUM_THREADS"),
    }


def cpu_name() -> str | None:
    """The processor's model name (Linux: ``/proc/cpuinfo``), else ``platform.processor()``, else None."""
    with contextlib.suppress(OSError, UnicodeDecodeError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "cpu model") and value.strip():
                return value.strip()
    return platform.processor() or None


def nvidia_driver_version() -> tuple[str | None, str | None]:
    """(the NVIDIA driver's version, where it was read: ``"nvml"`` or ``"nvidia-smi"``), or
    (None, None) when neither the NVML library nor ``nvidia-smi`` answers. Never raises."""
    version = _nvml_driver_version()
    if version:
        return version, "nvml"
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            done = subprocess.run(  # noqa: S603 (fixed arguments, no shell)
                [smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=DRIVER_QUERY_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.SubprocessError, ValueError):
            return None, None
        lines = done.stdout.strip().splitlines() if done.returncode == 0 else []
        if lines and lines[0].strip():
            return lines[0].strip(), "nvidia-smi"
    return None, None


def _nvml_driver_version() -> str | None:
    """``nvmlSystemGetDriverVersion`` through ctypes (the library ships with the driver), or None."""
    names = ("nvml.dll",) if os.name == "nt" else ("libnvidia-ml.so.1", "libnvidia-ml.so")
    for name in names:
        try:
            nvml = ctypes.CDLL(name)
        except OSError:
            continue
        try:
            if nvml.nvmlInit_v2() != 0:
                return None
            try:
                buffer = ctypes.create_string_buffer(96)  # NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE is 80
                if nvml.nvmlSystemGetDriverVersion(buffer, ctypes.c_uint(len(buffer))) == 0:
                    return buffer.value.decode("ascii", "replace") or None
            finally:
                nvml.nvmlShutdown()
        except (AttributeError, OSError):
            return None
    return None


def numerics_record(flags: Mapping[str, Any], device: torch.device | str, speed: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest's ``numerics`` section: the ``flags`` a run set (:func:`apply_numerics`), its
    device (:func:`device_description`) and the config's ``speed`` options."""
    return {"flags": dict(flags), "device": device_description(device), "speed": dict(speed)}
