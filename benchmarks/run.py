"""Training and evaluation speed of this codebase on CPU, against a plain PyTorch eager reference.

    python -m benchmarks.run --markdown_out=docs/benchmarks.md

In one process on one machine:

- peak: the float32 matmul rate of jnp.dot and torch.mm on large square matrices; the better of
  the two is the peak that every "% of peak" refers to.
- train: the same VAEs (`--models`, see benchmarks/architectures.py) trained on the same data for
  the same number of steps by (a) this codebase's `epoch.make_train_epoch` with a model built
  from configs/vae.py and (b) benchmarks/torch_reference.py, a per-step PyTorch eager loop.
- is_eval: `density.importance_sampled_log_likelihood` (k = `--is_samples` on `--is_examples`
  test images) in examples·samples per second.
- vmap: S independently seeded models trained in one compiled program, in model-steps per second.

Warm-up and compilation are timed separately and excluded; each timed number is the median of
`--repeats` repeats, synchronised with block_until_ready. Timings are only meaningful on an
otherwise idle machine: the record states how much CPU other processes used before and during
the run, and does not judge the targets when that was more than a tenth of a core.

Flags: one per field of `Settings` (`--help` lists them). The targets the record judges are data
(`TRAIN_TARGETS`, `is_eval_target`). Like every entry point, it first registers the straight-line
CPU lowering of JAX's random bits (`autoencoders.threefry`; AUTOENCODERS_ROLLED_THREEFRY=1 keeps
JAX's own).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import itertools
import os
import shlex
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import flags

from autoencoders import data, density, epoch, models, optim, threefry
from autoencoders.quantities import option
from benchmarks import report, timing
from benchmarks.architectures import ARCHITECTURES, IMAGE_SHAPE, Architecture
from experiments import cli

BENCHMARKS = ("peak", "train", "is_eval", "vmap")
DATA_CHOICES = ("auto", "synthetic", "mnist")
MNIST_TRAIN = 60_000
# XLA's FLOP count is used where it is within this fraction of the analytic count, else the latter.
FLOPS_TOLERANCE = 0.15
TRAIN_TABLE = "Training throughput"
# Other processes using more than this many cores on average, in the seconds before the start
# or during the run, mark the record as taken on a busy machine (timing.OtherCpuMeter); where
# that cannot be measured (not Linux), a 1-minute load average above BUSY_LOAD at the start does.
BUSY_CORES = 0.1
BUSY_LOAD = 0.5
QUIET_CHECK_S = 2.0


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


# The goals, as data: training's by model and measured quantity ('speedup': JAX/PyTorch steps/s;
# 'percent_of_peak': JAX's GFLOP/s over the matmul peak), and importance sampling's for every
# timed model.
TRAIN_TARGETS: dict[str, dict[str, Target]] = {
    "iwae": {"speedup": Target("JAX/PyTorch on the IWAE-paper VAE", 3, "×")},
    "mlp": {
        "speedup": Target("JAX/PyTorch on the MLP VAE", 1.3, "×"),
        "percent_of_peak": Target("JAX % of peak, MLP VAE batch 128", 60, "%"),
    },
}
IS_EVAL_PERCENT_OF_PEAK = 60.0


def is_eval_target(arch: Architecture) -> Target:
    return Target(
        f"JAX % of peak, importance-sampled evaluation, {arch.title}", IS_EVAL_PERCENT_OF_PEAK, "%"
    )


# ---------------------------------------------------------------------------------------------
# Flags
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Settings:
    """What to run and how much of it; every field is a flag of the same name."""

    benchmarks: tuple[str, ...] = option(BENCHMARKS, "What to time: peak, train, is_eval, vmap.")
    models: tuple[str, ...] = option(
        tuple(ARCHITECTURES), f"Models trained: {', '.join(ARCHITECTURES)}."
    )
    no_torch_compile: bool = option(False, "Skip the torch.compile column.")
    steps: int = option(0, "Steps per timed repeat; 0: each model's default.")
    repeats: int = option(5, "Timed repeats; the median is reported.")
    torch_warmup_steps: int = option(20, "Untimed PyTorch steps before its timed repeats.")
    no_torch: bool = option(False, "Skip the PyTorch reference.")
    data: str = option(
        "auto", "Auto (MNIST if in $TFDS_DATA_DIR, else synthetic) | synthetic | mnist."
    )
    num_train: int = option(60_000, "Synthetic training images.")
    is_models: tuple[str, ...] = option(
        ("iwae", "mlp"), "Models whose importance sampling is timed."
    )
    is_examples: int = option(10_000, "Test images for is_eval.")
    is_samples: int = option(5000, "Importance samples k per image.")
    is_repeats: int = option(3, "Timed is_eval calls.")
    is_example_batch: int = option(
        0, "Examples per importance-sampling block; 0: density.EXAMPLE_BATCH."
    )
    vmap_model: str = option("iwae", "The model trained with vmapped seeds.")
    vmap_sizes: tuple[int, ...] = option((1, 2, 4, 8), "Numbers of vmapped members S.")
    peak_size: int = option(4096, "Side of the square matmul for the peak.")
    markdown_out: str = option("", "Write the record here (e.g. docs/benchmarks.md).")

    def __post_init__(self) -> None:
        for name, allowed in (
            ("benchmarks", BENCHMARKS),
            ("models", ARCHITECTURES),
            ("is_models", ARCHITECTURES),
            ("vmap_model", ARCHITECTURES),
            ("data", DATA_CHOICES),
        ):
            value = getattr(self, name)
            names = (value,) if isinstance(value, str) else value
            unknown = [n for n in names if n not in allowed]
            if unknown or not names:
                what = f"unknown {', '.join(unknown)}" if unknown else "empty"
                raise ValueError(f"--{name}: {what}; choose from {', '.join(allowed)}.")
        positive = ("repeats", "is_repeats", "is_examples", "is_samples", "num_train", "peak_size")
        if min(getattr(self, n) for n in positive) <= 0 or min(self.vmap_sizes, default=0) <= 0:
            raise ValueError(f"--{', --'.join(positive)} and --vmap_sizes must be > 0.")
        if min(self.steps, self.torch_warmup_steps, self.is_example_batch) < 0:
            raise ValueError("--steps, --torch_warmup_steps and --is_example_batch must be >= 0.")
        # A timed repeat is one epoch of `steps` minibatches drawn without replacement.
        images = self.num_train if self.data == "synthetic" else min(self.num_train, MNIST_TRAIN)
        trained = set(self.models if "train" in self.benchmarks else ())
        trained |= {self.vmap_model} if "vmap" in self.benchmarks else set()
        for name in sorted(trained):
            arch = ARCHITECTURES[name]
            steps = self.steps or arch.default_steps
            if steps * arch.batch_size > images:
                raise ValueError(
                    f"--steps: {steps} steps of {name}'s batch {arch.batch_size} need "
                    f"{steps * arch.batch_size:,} training images, more than the {images:,} "
                    "there are (--num_train for synthetic data; MNIST has 60,000)."
                )


_FLAGS = cli.define_dataclass_flags(Settings)
for _name in _FLAGS:
    flags.declare_key_flag(_name)  # listed by --help, as this module's own flags


def given_flags() -> list[str]:
    """The flags set on the command line, as `--name=value` (the record's command)."""
    return [flags.FLAGS[name].serialize() for name, holder in _FLAGS.items() if holder.present]


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BenchData:
    description: str
    spec: data.DataSpec
    train: data.Split  # uint8 grey levels on device
    test: data.Split


def load_data(choice: str, num_train: int, num_test: int) -> BenchData:
    tfds_dir = os.environ.get("TFDS_DATA_DIR", "")
    has_mnist = bool(tfds_dir) and os.path.isdir(os.path.join(tfds_dir, "mnist"))
    if choice == "mnist" or (choice == "auto" and has_mnist):
        dataset = data.load(ARCHITECTURES["mlp"].jax_config().data)  # mnist, dynamic binarization
        return BenchData(
            f"MNIST from TFDS ({tfds_dir or 'the TFDS default directory'}): "
            f"{dataset.train.size:,} train, {dataset.test.size:,} test images, 8-bit grey levels, "
            "binarized dynamically",
            dataset.spec,
            dataset.train,
            dataset.test,
        )
    why = "chosen by --data" if choice == "synthetic" else "$TFDS_DATA_DIR holds no mnist"
    return synthetic_data(IMAGE_SHAPE, num_train, num_test, why)


def synthetic_data(
    shape: tuple[int, int, int], num_train: int, num_test: int, why: str
) -> BenchData:
    """Uniform random uint8 images of `shape` (speed does not depend on the pixels)."""
    rng = np.random.default_rng(0)

    def split(n: int) -> data.Split:
        images = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.int32)
        return data.Split(jnp.asarray(images), jnp.asarray(labels))

    spec = data.DataSpec(
        name="synthetic",
        shape=shape,
        num_levels=256,
        num_classes=10,
        kind=data.data_kind(256, "dynamic", False),
    )
    size = "MNIST-sized 28×28×1" if shape == IMAGE_SHAPE else "×".join(map(str, shape))
    return BenchData(
        f"synthetic ({why}): uniform random uint8 grey levels 0..255, {size}, "
        f"{num_train:,} train and {num_test:,} test images, binarized dynamically",
        spec,
        split(num_train),
        split(num_test),
    )


