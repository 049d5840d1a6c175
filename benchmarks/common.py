"""Shared helpers for the benchmarks: this machine's matmul throughput and FLOP counting."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from contextlib import nullcontext
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode


def best_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Best wall time of ``repeats`` calls in seconds (the least disturbed by the rest of the machine)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_gflops(dtype: torch.dtype, size: int = 2048) -> float:
    """Achieved GFLOP/s of a square matmul on this machine: the baseline every figure is compared with."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    return 2 * size**3 / best_time(lambda: a @ b, repeats=5) / 1e9


def matmul_peaks(note: str) -> dict[str, float]:
    """This machine's fp32 and bf16 matmul GFLOP/s, printed with the torch version and ``note``."""
    peak = {"fp32": matmul_gflops(torch.float32), "bf16": matmul_gflops(torch.bfloat16)}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; matmul 2048^3: "
          f"fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f} GFLOP/s; {note}\n")
    return peak


def run_isolated(script: str, *args: str) -> dict:
    """Run ``script --one ARGS`` in its own process (its peak memory is its own); its last line is JSON."""
    out = subprocess.run([sys.executable, script, "--one", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def count_flops(fn: Callable[[], object]) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def autocast(dtype: torch.dtype):
    return torch.autocast("cpu", dtype=torch.bfloat16) if dtype == torch.bfloat16 else nullcontext()
