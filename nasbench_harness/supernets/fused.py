"""relu(batch_norm(x)) with batch statistics in one fused CPU kernel, compiled on first use.

The NB-1Shot1 one-shot model spends about half of a CPU training step outside its
convolutions, most of it in conv -> BN -> ReLU epilogues: native PyTorch runs BN and ReLU as
three passes over the tensor forward and three backward. :func:`bn_relu` makes it two passes
each way with a small C++ kernel (``native/fused_cpu.cpp``), which also sums in double and so
gives more accurate gradients than native float32 channels-last BN.

The kernel is built with ``torch.utils.cpp_extension`` (a C++ compiler with OpenMP, and ninja,
a dependency of this package) the first time it is needed, about 20 s, and cached per source,
torch version and CPU in ``$TORCH_EXTENSIONS_DIR``, else the user cache dir's ``native/``.
Whatever it does not cover runs on torch's own ops, with the same results up to float
rounding: CUDA, other dtypes or memory layouts, double backward (Hessian-vector products), and
machines where the build fails (one warning says why). ``NBH_NATIVE=0`` turns it off.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F

NATIVE_ENV = "NBH_NATIVE"
SOURCE = Path(__file__).with_name("native") / "fused_cpu.cpp"


def bn_relu(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    eps: float,
    running_mean: torch.Tensor | None = None,
    running_var: torch.Tensor | None = None,
    momentum: float = 0.0,
) -> torch.Tensor:
    """``relu(F.batch_norm(x, running_mean, running_var, weight, bias, True, momentum, eps))``.

    Normalises with the batch's statistics, as BN's training mode does, and moves the running
    statistics (if given) by ``momentum`` toward them, unbiased variance, as torch does.
    """
    kernels = native_kernels() if _fusable(x, weight, bias) else None
    if kernels is None:
        return torch.relu(F.batch_norm(x, running_mean, running_var, weight, bias, True, momentum, eps))
    y, mean, var = _BNReLU.apply(x, weight, bias, eps)
    if running_mean is not None and running_var is not None and momentum:
        rows = x.numel() // x.shape[1]
        with torch.no_grad():
            running_mean.lerp_(mean, momentum)
            running_var.lerp_(var * (rows / max(rows - 1, 1)), momentum)
    return y


@functools.cache
def native_kernels() -> ModuleType | None:
    """The compiled kernels, or None: turned off by ``NBH_NATIVE=0``, or the build failed (warned once)."""
    if os.environ.get(NATIVE_ENV, "1").strip() == "0":
        return None
    try:
        return _build()
    except Exception as error:  # no compiler, no OpenMP, no ninja: torch's own ops do the same work
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        warnings.warn(
            f"nasbench-harness could not build its fused CPU kernel ({reason}); BN + ReLU runs on "
            f"PyTorch's own ops, which are slower. Install a C++ compiler with OpenMP, or set {NATIVE_ENV}=0 "
            "to skip the build.",
            RuntimeWarning,
            stacklevel=2,
        )
        return None


def _build() -> ModuleType:
    from torch.utils import cpp_extension

    key = hashlib.sha256(
        b"\0".join([SOURCE.read_bytes(), torch.__version__.encode(), sys.version.encode(), _cpu().encode()])
    ).hexdigest()[:12]
    name = f"nbh_fused_cpu_{key}"
    build_dir = _build_root() / name
    build_dir.mkdir(parents=True, exist_ok=True)
    _put_ninja_on_path()
    return cpp_extension.load(
        name,
        [str(SOURCE)],
        extra_cflags=["-O3", "-march=native", "-fopenmp"],
        extra_ldflags=["-fopenmp"],
        build_directory=str(build_dir),
        verbose=False,
    )


def _build_root() -> Path:
    if os.environ.get("TORCH_EXTENSIONS_DIR"):
        return Path(os.environ["TORCH_EXTENSIONS_DIR"]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("nasbench-harness")) / "native"


def _cpu() -> str:
    """The CPU's identity for the build key: ``-march=native`` code runs only on the CPU it was built for."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            return next((line for line in cpuinfo if line.startswith(("flags", "Features"))), platform.processor())
    except OSError:
        return f"{platform.machine()} {platform.processor()}"


def _put_ninja_on_path() -> None:
    """torch finds ninja on PATH; the ``ninja`` package's binary is there only in an activated venv."""
    try:
        import ninja  # type: ignore[import-untyped]
    except ImportError:
        return
    path = os.environ.get("PATH", "")
    if ninja.BIN_DIR not in path.split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([ninja.BIN_DIR, path]) if path else ninja.BIN_DIR


def _fusable(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None) -> bool:
    """Whether the kernel covers this call: float32 channels-last 4-D on the CPU, affine BN, eager mode."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.dim() == 4
        and x.numel() > 0
        and x.is_contiguous(memory_format=torch.channels_last)
        and weight is not None
        and bias is not None
        and weight.dtype == bias.dtype == torch.float32
        and weight.device.type == bias.device.type == "cpu"
        and not torch.compiler.is_compiling()
    )


def _rows(t: torch.Tensor) -> torch.Tensor:
    """A channels-last (N, C, H, W) tensor as its (N*H*W, C) matrix (a view)."""
    return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1])


def _from_rows(rows: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    n, c, h, w = shape
    return rows.view(n, h, w, c).permute(0, 3, 1, 2)


class _BNReLU(torch.autograd.Function):
    """The kernel under autograd: outputs (y, batch mean, biased batch variance); only y is differentiable."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> Any:
        kernels = native_kernels()
        assert kernels is not None  # bn_relu only comes here when they exist
        y, mean, invstd, var = kernels.bn_relu_forward(_rows(x), weight, bias, eps)
        ctx.save_for_backward(x, weight, bias, mean, invstd)
        ctx.eps = eps
        ctx.mark_non_differentiable(mean, var)
        ctx.set_materialize_grads(False)
        return _from_rows(y, x.shape), mean, var

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor | None, *_: Any) -> tuple[torch.Tensor | None, ...]:
        x, weight, bias, mean, invstd = ctx.saved_tensors
        need = ctx.needs_input_grad[:3]
        if grad is None:
            return None, None, None, None
        if torch.is_grad_enabled():  # create_graph: the gradient must itself be differentiable
            with torch.enable_grad():
                y = torch.relu(F.batch_norm(x, None, None, weight, bias, True, 0.0, ctx.eps))
            wanted = [t for t, n in zip((x, weight, bias), need, strict=True) if n]
            grads = iter(torch.autograd.grad(y, wanted, grad, create_graph=True))
            return (*(next(grads) if n else None for n in need), None)
        kernels = native_kernels()
        assert kernels is not None
        g = _rows(grad.contiguous(memory_format=torch.channels_last))
        grad_x, grad_w, grad_b = kernels.bn_relu_backward(g, _rows(x), weight, bias, mean, invstd, need[0])
        return (_from_rows(grad_x, x.shape) if need[0] else None), grad_w, grad_b, None