# Training images of a model whose image shape is not the run's data's (the 64×64 RGB conv VAE):
# synthetic, at most this many (12 KiB each at 64×64×3).
OTHER_SHAPE_TRAIN = 10_000


def data_for(arch: Architecture, bench: BenchData) -> BenchData:
    """`bench` if its images have `arch.image_shape`, else synthetic images of that shape."""
    if bench.spec.shape == arch.image_shape:
        return bench
    why = f"{arch.name} needs {'×'.join(map(str, arch.image_shape))} images"
    return synthetic_data(
        arch.image_shape, min(bench.train.size, OTHER_SHAPE_TRAIN), arch.batch_size, why
    )


# ---------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Measured:
    """Seconds: warm-up (excluded), then the timed repeats."""

    warmup_s: float  # JAX: lower + compile; PyTorch: the warm-up steps
    first_call_s: float | None  # JAX: the first call of the compiled program (excluded)
    repeat_s: list[float]

    @property
    def median_s(self) -> float:
        return statistics.median(self.repeat_s)


@dataclasses.dataclass
class TrainResult:
    measured: Measured
    steps: int
    num_params: int
    loss: float  # mean training loss of the last repeat, nats per image
    xla_flops_per_step: float | None = None

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.measured.median_s


class CompileClock:
    """Seconds JAX spends tracing, lowering and compiling, from jax.monitoring's duration events."""

    def __init__(self) -> None:
        self.total_s = 0.0
        jax.monitoring.register_event_duration_secs_listener(self._on_event)

    def _on_event(self, event: str, duration_secs: float, **kwargs: Any) -> None:
        if event.startswith("/jax/core/compile/"):
            self.total_s += duration_secs


