"""The machine's float32 compute limit, measured: GFLOP/s of a large matrix product (MKL sgemm)
on the benchmark's threads. A training step cannot beat it; convolutions reach a fraction."""

from __future__ import annotations

import time

import torch


def sgemm_gflops(n: int = 2048, repeats: int = 10) -> float:
    """Best-of-3 GFLOP/s of ``repeats`` products of two n x n float32 matrices."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 * repeats / best / 1e9
