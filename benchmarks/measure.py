"""Timing whole JAX and PyTorch programs: a compiled program's lower+compile, first call and timed
repeats (`time_compiled`), the training epoch of each framework, importance-sampled evaluation,
vmapped seeds, the float32 matmul peak, and XLA's FLOP counts of the compiled programs. Each
result holds seconds only; the tables are built in `benchmarks.sections`."""

from __future__ import annotations

import dataclasses
import functools
import os
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from autoencoders import cpu_matmuls, data, density, epoch, models, optim
from benchmarks import timing
from benchmarks.architectures import Architecture
from benchmarks.datasets import BenchData

# XLA's FLOP count is used where it is within this fraction of the analytic count, else the latter.
FLOPS_TOLERANCE = 0.15


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
    # One more timed repeat (`steps` steps), its state threaded on: what `time_in_turn` times
    # beside the other framework's, and `parts.step_split` beside the step's parts (JAX), without
    # compiling again. Returns that repeat's loss.
    call: Callable[[], float] | None = None
    # JAX: XLA:CPU's product library its epoch was compiled with, and why (`cpu_matmuls`).
    matmuls: cpu_matmuls.Choice | None = None

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
) -> tuple[Measured, Any, Callable[[], None]]:
    """Compiles jitted(state, images, labels, key) ahead of time, calls it once (the first call,
    timed apart), then `repeats` timed calls; the (donated) state is threaded through them all.
    Returns the timings, the last call's metrics, and the call itself (for more calls).

    A per-step epoch loop (`epoch.epoch_loop` 'steps': a Python function over a compiled step)
    has no ahead-of-time form: its compilation falls into the first call, and compile time is 0."""
    compiled = jitted

    def compile_it() -> None:
        nonlocal compiled
        compiled = jitted.lower(state, split.images, split.labels, call_key(0)).compile()

    compile_s = timing.seconds(compile_it) if hasattr(jitted, "lower") else 0.0
    calls, metrics = 0, None

    def call() -> float:
        nonlocal state, metrics, calls
        state, metrics = compiled(state, split.images, split.labels, call_key(calls))
        jax.block_until_ready((state, metrics))
        calls += 1
        return float(np.mean(metrics["loss"]))  # vmapped members: their mean

    first_s = timing.seconds(call)
    times = timing.repeat_seconds(call, repeats)
    return Measured(compile_s, first_s, times), metrics, call


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

    def train_epoch(self, steps: int, compiler_options: Mapping[str, str] | None = None) -> Any:
        """The real training loop (`epoch.make_train_epoch`) for `steps` minibatch steps."""
        return epoch.make_train_epoch(
            self.model, self.tx, self.model.config, steps, compiler_options=compiler_options
        )

    def one_step(self) -> tuple[Callable[..., Any], jax.ShapeDtypeStruct, jax.ShapeDtypeStruct]:
        """One minibatch step of the real epoch, uncompiled: an epoch of one step over a dataset
        of one minibatch (its shuffle and preprocessing included), and that dataset's images and
        labels as shapes."""
        one_step = epoch.make_train_epoch(self.model, self.tx, self.model.config, 1, compiled=False)
        images = jax.ShapeDtypeStruct((self.arch.batch_size, *self.model.spec.shape), jnp.uint8)
        labels = jax.ShapeDtypeStruct((self.arch.batch_size,), jnp.int32)
        return one_step, images, labels

    def step_flops(self, state: optim.TrainState) -> float | None:
        """XLA's FLOP count of one minibatch step of the real compiled epoch (`one_step`)."""
        one_step, images, labels = self.one_step()
        return xla_flops(jax.jit(one_step), state, images, labels, jax.random.key(0))


def num_params(params: Any) -> int:
    return int(sum(p.size for p in jax.tree.leaves(params)))