_compile_clock: CompileClock | None = None


def compile_clock() -> CompileClock:
    global _compile_clock
    if _compile_clock is None:
        _compile_clock = CompileClock()
    return _compile_clock


def xla_flops(jitted: Any, *args: Any) -> float | None:
    """XLA's cost-analysis FLOP count of the compiled `jitted(*args)` (None if unavailable)."""
    try:
        cost = jitted.lower(*args).compile().cost_analysis()
    except NotImplementedError:
        return None
    if isinstance(cost, list):  # older jax: one dict per device program
        cost = cost[0] if cost else {}
    flops = (cost or {}).get("flops", 0.0)
    return float(flops) if flops > 0 else None


def chosen_flops(xla: float | None, analytic: float) -> tuple[float, str]:
    """XLA's count where it agrees with the analytic one within FLOPS_TOLERANCE, else analytic."""
    if xla is not None and abs(xla / analytic - 1) <= FLOPS_TOLERANCE:
        return xla, "XLA"
    return analytic, "analytic"


def time_compiled(
    jitted: Any,
    state: Any,
    split: data.Split,
    call_key: Callable[[int], jax.Array],
    repeats: int,
) -> tuple[Measured, Any, Any]:
    """Compiles jitted(state, images, labels, key) ahead of time, calls it once (the first call,
    timed apart), then `repeats` timed calls; the (donated) state is threaded through them all.

    A per-step epoch loop (`epoch.epoch_loop` 'steps': a Python function over a compiled step)
    has no ahead-of-time form: its compilation falls into the first call, and compile time is 0."""
    compiled = jitted

    def compile_it() -> None:
        nonlocal compiled
        compiled = jitted.lower(state, split.images, split.labels, call_key(0)).compile()

    compile_s = timing.seconds(compile_it) if hasattr(jitted, "lower") else 0.0
    calls, metrics = 0, None

    def call() -> None:
        nonlocal state, metrics, calls
        state, metrics = compiled(state, split.images, split.labels, call_key(calls))
        jax.block_until_ready((state, metrics))
        calls += 1

    first_s = timing.seconds(call)
    times = timing.repeat_seconds(call, repeats)
    return Measured(compile_s, first_s, times), state, metrics


@dataclasses.dataclass
class JaxModel:
    """A model of this codebase built from an architecture's config, and its initial state."""

    arch: Architecture
    model: models.Model
    tx: Any
    example: dict[str, jax.Array]

    @classmethod
    def build(cls, arch: Architecture, spec: data.DataSpec, steps: int) -> JaxModel:
        config = arch.jax_config()
        if spec.shape != arch.image_shape:  # the model is built for its own images
            spec = dataclasses.replace(spec, shape=arch.image_shape)
        model = models.make(config, spec)
        tx = optim.make(config.optimizer, steps_per_epoch=steps, num_epochs=1)
        example = {
            "x": jnp.zeros((arch.batch_size, *spec.shape)),
            "y": jnp.zeros((arch.batch_size,), jnp.int32),
        }
        return cls(arch, model, tx, example)

    def init_state(self, key: jax.Array) -> optim.TrainState:
        """The initial train state, initialised in one compiled program (not op by op)."""
        return jax.jit(self.make_state)(key)

    def make_state(self, key: jax.Array) -> optim.TrainState:
        return self.model.init_state(key, self.example, self.tx)

    def train_epoch(self, steps: int) -> Any:
        """The real training loop (`epoch.make_train_epoch`) for `steps` minibatch steps."""
        return epoch.make_train_epoch(self.model, self.tx, self.model.config, steps)

    def step_flops(self, state: optim.TrainState) -> float | None:
        """XLA's FLOP count of one minibatch step of the real compiled epoch: an epoch of one
        step over a dataset of one minibatch (its shuffle and preprocessing included)."""
        images = jnp.zeros((self.arch.batch_size, *self.model.spec.shape), jnp.uint8)
        labels = jnp.zeros((self.arch.batch_size,), jnp.int32)
        one_step = epoch.make_train_epoch(self.model, self.tx, self.model.config, 1, compiled=False)
        return xla_flops(jax.jit(one_step), state, images, labels, jax.random.key(0))


def num_params(params: Any) -> int:
    return int(sum(p.size for p in jax.tree.leaves(params)))


def bench_jax_training(
    arch: Architecture, bench: BenchData, steps: int, repeats: int
) -> TrainResult:
    jm = JaxModel.build(arch, bench.spec, steps)
    state = jm.init_state(jax.random.key(0))
    flops = jm.step_flops(state)
    size = num_params(state.params)
    root = jax.random.key(1)
    measured, state, metrics = time_compiled(
        jm.train_epoch(steps), state, bench.train, lambda c: jax.random.fold_in(root, c), repeats
    )
    return TrainResult(measured, steps, size, float(metrics["loss"]), flops)


def bench_torch_training(
    arch: Architecture,
    bench: BenchData,
    steps: int,
    repeats: int,
    warmup_steps: int,
    compiled: bool = False,
) -> TrainResult:
    """The PyTorch reference, eager or (`compiled`) with its loss through torch.compile: then the
    first step compiles, timed apart as `first_call_s`, before the warm-up steps."""
    from benchmarks import torch_reference

    trainer = torch_reference.TorchTrainer(arch, np.asarray(bench.train.images), compiled=compiled)
    first_s = timing.seconds(lambda: trainer.train_steps(1)) if compiled else None
    warmup_s = timing.seconds(lambda: trainer.train_steps(warmup_steps))
    losses: list[float] = []
    times = timing.repeat_seconds(lambda: losses.append(trainer.train_steps(steps)), repeats)
    return TrainResult(Measured(warmup_s, first_s, times), steps, trainer.num_params(), losses[-1])


