"""The machine's float32 compute limit, measured: the best GFLOP/s of two dense kernels on the
benchmark's threads, a large matrix product (MKL sgemm) and a large channels-last 3x3
convolution (oneDNN). A training step cannot beat it; its convolutions reach a fraction.

Both are measured because either library can be the faster one: MKL picks its code path by CPU
vendor (on AMD it runs an AVX2 sgemm even where the CPU has AVX-512), while oneDNN picks by
instruction set. On this project's AMD EPYC (Zen 5) machine with 2 threads, sgemm gives
210-230 GFLOP/s and the convolution 380-490 (it varies with the load on the host).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F


def _best_rate(run: Callable[[], object], flop: float, repeats: int = 10) -> float:
    """Best-of-3 GFLOP/s of ``repeats`` calls of ``run``, which does ``flop`` each, after 2 warm-ups."""
    for _ in range(2):
        run()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(repeats):
            run()
        best = min(best, time.perf_counter() - started)
    return flop * repeats / best / 1e9


def sgemm_gflops(n: int = 2048) -> float:
    """GFLOP/s of products of two n x n float32 matrices (``torch.mm``: MKL on x86 builds)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return _best_rate(lambda: a @ b, 2 * n**3)


def conv_gflops(batch: int = 96, channels: int = 64, size: int = 32) -> float:
    """GFLOP/s of a 3x3 float32 convolution, channels-last (oneDNN on x86 builds)."""
    x = torch.randn(batch, channels, size, size).contiguous(memory_format=torch.channels_last)
    w = torch.randn(channels, channels, 3, 3).contiguous(memory_format=torch.channels_last)
    return _best_rate(lambda: F.conv2d(x, w, padding=1), 2 * batch * channels**2 * 9 * size**2)


def compute_limit() -> tuple[float, str]:
    """The machine's float32 limit in GFLOP/s, and a line saying how it was measured."""
    sgemm, conv = sgemm_gflops(), conv_gflops()
    line = f"float32 limit {max(sgemm, conv):.0f} GFLOP/s (best of sgemm {sgemm:.0f}, 3x3 conv {conv:.0f})"
    return max(sgemm, conv), line
