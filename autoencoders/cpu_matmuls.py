"""Which library runs XLA:CPU's matrix products in a training run: measured, not assumed.

XLA:CPU (jaxlib 0.10) hands matrix products to YNNPACK by default; with its
`xla_cpu_experimental_ynn_fusion_type` option empty it runs them on its own Eigen kernels. Which
is faster depends on the program and on the CPU: on a 2-core Intel Xeon with AVX-512, Eigen ran
the conv VAEs' steps 15-24 % faster and the IWAE-paper VAE's (batch-20 products) three times
slower (docs/benchmarks.md). So, on CPU, `choose` compiles a short probe of the run's own program
(`epoch.choose_cpu_matmuls`: two of its training steps) both ways, times them in turn and keeps
Eigen only where it is clearly faster (`EIGEN_MARGIN`). AUTOENCODERS_CPU_MATMULS=ynnpack or
=eigen fixes the choice (to compare speed, or to skip the probe's few seconds of compiling); GPU
and TPU programs are left as they are.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
from absl import logging

ENV = "AUTOENCODERS_CPU_MATMULS"
CHOICES = ("auto", "ynnpack", "eigen")
OPTIONS: Mapping[str, Mapping[str, str]] = {
    "ynnpack": {},  # XLA:CPU's default
    "eigen": {"xla_cpu_experimental_ynn_fusion_type": ""},
}
# Eigen is kept only when its best probe call is this much faster than YNNPACK's: closer than
# that, the runs' spread decides, and XLA's default is the better-trodden path.
EIGEN_MARGIN = 0.05
ROUNDS = 3
# A probe call shorter than this is repeated within each timed sample, so that short steps (a
# millisecond for the IWAE-paper VAE) are timed above the clock's and the dispatch's noise.
MIN_SAMPLE_S = 0.1


@dataclasses.dataclass(frozen=True)
class Choice:
    """The kernels a run's CPU programs use and why; `options` go to `jax.jit`."""

    kernels: str  # 'ynnpack' or 'eigen'; 'xla' off CPU
    reason: str
    seconds: Mapping[str, float] = dataclasses.field(default_factory=dict)  # best probe call

    @property
    def options(self) -> dict[str, str]:
        return dict(OPTIONS.get(self.kernels, {}))

    def describe(self) -> str:
        return f"XLA:CPU matrix products: {self.kernels} ({self.reason})"


def requested() -> str:
    """AUTOENCODERS_CPU_MATMULS, checked ('auto' where unset or empty)."""
    value = os.environ.get(ENV, "auto") or "auto"
    if value not in CHOICES:
        raise ValueError(f"{ENV}={value!r}: must be one of {', '.join(CHOICES)}.")
    return value


def fixed() -> Choice:
    """The choice without a probe: the requested kernels, or XLA's default ones under 'auto'."""
    if jax.default_backend() != "cpu":
        return Choice("xla", f"{jax.default_backend()}: XLA's own")
    value = requested()
    if value == "auto":
        return Choice("ynnpack", "XLA's default; no probe for this program")
    return Choice(value, f"{ENV}={value}")


def recorded(kernels: str) -> Choice:
    """A resumed run's choice: the `kernels` it recorded when it started, unless
    AUTOENCODERS_CPU_MATMULS now fixes others or the run moved off CPU."""
    choice = fixed()
    if choice.kernels == "xla" or requested() != "auto" or kernels not in OPTIONS:
        return choice
    return Choice(kernels, "chosen when this run started (its metrics.jsonl), kept on resuming")


def choose(probe: Callable[[Mapping[str, str]], Callable[[], Any]], what: str) -> Choice:
    """Times `probe(options)()` under each library's compiler options and returns the faster.

    `probe(options)` builds the program with those `jax.jit` compiler options and returns one
    call of it (blocking until done); its first call compiles and is not timed. Then `ROUNDS`
    rounds time each in turn, so both share the machine's drift, each sample as many calls as
    make `MIN_SAMPLE_S`, and the best sample of each is compared (seconds per call). `what` names
    the probe in the reason (e.g. '2 steps of the epoch').
    """
    if jax.default_backend() != "cpu" or requested() != "auto":
        return fixed()
    started = time.perf_counter()
    calls = {"ynnpack": probe(OPTIONS["ynnpack"])}
    calls["ynnpack"]()
    try:
        calls["eigen"] = probe(OPTIONS["eigen"])
        calls["eigen"]()
    except Exception as error:  # noqa: BLE001  (an XLA without the option: keep its default)
        logging.warning("Eigen's products could not be compiled; keeping YNNPACK's: %s", error)
        return Choice("ynnpack", f"Eigen's could not be compiled: {type(error).__name__}")

    def sample(call: Callable[[], Any], calls_per_sample: int) -> float:
        start = time.perf_counter()
        for _ in range(calls_per_sample):
            call()
        return (time.perf_counter() - start) / calls_per_sample

    once = sample(calls["ynnpack"], 1)
    per_sample = max(1, math.ceil(MIN_SAMPLE_S / max(once, 1e-9)))
    best = {name: float("inf") for name in calls}
    for _ in range(ROUNDS):
        for name, call in calls.items():
            best[name] = min(best[name], sample(call, per_sample))
    kernels = "eigen" if best["eigen"] < (1 - EIGEN_MARGIN) * best["ynnpack"] else "ynnpack"
    timings = ", ".join(f"{best[name]:.3g} s with {name}" for name in calls)
    reason = (
        f"{what}, best of {ROUNDS} samples of {per_sample} call(s) in turn: {timings} per call; "
        f"Eigen kept only if {EIGEN_MARGIN:.0%} faster; the probe took "
        f"{time.perf_counter() - started:.1f} s, compiling included; {ENV}=ynnpack|eigen fixes it"
    )
    return Choice(kernels, reason, best)