def torch_compile_unavailable() -> str | None:
    """Why torch.compile cannot run here (Inductor on CPU compiles C++), or None."""
    import shutil

    compiler = os.environ.get("CXX") or "g++"
    if not (shutil.which(compiler) or shutil.which("c++") or shutil.which("clang++")):
        return f"no C++ compiler ({compiler}, c++ or clang++) for Inductor"
    return None


def bench_torch_compiled(
    arch: Architecture, bench: BenchData, steps: int, repeats: int, warmup_steps: int
) -> TrainResult | str:
    """torch.compile's timing, or why it did not run: 'unavailable: <reason>'."""
    reason = torch_compile_unavailable()
    if reason is None:
        try:
            return bench_torch_training(arch, bench, steps, repeats, warmup_steps, compiled=True)
        except Exception as e:  # a failed compilation is a result of the benchmark, not a crash
            reason = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:160]}"
    return f"unavailable: {reason}"


@dataclasses.dataclass
class ISResult:
    measured: Measured  # repeat_s: wall seconds minus compile-related seconds, per call
    compile_s: list[float]  # compile-related seconds inside each timed call
    num_examples: int
    num_samples: int
    chunk: int
    example_batch: int
    xla_flops_per_pair: float | None

    @property
    def pairs_per_s(self) -> float:
        return self.num_examples * self.num_samples / self.measured.median_s


def bench_importance_sampling(
    arch: Architecture,
    bench: BenchData,
    num_examples: int,
    num_samples: int,
    repeats: int,
    example_batch: int = 0,
) -> ISResult:
    chunk = min(density.SAMPLE_CHUNK, num_samples)
    example_batch = example_batch or density.EXAMPLE_BATCH
    jm = JaxModel.build(arch, bench.spec, 1)
    params = jm.init_state(jax.random.key(0)).params
    n = min(num_examples, bench.test.size)
    x = data.preprocess(
        bench.test.images[:n], jax.random.key(2), bench.spec.num_levels, "dynamic", False
    )
    y = bench.test.labels[:n]
    key = jax.random.key(3)
    clock = compile_clock()
    compile_s: list[float] = []

    def call() -> None:
        before = clock.total_s
        density.importance_sampled_log_likelihood(
            jm.model, params, x, y, key, num_samples, (), chunk, example_batch
        )  # returns numpy arrays: synchronous
        compile_s.append(clock.total_s - before)

    first_s = timing.seconds(call)
    wall = timing.repeat_seconds(call, repeats)
    run_s = [w - c for w, c in zip(wall, compile_s[1:], strict=True)]
    block = {"x": x[:example_batch], "y": y[:example_batch]}
    flops = xla_flops(
        jax.jit(jm.model.log_importance_weights, static_argnums=3), params, block, key, chunk
    )
    per_pair = None if flops is None else flops / (min(example_batch, n) * chunk)
    return ISResult(
        Measured(compile_s[0], first_s, run_s),
        compile_s[1:],
        n,
        num_samples,
        chunk,
        example_batch,
        per_pair,
    )


def bench_vmapped_members(
    arch: Architecture, bench: BenchData, steps: int, repeats: int, sizes: Sequence[int]
) -> tuple[dict[int, Measured], float | None]:
    """{S: timing of S models trained in one program}, and XLA's FLOPs of one member's step.

    S members with independent initialisations and data streams: jax.vmap over the state and
    the key of the real compiled epoch (`epoch.make_train_epoch`), jitted as one program.
    """
    jm = JaxModel.build(arch, bench.spec, steps)
    flops = jm.step_flops(jm.init_state(jax.random.key(0)))
    members = jax.jit(jax.vmap(jm.train_epoch(steps), in_axes=(0, None, None, 0)), donate_argnums=0)
    results = {}
    for size in sizes:
        states = jax.jit(jax.vmap(jm.make_state))(jax.random.split(jax.random.key(0), size))
        root = jax.random.key(size)
        results[size], _, _ = time_compiled(
            members,
            states,
            bench.train,
            lambda c, root=root, size=size: jax.random.split(jax.random.fold_in(root, c), size),
            repeats,
        )
    return results, flops


def step_matmul_seconds(arch: Architecture, steps: int, repeats: int) -> tuple[float, int] | None:
    """(seconds per step, FLOPs per step) of a training step's dense-layer products alone, `steps`
    steps in one jitted loop (best of `repeats`): forward x·W, weight gradient xᵀ·g and input
    gradient g·Wᵀ (none for the first encoder layer, whose input is data), at the step's shapes.
    None for convolutional models."""
    if arch.kind != "mlp":
        return None
    batch = arch.batch_size
    layers = [
        *itertools.pairwise(arch.encoder_dense_dims()),
        *itertools.pairwise(arch.decoder_dense_dims()),
    ]
    keys = iter(jax.random.split(jax.random.key(0), 3 * len(layers)))
    xs = [jax.random.normal(next(keys), (batch, i)) for i, _ in layers]
    ws = [jax.random.normal(next(keys), (i, o)) for i, o in layers]
    gs = [jax.random.normal(next(keys), (batch, o)) for _, o in layers]
    flops = sum(2 * batch * i * o * (2 if n == 0 else 3) for n, (i, o) in enumerate(layers))

    @jax.jit
    def loop(xs, ws, gs):
        def step(carry, _):
            scale = 1.0 + 1e-30 * carry  # inputs depend on the carry: nothing leaves the loop
            total = carry
            for n, (x, w, g) in enumerate(zip(xs, ws, gs, strict=True)):
                x, g = x * scale, g * scale
                total += jnp.sum(x @ w) + jnp.sum(x.T @ g)
                if n:
                    total += jnp.sum(g @ w.T)
            return total * 1e-30, None

        return jax.lax.scan(step, jnp.zeros(()), None, length=steps)[0]

    seconds = timing.best_seconds(lambda: loop(xs, ws, gs).block_until_ready(), repeats)
    return seconds / steps, flops


