"""Shared helpers for the benchmarks: this machine's matmul throughput and FLOP counting, pair folders, and settings
changed from the command line."""

from __future__ import annotations

import dataclasses
import json
import resource
import subprocess
import sys
import time
from contextlib import nullcontext
from functools import partial
from typing import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode


def synchronize(device: str = "cpu") -> None:
    """Wait for queued GPU work (device work is asynchronous), so a host clock reads its time."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def best_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1, device: str = "cpu") -> float:
    """Best wall time of ``repeats`` calls in seconds (the least disturbed by the rest of the machine)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_gflops(dtype: torch.dtype, size: int = 2048, device: str = "cpu") -> float:
    """Achieved GFLOP/s of a square matmul on this machine: the baseline every figure is compared with."""
    a, b = (torch.randn(size, size, dtype=dtype, device=device) for _ in range(2))
    repeats = 5 if device == "cpu" else 20
    return 2 * size**3 / best_time(lambda: a @ b, repeats=repeats, warmup=3, device=device) / 1e9


def matmul_peaks(note: str, device: str = "cpu") -> dict[str, float]:
    """This machine's fp32 and bf16 matmul GFLOP/s, printed with the torch version and ``note``.

    On a GPU the size is 8192 (a 2048 product does not fill it) and fp32 is plain fp32 (torch's default: no
    TF32), as the models run."""
    size = 2048 if device == "cpu" else 8192
    peak = {"fp32": matmul_gflops(torch.float32, size, device), "bf16": matmul_gflops(torch.bfloat16, size, device)}
    where = (f"{torch.get_num_threads()} threads" if device == "cpu"
             else f"{torch.cuda.get_device_name()} ({device})")
    print(f"torch {torch.__version__}, {where}; matmul {size}^3: "
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


def autocast(dtype: torch.dtype, device: str = "cpu"):
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16) if dtype == torch.bfloat16 else nullcontext()


def peak_memory_mib(device: str = "cpu") -> float:
    """Peak memory of this process since the last ``reset_peak_memory``: resident memory on the CPU (Linux's VmHWM;
    elsewhere the peak over the whole process), allocated GPU memory on a GPU."""
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    try:
        status = open("/proc/self/status").read()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024  # kB
    except (OSError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_memory(device: str = "cpu") -> None:
    """Start ``peak_memory_mib`` over (e.g. after counting FLOPs, whose bookkeeping keeps every activation)."""
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        return
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # Linux: reset the peak resident set size
    except OSError:
        pass


MATMULS = ("mm", "addmm", "bmm", "baddbmm")


class _MatmulRecorder(TorchDispatchMode):
    """Records every matmul a function runs (after autocast, forward and backward): op, argument shapes, strides and
    dtypes, so they can be run again alone."""

    def __init__(self):
        super().__init__()
        self.calls: list = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.overloadpacket.__name__ in MATMULS:
            self.calls.append((func, [(a.shape, a.stride(), a.dtype, a.device) if isinstance(a, torch.Tensor) else a
                                      for a in args], kwargs))
        return func(*args, **kwargs)


def matmul_seconds(fn: Callable[[], object], repeats: int = 5, device: str = "cpu") -> tuple[float, int]:
    """Seconds the matmuls of one call of ``fn`` would take at best: each matmul run alone on random inputs of the
    same shapes, strides and dtypes, its best of ``repeats`` (warm caches), summed; and how many there are. FLOPs
    over these seconds bound what the step could reach with these matmul kernels if all its other work took no
    time."""
    recorder = _MatmulRecorder()
    with recorder:
        fn()
    total = 0.0
    for func, args, kwargs in recorder.calls:
        args = [torch.empty_strided(a[0], a[1], dtype=a[2], device=a[3]).normal_() if isinstance(a, tuple) else a
                for a in args]
        total += best_time(partial(func, *args, **kwargs), repeats=repeats, warmup=2, device=device)
    return total, len(recorder.calls)


def resumable_record(path, settings: dict, name: str) -> dict:
    """The rows a benchmark kept in ``path`` (its results.json) under the same ``settings``, so a rerun goes on where
    it stopped; rows made under other settings are refused (use another --out)."""
    from pathlib import Path

    path = Path(path)
    record = json.loads(path.read_text()) if path.exists() else {"settings": settings, "rows": {}}
    if record["settings"] != settings:
        raise SystemExit(f"{path} holds rows made with {record['settings']}; use another --out")
    if record["rows"]:
        print(f"{name}: resuming in {path.parent}: {', '.join(record['rows'])} done", flush=True)
    return record


def link_pairs(source, out) -> dict:
    """Folder ``out`` lists the pair shards of folder ``source`` (an ``avdit distill`` run's pairs) as links;
    ``source``'s index."""
    from pathlib import Path

    from avdit.codecs.shards import SHARD_INDEX

    source, out = Path(source), Path(out)
    index = json.loads((source / SHARD_INDEX).read_text())
    for shard in index["shards"]:
        link = out / shard["file"]
        if not link.exists():
            link.symlink_to((source / shard["file"]).resolve())
    return index


def field_changes(items: list[str], settings, flag: str) -> dict:
    """['gan=1', 'order=together'] -> {'gan': 1.0, 'order': 'together'}, each typed as the field's value in the
    dataclass instance ``settings`` (a bool from 1/true/0/false, a field that is None by default as text); a bad item
    exits naming ``flag`` and the fields."""
    kinds = {f.name: type(getattr(settings, f.name)) for f in dataclasses.fields(settings)}
    changes = {}
    for item in items:
        name, _, value = item.partition("=")
        if name not in kinds or not value:
            raise SystemExit(f"{flag} {item!r}: give NAME=VALUE with NAME one of {', '.join(kinds)}")
        kind = kinds[name] if kinds[name] in (bool, int, float) else str
        changes[name] = value.lower() in ("1", "true") if kind is bool else kind(value)
    return changes
