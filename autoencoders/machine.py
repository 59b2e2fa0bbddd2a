"""The machine a number was measured on, as Markdown lines: CPU, cores, memory, load, versions.

Benchmark records and reproduction pages print these beside their numbers.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess


def _lscpu_field(name: str) -> str | None:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_lines() -> list[str]:
    """CPU model, cores, memory, load and package versions, one Markdown bullet each."""
    cpu = _lscpu_field("Model name") or platform.processor() or "unknown"
    memory = "unknown"
    if os.path.exists("/proc/meminfo"):
        with open("/proc/meminfo") as f:
            first = f.readline().split()
        memory = f"{int(first[1]) / 2**20:.1f} GiB"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    packages = ("jax", "jaxlib", "flax", "optax", "numpy", "torch")
    return [
        f"CPU: {cpu}; `nproc`: {os.cpu_count()}; "
        f"threads per core (lscpu): {_lscpu_field('Thread(s) per core') or '?'}; memory: {memory}",
        f"Load average (1, 5, 15 min) when the record was written: {load}",
        f"Python {platform.python_version()}; " + ", ".join(f"{p} {_version(p)}" for p in packages),
        f"XLA_FLAGS: `{os.environ.get('XLA_FLAGS', '')}` (empty: XLA's defaults)",
    ]