def optimizer_step_seconds(
    arch: Architecture, spec: data.DataSpec, steps: int, repeats: int
) -> float:
    """Seconds per step of the model's optimizer update alone (the config's optax Adam on its
    parameters, with fixed gradients), `steps` updates in one jitted loop, best of `repeats`."""
    jm = JaxModel.build(arch, spec, steps)
    params = jm.init_state(jax.random.key(0)).params
    grads = jax.tree.map(lambda p: 1e-3 * jnp.ones_like(p), params)

    @functools.partial(jax.jit, donate_argnums=0)
    def loop(state, grads):
        def step(state, _):
            params, opt_state = state
            updates, opt_state = jm.tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        return jax.lax.scan(step, state, None, length=steps)[0]

    state = (params, jm.tx.init(params))

    def call() -> None:
        nonlocal state
        state = jax.block_until_ready(loop(state, grads))

    return timing.best_seconds(call, repeats) / steps


def jax_matmul_gflops(size: int, repeats: int) -> float:
    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (size, size), jnp.float32)
    dot = jax.jit(jnp.dot)
    return timing.best_matmul_gflops(lambda: dot(a, b).block_until_ready(), size, repeats)


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def percent(gflops: float | None, peak: float | None) -> float | None:
    return None if gflops is None or not peak else 100 * gflops / peak


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


@dataclasses.dataclass
class Run:
    """What the tables are built from, filled in benchmark by benchmark."""

    args: Settings
    bench: BenchData
    torch_threads: int | None
    # The matmul peak, measured again before each timed section (a CPU's clock drifts over
    # minutes): (section, {framework: GFLOP/s}).
    peaks: list[tuple[str, dict[str, float]]] = dataclasses.field(default_factory=list)
    tables: list[report.Table] = dataclasses.field(default_factory=list)
    raw: list[str] = dataclasses.field(default_factory=list)
    targets: list[tuple[Target, float | None]] = dataclasses.field(default_factory=list)

    def log(self, label: str, measured: Measured) -> None:
        first = "" if measured.first_call_s is None else f", first call {measured.first_call_s:.3f}"
        line = f"{label}: warm-up {measured.warmup_s:.3f}{first}; repeats " + ", ".join(
            f"{t:.4f}" for t in measured.repeat_s
        )
        self.raw.append(line)
        print(line, flush=True)

    def steps_for(self, arch: Architecture) -> int:
        return self.args.steps or arch.default_steps

    @property
    def peak_size_and_repeats(self) -> tuple[int, int]:
        return self.args.peak_size, max(self.args.repeats, 3)

    def measure_peak(self, section: str) -> float | None:
        """The matmul peak now, for `section`'s '% of peak'; None without the peak benchmark."""
        if "peak" not in self.args.benchmarks:
            return None
        size, repeats = self.peak_size_and_repeats
        rates = {"jnp.dot (jit)": jax_matmul_gflops(size, repeats)}
        if self.torch_threads is not None:
            from benchmarks import torch_reference

            rates["torch.mm"] = torch_reference.matmul_gflops(size, repeats)
        self.peaks.append((section, rates))
        return max(rates.values())


def peak_table(run: Run) -> report.Table:
    size, repeats = run.peak_size_and_repeats
    frameworks = list(run.peaks[0][1])
    table = report.Table(
        f"Matmul peak (float32 {size}×{size}, best of {repeats} after a warm-up)",
        ["measured before", *(f"{f} GFLOP/s" for f in frameworks), "peak used"],
    )
    for section, rates in run.peaks:
        table.add(section, *(rates[f] for f in frameworks), max(rates.values()))
    table.notes.append(
        "measured again right before each timed section, whose '% of peak' uses that row's peak "
        "(the better of the two frameworks): the CPU's clock drifts over minutes"
    )
    return table


