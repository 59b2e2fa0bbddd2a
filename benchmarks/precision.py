"""The matmul peak by precision, for the GPU record: jnp.dot's rate at float32 HIGHEST (true
float32), at JAX's default precision and on bfloat16 inputs (torch.mm beside them); which
precision the default turned out to be, from its error against a float64 product
(`default_precision`); and every JAX GFLOP/s of a record over the float32 and default-precision
peaks (`percent_of_peaks_table`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import report
from benchmarks.measure import jax_matmul_gflops
from benchmarks.sections import Run


def _round_mantissa(x: np.ndarray, bits: int) -> np.ndarray:
    """float32 values rounded (to nearest) to `bits` explicit mantissa bits: TF32 10, bf16 7."""
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    drop = 23 - bits
    u = ((u + (1 << (drop - 1))) >> drop) << drop
    return u.astype(np.uint32).view(np.float32)


def _relative_error(c: Any, exact: np.ndarray) -> float:
    c = np.asarray(c, np.float64)
    return float(np.linalg.norm(c - exact) / np.linalg.norm(exact))


def default_precision(size: int) -> tuple[str, dict[str, float]]:
    """Which precision `jnp.dot` used on float32 inputs at JAX's default: its relative error
    against a float64 product, beside float32 HIGHEST and emulated TF32 and bf16 inputs."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, size, size), dtype=np.float32)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    errors = {
        "jnp.dot default": _relative_error(jax.jit(jnp.dot)(a, b), exact),
        "jnp.dot HIGHEST": _relative_error(
            jax.jit(lambda x, y: jnp.dot(x, y, precision="highest"))(a, b), exact
        ),
        "TF32 inputs (emulated)": _relative_error(
            _round_mantissa(a, 10).astype(np.float64) @ _round_mantissa(b, 10), exact
        ),
        "bf16 inputs (emulated)": _relative_error(
            _round_mantissa(a, 7).astype(np.float64) @ _round_mantissa(b, 7), exact
        ),
    }
    names = {"jnp.dot HIGHEST": "float32", "TF32 inputs (emulated)": "TF32"}
    names["bf16 inputs (emulated)"] = "bf16"
    log_default = np.log(errors["jnp.dot default"])
    closest = min(names, key=lambda n: abs(np.log(errors[n]) - log_default))
    return names[closest], errors


def torch_matmul_rates(size: int, repeats: int) -> dict[str, float]:
    """torch.mm at float32 (TF32 off, torch's default), with TF32 allowed, and on bfloat16."""
    import torch

    from benchmarks import torch_reference

    rates = {"torch.mm float32": torch_reference.matmul_gflops(size, repeats)}
    if torch_reference.device().type == "cuda":
        before = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = True
        try:
            rates["torch.mm TF32 allowed"] = torch_reference.matmul_gflops(size, repeats)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = before
    rates["torch.mm bfloat16"] = torch_reference.matmul_gflops(size, repeats, torch.bfloat16)
    return rates


@dataclasses.dataclass
class Peaks:
    float32: float  # jnp.dot at HIGHEST
    default: float  # jnp.dot at JAX's default precision
    default_name: str  # what the default turned out to be


def precision_section(r: Run, size: int, torch_on: bool) -> Peaks:
    args = r.args
    repeats = max(args.repeats, 3)
    rates = {
        "jnp.dot float32 HIGHEST": jax_matmul_gflops(
            args.peak_size, repeats, jnp.float32, "highest"
        ),
        "jnp.dot float32 default precision": jax_matmul_gflops(args.peak_size, repeats),
        "jnp.dot bfloat16": jax_matmul_gflops(args.peak_size, repeats, jnp.bfloat16),
    }
    if torch_on:
        rates.update(torch_matmul_rates(args.peak_size, repeats))
    name, errors = default_precision(size)
    table = report.Table(
        f"Matmul peak by precision ({args.peak_size}×{args.peak_size}, best of {repeats})",
        ["matmul", "GFLOP/s"],
    )
    for what, rate in rates.items():
        table.add(what, rate)
    setting = getattr(jax.config, "jax_default_matmul_precision", "?")
    table.notes += [
        f"JAX's default matmul precision (jax_default_matmul_precision = {setting!r}) gave "
        f"float32 products as {name}: relative error ‖C − C64‖/‖C64‖ of a {size}×{size} product "
        "against float64: "
        + "; ".join(f"{k} {v:.2e}" for k, v in errors.items())
        + " (the default is named after the nearest of the last three)",
        "every model in this record computes at JAX's default precision; 'JAX % of peak' in "
        "the tables below uses benchmarks.run's peak: the better of jnp.dot at the default "
        "precision and torch.mm float32",
    ]
    r.tables.append(table)
    return Peaks(rates["jnp.dot float32 HIGHEST"], rates["jnp.dot float32 default precision"], name)


def column(table: report.Table, header: str) -> list[Any] | None:
    if header not in table.headers:
        return None
    i = table.headers.index(header)
    return [row[i] for row in table.rows]


def percent_of_peaks_table(tables: Sequence[report.Table], peaks: Peaks) -> report.Table:
    """Every JAX GFLOP/s of the run over the float32 and the default-precision matmul peaks."""
    table = report.Table(
        "JAX GFLOP/s as a fraction of the measured matmul peaks",
        ["section", "row", "JAX GFLOP/s", "% of float32 peak",
         f"% of default-precision ({peaks.default_name}) peak"],
    )  # fmt: skip
    for t in tables:
        gflops = column(t, "JAX GFLOP/s") or column(t, "GFLOP/s")
        labels = column(t, t.headers[0])
        if gflops is None or labels is None or t.title.startswith("Matmul"):
            continue
        for label, value in zip(labels, gflops, strict=True):
            if isinstance(value, int | float):
                table.add(
                    t.title, label, value, 100 * value / peaks.float32, 100 * value / peaks.default
                )
    table.notes.append(
        f"float32 peak: jnp.dot at HIGHEST, {peaks.float32:,.0f} GFLOP/s; default-precision "
        f"peak: jnp.dot at JAX's default, {peaks.default:,.0f} GFLOP/s (measured once, before "
        "the training section)"
    )
    return table
