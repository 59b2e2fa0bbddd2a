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


# The matrix-product instructions that set a CPU's peak: the same "Model name" (e.g. "AMD EPYC")
# covers CPUs with and without AVX-512, whose matrix-product peaks differed 2.5x in our records.
_VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile")


def _vector_extensions(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's flags among _VECTOR_FLAGS, e.g. 'avx2 fma; not avx512f ...' (Linux only)."""
    try:
        with open(cpuinfo) as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return "unknown"
    present = set(flags.partition(":")[2].split())
    has = [flag for flag in _VECTOR_FLAGS if flag in present]
    lacks = [flag for flag in _VECTOR_FLAGS if flag not in present]
    return " ".join(has or ["none"]) + ("; not " + " ".join(lacks) if lacks else "")


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def cpu_line() -> str:
    """CPU model (with its family and model numbers), cores, vector instructions, memory."""
    cpu = _lscpu_field("Model name") or platform.processor() or "unknown"
    family, model = _lscpu_field("CPU family"), _lscpu_field("Model")
    if family and model:
        cpu += f" (family {family}, model {model})"
    memory = "unknown"
    if os.path.exists("/proc/meminfo"):
        with open("/proc/meminfo") as f:
            first = f.readline().split()
        memory = f"{int(first[1]) / 2**20:.1f} GiB"
    return (
        f"CPU: {cpu}; `nproc`: {os.cpu_count()}; "
        f"threads per core (lscpu): {_lscpu_field('Thread(s) per core') or '?'}; "
        f"vector instructions (/proc/cpuinfo): {_vector_extensions()}; memory: {memory}"
    )


def versions_line() -> str:
    packages = ("jax", "jaxlib", "flax", "optax", "numpy", "torch")
    return f"Python {platform.python_version()}; " + ", ".join(
        f"{p} {_version(p)}" for p in packages
    )


def machine_lines() -> list[str]:
    """The CPU, load, package versions and XLA_FLAGS, one Markdown bullet each."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        cpu_line(),
        f"Load average (1, 5, 15 min) when the record was written: {load}",
        versions_line(),
        f"XLA_FLAGS: `{os.environ.get('XLA_FLAGS', '')}` (empty: XLA's defaults)",
    ]