def run_training(run: Run) -> None:
    args = run.args
    throughput = report.Table(
        TRAIN_TABLE,
        ["model", "batch", "steps", "JAX steps/s", "PyTorch steps/s", "JAX/PyTorch",
         "torch.compile steps/s", "JAX/torch.compile", "JAX examples/s", "PyTorch examples/s",
         "JAX % of peak", "PyTorch % of peak"],
    )  # fmt: skip
    time_split = report.Table(
        "Where a JAX training step's time goes",
        ["model", "JAX step ms", "matmuls alone ms", "matmuls alone % of peak",
         "optimizer alone ms", "the rest ms", "PyTorch step ms",
         "JAX/PyTorch if the rest took no time", "JAX % of peak if the rest took no time"],
    )  # fmt: skip
    flops_table = report.Table(
        "Training FLOPs",
        ["model", "params JAX", "params PyTorch", "GFLOP/step XLA", "GFLOP/step analytic",
         "XLA/analytic", "FLOPs used", "JAX GFLOP/s", "PyTorch GFLOP/s"],
    )  # fmt: skip
    warmup = report.Table(
        "Warm-up and compilation (excluded from the timings) and final losses",
        ["model", "JAX lower+compile s", "JAX first call s",
         f"PyTorch {args.torch_warmup_steps} warm-up steps s",
         "torch.compile first step (compiling) s",
         "JAX loss (last repeat)", "PyTorch loss (last repeat)",
         "torch.compile loss (last repeat)"],
    )  # fmt: skip
    other_data: list[str] = []  # models trained on other images than the record's Data
    for name in args.models:
        arch = ARCHITECTURES[name]
        steps = run.steps_for(arch)
        peak = run.measure_peak(f"{arch.title}, training")
        bench = data_for(arch, run.bench)
        jax_result = bench_jax_training(arch, bench, steps, args.repeats)
        matmul_s = step_matmul_seconds(arch, steps, args.repeats)
        optimizer_s = optimizer_step_seconds(arch, bench.spec, steps, args.repeats)
        run.log(f"{name} JAX ({steps} steps)", jax_result.measured)
        torch_result = None
        compiled: TrainResult | str | None = None
        if run.torch_threads is not None:
            torch_result = bench_torch_training(
                arch, bench, steps, args.repeats, args.torch_warmup_steps
            )
            run.log(f"{name} PyTorch ({steps} steps)", torch_result.measured)
            if not args.no_torch_compile:
                compiled = bench_torch_compiled(
                    arch, bench, steps, args.repeats, args.torch_warmup_steps
                )
                if isinstance(compiled, str):
                    run.raw.append(f"{name} torch.compile: {compiled}")
                else:
                    run.log(f"{name} torch.compile ({steps} steps)", compiled.measured)
        if bench is not run.bench:
            other_data.append(f"{arch.title}: {bench.description}")
        compiled_ok = compiled if isinstance(compiled, TrainResult) else None
        compiled_steps = compiled_ok.steps_per_s if compiled_ok else compiled
        analytic = float(arch.train_flops_per_step())
        flops, source = chosen_flops(jax_result.xla_flops_per_step, analytic)
        jax_gflops = jax_result.steps_per_s * flops / 1e9
        torch_steps = torch_result.steps_per_s if torch_result else None
        torch_gflops = None if torch_steps is None else torch_steps * flops / 1e9
        speedup = ratio(jax_result.steps_per_s, torch_steps)
        batch = arch.batch_size
        throughput.add(
            arch.title, batch, steps, jax_result.steps_per_s, torch_steps, speedup,
            compiled_steps,
            ratio(jax_result.steps_per_s, compiled_ok.steps_per_s if compiled_ok else None),
            jax_result.steps_per_s * batch, None if torch_steps is None else torch_steps * batch,
            percent(jax_gflops, peak), percent(torch_gflops, peak),
        )  # fmt: skip
        jax_step_s = 1 / jax_result.steps_per_s
        matmul_ms = None if matmul_s is None else 1e3 * matmul_s[0]
        floor_s = None if matmul_s is None else matmul_s[0] + optimizer_s
        time_split.add(
            arch.title, 1e3 * jax_step_s, matmul_ms,
            None if matmul_s is None else percent(matmul_s[1] / matmul_s[0] / 1e9, peak),
            1e3 * optimizer_s, None if floor_s is None else 1e3 * (jax_step_s - floor_s),
            None if torch_steps is None else 1e3 / torch_steps,
            None if floor_s is None or torch_steps is None else 1 / (floor_s * torch_steps),
            None if floor_s is None else percent(flops / floor_s / 1e9, peak),
        )  # fmt: skip
        xla = jax_result.xla_flops_per_step
        flops_table.add(
            arch.title, jax_result.num_params, torch_result.num_params if torch_result else None,
            None if xla is None else xla / 1e9, analytic / 1e9, ratio(xla, analytic), source,
            jax_gflops, torch_gflops,
        )  # fmt: skip
        warmup.add(
            arch.title, jax_result.measured.warmup_s, jax_result.measured.first_call_s,
            torch_result.measured.warmup_s if torch_result else None,
            compiled_ok.measured.first_call_s if compiled_ok else compiled,
            jax_result.loss, torch_result.loss if torch_result else None,
            compiled_ok.loss if compiled_ok else None,
        )  # fmt: skip
        measured = {"speedup": speedup, "percent_of_peak": percent(jax_gflops, peak)}
        run.targets += [(t, measured[key]) for key, t in TRAIN_TARGETS.get(name, {}).items()]
    throughput.notes += [
        f"median of {args.repeats} repeats; each repeat runs `steps` optimizer steps; "
        "examples/s = steps/s × batch",
        "JAX: one call of the compiled `epoch.make_train_epoch` per repeat (on-device "
        "shuffling, dynamic binarization, Adam, all steps in one lax.scan; convolutions: "
        f"{conv_note()}); PyTorch: "
        "benchmarks/torch_reference.py, one Python iteration per step",
        "torch.compile: the same PyTorch trainer with its loss (forward and backward) through "
        "`torch.compile` (Inductor, default mode), Adam eager; its first step compiles and is "
        "left out of the timing (the warm-up table gives its seconds); 'unavailable: ...' where "
        "it cannot run (--no_torch_compile skips it)",
        *other_data,
        "% of peak: GFLOP/s (FLOPs per step from the 'FLOPs used' column of 'Training FLOPs') "
        "over the matmul peak measured right before the model's rows",
    ]
    time_split.notes += [
        "matmuls alone: the step's dense-layer products only (forward, input and weight "
        "gradients at its shapes, `step_matmul_seconds`), jitted in one loop like the epoch, "
        "best of the repeats; MLPs only",
        "optimizer alone: the config's optax update (Adam) on the model's parameters with fixed "
        "gradients, jitted in one loop (`optimizer_step_seconds`), best of the repeats",
        "the rest: the step minus both: activations, likelihood, KL, random numbers (dynamic "
        "binarization, the posterior sample), the minibatch gather and the loop itself",
        "the last two columns bound what removing all of 'the rest' could give (FLOPs as in "
        "'Training FLOPs')",
    ]
    flops_table.notes += [
        "XLA: `compiled.cost_analysis()['flops']` of one step of the compiled epoch (an epoch "
        "of one minibatch) "
        "(the scanned epoch's cost analysis counts its loop body once, not per step)",
        "analytic: 3 × 2 × Σ(dense and conv multiply-accumulates) × batch "
        "(benchmarks/architectures.py); it counts the first layer's input gradient, "
        "which is never computed, and no elementwise work",
        f"FLOPs used: XLA's count where within {FLOPS_TOLERANCE:.0%} of the analytic one, else "
        "the analytic one",
    ]
    run.tables += [throughput, time_split, flops_table, warmup]