def bench_jax_training(
    arch: Architecture, bench: BenchData, steps: int, repeats: int
) -> TrainResult:
    """As `experiments.train` runs it: on CPU compiled with the product library that a probe of
    the same epoch measures faster (`epoch.choose_cpu_matmuls`), unless AUTOENCODERS_CPU_MATMULS
    fixes it."""
    jm = JaxModel.build(arch, bench.spec, steps)
    state = jm.init_state(jax.random.key(0))
    flops = jm.step_flops(state)
    size = num_params(state.params)
    matmuls = epoch.choose_cpu_matmuls(
        jm.model, jm.tx, jm.model.config, state, bench.train.images, bench.train.labels
    )
    root = jax.random.key(1)
    measured, metrics, call = time_compiled(
        jm.train_epoch(steps, matmuls.options),
        state,
        bench.train,
        lambda c: jax.random.fold_in(root, c),
        repeats,
    )
    return TrainResult(measured, steps, size, float(metrics["loss"]), flops, call, matmuls)


def bench_torch_training(
    arch: Architecture,
    bench: BenchData,
    steps: int,
    warmup_steps: int,
    compiled: bool = False,
) -> TrainResult:
    """The PyTorch reference, eager or (`compiled`) with its loss through torch.compile (then the
    first step compiles, timed apart as `first_call_s`), after its warm-up steps: no repeats and
    no loss yet; `time_in_turn` times its `call` beside JAX's."""
    from benchmarks import torch_reference

    trainer = torch_reference.TorchTrainer(arch, np.asarray(bench.train.images), compiled=compiled)
    first_s = timing.seconds(lambda: trainer.train_steps(1)) if compiled else None
    warmup_s = timing.seconds(lambda: trainer.train_steps(warmup_steps))
    return TrainResult(
        Measured(warmup_s, first_s, []), steps, trainer.num_params(), float("nan"),
        call=lambda: float(trainer.train_steps(steps)),
    )  # fmt: skip


def time_in_turn(results: Mapping[str, TrainResult], repeats: int) -> None:
    """Times `repeats` more repeats of each result's `call` in rounds that run every one in turn
    (`timing.interleaved_seconds`), and makes them the results' timed repeats and last loss: the
    frameworks compared in one table then share the machine's drift. The results come compiled and
    warmed up from `bench_jax_training` (0 repeats) and `bench_torch_training`."""
    losses: dict[str, float] = {}

    def keeping_loss(name: str) -> Callable[[], None]:
        def call() -> None:
            losses[name] = results[name].call()

        return call

    times = timing.interleaved_seconds({name: keeping_loss(name) for name in results}, repeats)
    for name, result in results.items():
        result.measured.repeat_s = times[name]
        result.loss = losses[name]


def torch_compile_unavailable() -> str | None:
    """Why torch.compile cannot run here (Inductor on CPU compiles C++), or None."""
    import shutil

    compiler = os.environ.get("CXX") or "g++"
    if not (shutil.which(compiler) or shutil.which("c++") or shutil.which("clang++")):
        return f"no C++ compiler ({compiler}, c++ or clang++) for Inductor"
    return None


def bench_torch_compiled(
    arch: Architecture, bench: BenchData, steps: int, warmup_steps: int
) -> TrainResult | str:
    """torch.compile's trainer, compiled and warmed up, or why it did not run:
    'unavailable: <reason>'."""
    reason = torch_compile_unavailable()
    if reason is None:
        try:
            return bench_torch_training(arch, bench, steps, warmup_steps, compiled=True)
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


def jax_matmul_gflops(
    size: int, repeats: int, dtype: Any = jnp.float32, precision: str | None = None
) -> float:
    """GFLOP/s of the fastest of `repeats` jitted size×size `jnp.dot`s, after a warm-up."""
    a = jax.random.normal(jax.random.key(0), (size, size), dtype)
    b = jax.random.normal(jax.random.key(1), (size, size), dtype)
    dot = jax.jit(functools.partial(jnp.dot, precision=precision))
    return timing.best_matmul_gflops(lambda: dot(a, b).block_until_ready(), size, repeats)
