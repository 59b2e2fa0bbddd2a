"""The goals the record judges, as data: training's by model and measured quantity, importance
sampling's for every timed model, and the 'Targets' table that says which are met (none are
judged on a busy machine)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from benchmarks import report
from benchmarks.architectures import Architecture


@dataclasses.dataclass(frozen=True)
class Target:
    """A goal that a measured number is judged against in the 'Targets' table."""

    what: str  # the measured quantity
    at_least: float
    unit: str  # "×" (a ratio) or "%"

    @property
    def label(self) -> str:
        return f"{self.what} ≥ {self.at_least:g}{' ' if self.unit == '%' else ''}{self.unit}"

    def met(self, value: float) -> bool:
        return value >= self.at_least


# The goals, as data: training's by model and measured quantity ('speedup': JAX/PyTorch eager
# steps/s; 'speedup_best': JAX over the better of PyTorch eager and torch.compile;
# 'percent_of_peak': JAX's GFLOP/s over the matmul peak), and importance sampling's for every
# timed model.
TRAIN_TARGETS: dict[str, dict[str, Target]] = {
    "iwae": {
        "speedup": Target("JAX/PyTorch on the IWAE-paper VAE", 3, "×"),
        "speedup_best": Target(
            "JAX/(the better of PyTorch eager and torch.compile) on the IWAE-paper VAE", 1.5, "×"
        ),
    },
    "mlp": {
        "speedup": Target("JAX/PyTorch on the MLP VAE", 1.3, "×"),
        "percent_of_peak": Target("JAX % of peak, MLP VAE batch 128", 60, "%"),
    },
    "conv": {"speedup": Target("JAX/PyTorch on the conv VAE 28×28", 1, "×")},
    "conv64": {"speedup": Target("JAX/PyTorch on the conv VAE 64×64 RGB", 1, "×")},
}
IS_EVAL_PERCENT_OF_PEAK = 60.0


def is_eval_target(arch: Architecture) -> Target:
    return Target(
        f"JAX % of peak, importance-sampled evaluation, {arch.title}", IS_EVAL_PERCENT_OF_PEAK, "%"
    )


def targets_table(targets: Sequence[tuple[Target, float | None]], busy: bool) -> report.Table:
    """Each target's measured value and whether it is met (not judged on a busy machine)."""
    table = report.Table("Targets", ["target", "measured", "met"])
    for target, value in targets:
        if value is None or busy:
            met = "not judged (busy machine)" if busy else None
        else:
            met = "yes" if target.met(value) else "no"
        table.add(target.label, value, met)
    return table
