"""Wall-clock timing shared by the JAX and PyTorch sides. Callers make `fn` synchronous (JAX:
block_until_ready inside it; PyTorch on CPU already is)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def seconds(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def repeat_seconds(fn: Callable[[], Any], repeats: int) -> list[float]:
    return [seconds(fn) for _ in range(repeats)]


def best_matmul_gflops(matmul: Callable[[], Any], size: int, repeats: int) -> float:
    """GFLOP/s of the fastest of `repeats` size×size products, after one warm-up product."""
    matmul()
    return 2 * size**3 / min(repeat_seconds(matmul, repeats)) / 1e9
