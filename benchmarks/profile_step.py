"""Where a training step's time goes, operation by operation: a `jax.profiler` trace of one call
of the real compiled epoch (`epoch.make_train_epoch`, `--steps` scanned steps, after a warm-up
call), summed per XLA thunk (a fusion, a matrix product, a copy) and divided by the steps.

    python -m benchmarks.profile_step --model=conv --steps=10 --top=25

Prints the `--top` thunks by thread-time (milliseconds on XLA's threads), then the step split
into matrix products (XLA:CPU's `dot` thunks and the YNNPACK fusions it runs them in) and
everything else. The trace's own overhead inflates every thunk a little: read the split and the
order, and take step times from `benchmarks.run`. Synthetic images; the model is
benchmarks/architectures.py's.

Not every product is timed whole: YNNPACK fusions (`ynn_fusion.N`) are, but a product XLA:CPU
hands to Eigen (`dot.N`, e.g. a weight gradient contracting both operands' leading axis) can end
its span before its work (a 25,088 × 576 by 25,088 × 128 weight-gradient product: a 0.3 ms
span for 23-33 ms of wall time, measured alone). The matrix-product total is a lower bound.
"""

from __future__ import annotations

import collections
import glob
import gzip
import json
import os
import tempfile
from collections.abc import Sequence

import jax
from absl import flags

from autoencoders import threefry
from benchmarks.architectures import ARCHITECTURES, Architecture
from benchmarks.datasets import synthetic_data
from benchmarks.measure import JaxModel
from experiments import cli

# What XLA:CPU names the thunks of matrix products: plain dots and the YNNPACK fusions of dots.
MATMUL_PREFIXES = ("dot", "ynn_fusion")
CONTAINER_THUNKS = ("while", "conditional", "call")  # thunks that run other thunks


def thunk_milliseconds(trace_dir: str) -> dict[str, float]:
    """Thread-milliseconds per XLA thunk name in the perfetto trace under `trace_dir`: the spans on
    XLA's threads (named 'tf_XLA...'), less the executor's own ('::' in the name), the markers of a
    thunk's end ('end: <thunk>') and the thunks that run others (a while loop: its body's thunks
    are counted instead). A thunk split over threads counts each thread's part."""
    (path,) = glob.glob(os.path.join(trace_dir, "**", "*.trace.json.gz"), recursive=True)
    with gzip.open(path) as f:
        events = json.load(f)
    events = events["traceEvents"] if isinstance(events, dict) else events
    xla_threads = {
        (e.get("pid"), e.get("tid"))
        for e in events
        if e.get("ph") == "M" and e["args"].get("name", "").startswith("tf_XLA")
    }
    totals: dict[str, float] = collections.defaultdict(float)
    for e in events:
        name = e.get("name", "")
        if (
            e.get("ph") == "X"
            and (e.get("pid"), e.get("tid")) in xla_threads
            and "::" not in name
            and not name.startswith(("end: ", *CONTAINER_THUNKS))
        ):
            totals[name] += e.get("dur", 0) / 1e3
    return dict(totals)


def profile_step(arch: Architecture, steps: int) -> dict[str, float]:
    """Milliseconds per step of each thunk of `steps` scanned training steps of `arch`."""
    bench = synthetic_data(arch.image_shape, steps * arch.batch_size, arch.batch_size, "profile")
    jax_model = JaxModel.build(arch, bench.spec, steps)
    state = jax_model.init_state(jax.random.key(0))
    train_epoch = jax_model.train_epoch(steps)
    images, labels = bench.train.images, bench.train.labels
    state, metrics = train_epoch(state, images, labels, jax.random.key(1))  # compiles
    jax.block_until_ready(metrics)
    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
            state, metrics = train_epoch(state, images, labels, jax.random.key(2))
            jax.block_until_ready(metrics)
        totals = thunk_milliseconds(trace_dir)
    return {name: ms / steps for name, ms in totals.items()}


def main(argv: Sequence[str]) -> None:
    cli.no_stray_arguments(argv)
    threefry.register_unrolled_cpu_lowering()
    arch, steps = ARCHITECTURES[flags.FLAGS.model], flags.FLAGS.steps
    per_step = profile_step(arch, steps)
    print(f"{arch.title}: thread-ms per step by XLA thunk ({steps} steps)")
    for name, ms in sorted(per_step.items(), key=lambda item: -item[1])[: flags.FLAGS.top]:
        print(f"{ms:9.2f}  {name}")
    matmuls = sum(ms for name, ms in per_step.items() if name.startswith(MATMUL_PREFIXES))
    rest = sum(per_step.values()) - matmuls
    print(
        f"matrix products {matmuls:.1f} ms (at least: see the module's docstring), the rest "
        f"{rest:.1f} ms, all {matmuls + rest:.1f} ms"
    )


if __name__ == "__main__":
    # Defined here, not at import: `benchmarks.run` (imported beside this module by the tests)
    # has flags of the same names.
    flags.DEFINE_enum("model", "conv", sorted(ARCHITECTURES), "benchmarks/architectures.py")
    flags.DEFINE_integer("steps", 10, "scanned training steps in the traced call", lower_bound=1)
    flags.DEFINE_integer("top", 25, "how many thunks to list", lower_bound=0)
    cli.run(main)