def run_importance_sampling(run: Run) -> None:
    args = run.args
    table = report.Table(
        "Importance-sampled evaluation",
        ["model", "examples", "samples k", "seconds", "compile-related s per call",
         "examples·samples/s", "FLOP/(example·sample) XLA", "analytic", "FLOPs used",
         "GFLOP/s", "% of peak", "first call s"],
    )  # fmt: skip
    for name in args.is_models:
        arch = ARCHITECTURES[name]
        peak = run.measure_peak(f"{arch.title}, importance sampling")
        result = bench_importance_sampling(
            arch,
            run.bench,
            args.is_examples,
            args.is_samples,
            args.is_repeats,
            args.is_example_batch,
        )
        run.log(f"is_eval {arch.name} (seconds minus compile)", result.measured)
        analytic = arch.importance_sample_flops(result.num_samples)
        flops, source = chosen_flops(result.xla_flops_per_pair, analytic)
        gflops = result.pairs_per_s * flops / 1e9
        table.add(
            arch.title, result.num_examples, result.num_samples, result.measured.median_s,
            statistics.median(result.compile_s), result.pairs_per_s, result.xla_flops_per_pair,
            analytic, source, gflops, percent(gflops, peak), result.measured.first_call_s,
        )  # fmt: skip
        run.targets.append((is_eval_target(arch), percent(gflops, peak)))
    table.notes += [
        f"the first {result.num_examples:,} of {run.bench.test.size:,} test images (--is_examples)",
        f"`density.importance_sampled_log_likelihood` with sample_chunk={result.chunk} and "
        f"example_batch={result.example_batch} (--is_example_batch; 0: density.EXAMPLE_BATCH), "
        "untrained parameters "
        f"(speed does not depend on them); median of {args.is_repeats} calls after a first call "
        "(whose compile-related seconds are in the raw timings as 'warm-up')",
        "seconds = wall time minus the compile-related seconds inside the same call (jax."
        "monitoring's /jax/core/compile/* duration events: tracing, lowering, XLA compilation); "
        "the second column shows them, because the estimator compiles again on every call",
        "XLA FLOPs: cost analysis of jit(model.log_importance_weights) on one block of "
        f"{result.example_batch} examples × {result.chunk} samples, divided by the pairs",
    ]
    run.tables.append(table)


def run_vmap(run: Run) -> None:
    args = run.args
    arch = ARCHITECTURES[args.vmap_model]
    steps = run.steps_for(arch)
    peak = run.measure_peak(f"{arch.title}, vmapped seeds")
    results, xla = bench_vmapped_members(arch, run.bench, steps, args.repeats, args.vmap_sizes)
    flops, _ = chosen_flops(xla, float(arch.train_flops_per_step()))
    table = report.Table(
        f"Vmapped seeds: {arch.title}, batch {arch.batch_size}",
        ["members S", "steps", "seconds", "model-steps/s", "× S=1", "examples/s", "GFLOP/s",
         "% of peak", "lower+compile s"],
    )  # fmt: skip
    base = None
    for size, measured in results.items():
        run.log(f"vmap {arch.name} S={size} ({steps} steps)", measured)
        model_steps = size * steps / measured.median_s
        base = base or model_steps
        gflops = model_steps * flops / 1e9
        table.add(
            size, steps, measured.median_s, model_steps, model_steps / base,
            model_steps * arch.batch_size, gflops, percent(gflops, peak),
            measured.warmup_s,
        )  # fmt: skip
    table.notes += [
        "one program: jax.jit(jax.vmap(epoch.make_train_epoch(...), in_axes=(0, None, None, 0)))"
        " — S members differing only in their seed (initialisation and data stream), over the "
        "same uint8 training set",
        f"median of {args.repeats} repeats; × S=1 is model-steps/s over the first row's",
    ]
    run.tables.append(table)


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


def conv_note() -> str:
    """How the timed programs lowered convolutions (and so which epoch loop 'auto' chose)."""
    from autoencoders import conv

    chosen = conv.lowering()
    forced = os.environ.get(conv.LOWERING_ENV, "auto") not in ("", "auto")
    why = f"{conv.LOWERING_ENV}={chosen}" if forced else f"chosen for {jax.default_backend()}"
    if chosen == "xla":
        return (
            f"XLA's own ({why}); on CPU `epoch_loop='auto'` then runs a Python loop over one "
            "compiled step instead of the scan, since XLA:CPU runs them far slower in a loop"
        )
    return (
        f"matrix products, `autoencoders/conv.py` ({why}; {conv.LOWERING_ENV}=xla keeps XLA's own)"
    )


def threefry_note() -> str:
    """Which lowering of JAX's random bits the timed programs used on CPU."""
    if threefry.is_registered():
        return (
            "lowered straight-line (`autoencoders/threefry.py`, the same bits as JAX's rolled "
            "loop; AUTOENCODERS_ROLLED_THREEFRY=1 turns it off)"
        )
    if threefry.rolled_requested():
        return "JAX's rolled loop (AUTOENCODERS_ROLLED_THREEFRY=1)"
    return "JAX's rolled loop (the straight-line lowering could not be registered: see the log)"


def machine_contention(
    load_at_start: tuple[float, float, float], before: float | None, during: float | None
) -> tuple[bool, str]:
    """(busy, a sentence for the record) from other processes' CPU use before and during the run
    (in cores; None where it cannot be measured) and the load average at the start."""
    loads = ", ".join(f"{x:.2f}" for x in load_at_start)
    load = f"load average (1, 5, 15 min) at the start: {loads}"
    if before is None or during is None:
        busy = load_at_start[0] > BUSY_LOAD
        text = f"Other processes' CPU use: not measurable here; {load}"
        why = f"1-min load above {BUSY_LOAD}"
    else:
        busy = max(before, during) > BUSY_CORES
        text = (
            "Other processes' CPU use (the machine's busy time in /proc/stat minus this "
            f"process's): {before:.3f} cores in the {QUIET_CHECK_S:g} s before the start, "
            f"{during:.3f} cores during the run; {load}"
        )
        why = f"other processes used more than {BUSY_CORES} cores"
    if busy:
        text += f" — **the machine was busy ({why}): these timings are not representative**"
    return busy, text


def main(argv: Sequence[str]) -> None:
    """`cli.run`'s main: the flags are parsed; registers the Threefry lowering, as every entry
    point does, then runs the benchmarks."""
    cli.no_stray_arguments(argv)
    settings = cli.dataclass_from_flags(Settings, _FLAGS)
    threefry.register_unrolled_cpu_lowering()
    run_benchmarks(settings, given_flags())


def run_benchmarks(args: Settings, command_flags: Sequence[str] = ()) -> str:
    """Runs the selected benchmarks; prints (and with --markdown_out writes) the record, whose
    command line shows `command_flags`. Rewriting a record keeps its `report.KEPT_HEADING` part."""
    started = datetime.datetime.now().astimezone()
    load_at_start = os.getloadavg()
    quiet = timing.OtherCpuMeter()
    time.sleep(QUIET_CHECK_S)
    others_before, during = quiet.cores(), timing.OtherCpuMeter()
    torch_threads = None
    torch_note = "skipped (--no_torch)"
    if not args.no_torch:
        try:
            from benchmarks import torch_reference
        except ImportError as e:
            torch_note = f"skipped: PyTorch is not importable ({e}); `pip install -e '.[bench]'`"
        else:
            torch_threads = torch_reference.use_all_cores()
            torch_note = f"torch.set_num_threads({torch_threads}) (the core count)"
    bench = load_data(args.data, args.num_train, args.is_examples)
    run = Run(args, bench, torch_threads)
    steps_text = args.steps or ", ".join(
        f"{a.name} {a.default_steps}" for a in ARCHITECTURES.values()
    )
    runners = {
        "train": run_training,
        "is_eval": run_importance_sampling,
        "vmap": run_vmap,
    }
    for name in args.benchmarks:
        if name != "peak":  # measured before each section, see Run.measure_peak
            runners[name](run)
    if run.peaks:
        run.tables.insert(0, peak_table(run))
    busy, contention = machine_contention(load_at_start, others_before, during.cores())
    if run.targets:
        run.tables.append(targets_table(run.targets, busy))

    command = " ".join(["python -m benchmarks.run", *(shlex.quote(a) for a in command_flags)])
    settings = [
        f"Data: {bench.description}",
        f"Steps per timed repeat: {steps_text}; repeats: {args.repeats}",
        f"Threads: XLA:CPU with its default thread pool (one thread per core, {os.cpu_count()} "
        f"cores); PyTorch: {torch_note}",
        contention,
    ]
    method = [
        "Both frameworks run in this one process, one after the other, on the same uint8 data.",
        "JAX programs are compiled ahead of time (`.lower().compile()`) and called once before "
        "timing; the state they return is fed to the next call (it is donated). Each timed call "
        "ends with `jax.block_until_ready`. PyTorch on CPU is synchronous; it runs "
        f"{args.torch_warmup_steps} untimed warm-up steps first.",
        "Reported: the median over the repeats; raw per-repeat seconds are listed at the end.",
        "Peak: the best of `jax.jit(jnp.dot)` and `torch.mm` on float32 square matrices.",
        f"JAX random numbers (Threefry-2x32) on CPU: {threefry_note()}",
    ]
    kept = ""
    if args.markdown_out and os.path.exists(args.markdown_out):
        with open(args.markdown_out) as f:
            kept = report.kept_part(f.read())
    text = report.record(command, started, settings, method, run.tables, run.raw, kept)
    print(text)
    if args.markdown_out:
        os.makedirs(os.path.dirname(args.markdown_out) or ".", exist_ok=True)
        with open(args.markdown_out, "w") as f:
            f.write(text)
    return text


if __name__ == "__main__":
    cli.run(main)
