"""The record's timed sections and their tables: training (throughput, where a step's time goes,
FLOPs, warm-up), importance-sampled evaluation (and where a block's time goes), vmapped seeds, and
the matmul peak measured before each of them. A `Run` collects the tables, the raw timings and
the targets as the sections fill them in; `benchmarks.run` and `benchmarks.gpu` assemble records
from it."""

from __future__ import annotations

import dataclasses
import os
import statistics
from typing import TYPE_CHECKING

import jax

from benchmarks import parts, report
from benchmarks.architectures import ARCHITECTURES, Architecture
from benchmarks.datasets import BenchData, data_for
from benchmarks.measure import (
    FLOPS_TOLERANCE,
    ISResult,
    Measured,
    TrainResult,
    bench_importance_sampling,
    bench_jax_training,
    bench_torch_compiled,
    bench_torch_training,
    bench_vmapped_members,
    chosen_flops,
    jax_matmul_gflops,
    time_in_turn,
)
from benchmarks.targets import TRAIN_TARGETS, Target, is_eval_target

if TYPE_CHECKING:
    from benchmarks.run import Settings

TRAIN_TABLE = "Training throughput"
IS_BLOCK_TABLE = "Where an importance-sampling block's time goes"
STEP_SPLIT_TABLE = "Where a JAX training step's time goes"


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
         "JAX % of peak", "PyTorch % of peak", "JAX products"],
    )  # fmt: skip
    time_split = report.Table(
        STEP_SPLIT_TABLE,
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
        # Each framework compiles and warms up, then their timed repeats run in turn.
        jax_result = bench_jax_training(arch, bench, steps, 0)
        timed = {"JAX": jax_result}
        torch_result = None
        compiled: TrainResult | str | None = None
        if run.torch_threads is not None:
            torch_result = bench_torch_training(arch, bench, steps, args.torch_warmup_steps)
            timed["PyTorch"] = torch_result
            if not args.no_torch_compile:
                compiled = bench_torch_compiled(arch, bench, steps, args.torch_warmup_steps)
                if isinstance(compiled, str):
                    run.raw.append(f"{name} torch.compile: {compiled}")
                else:
                    timed["torch.compile"] = compiled
        time_in_turn(timed, args.repeats)
        for framework, result in timed.items():
            run.log(f"{name} {framework} ({steps} steps)", result.measured)
        matmuls = jax_result.matmuls
        run.raw.append(f"{name} JAX: {matmuls.describe()}")
        split = None
        if not args.no_step_split:
            split = parts.step_split(
                arch, bench, steps, args.repeats, jax_result.call, matmuls.options
            )
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
            percent(jax_gflops, peak), percent(torch_gflops, peak), matmuls.kernels,
        )  # fmt: skip
        if split is not None:
            add_split_row(time_split, arch, split, torch_steps, speedup, flops, peak)
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
        best_torch = max(
            (s for s in (torch_steps, compiled_ok.steps_per_s if compiled_ok else None) if s),
            default=None,
        )
        measured = {
            "speedup": speedup,
            "speedup_best": ratio(jax_result.steps_per_s, best_torch),
            "percent_of_peak": percent(jax_gflops, peak),
        }
        run.targets += [(t, measured[key]) for key, t in TRAIN_TARGETS.get(name, {}).items()]
    throughput.notes += [
        f"median of {args.repeats} repeats; each repeat runs `steps` optimizer steps; "
        "examples/s = steps/s × batch; a model's JAX, PyTorch and torch.compile repeats run in "
        "turn, one of each per round",
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
        "JAX products: the library XLA:CPU's matrix products ran on in JAX's epoch (and in "
        "'Where a JAX training step's time goes'), chosen as `experiments.train` chooses it "
        "(`autoencoders/cpu_matmuls.py`): on CPU, Eigen where a probe of two of the "
        "epoch's steps (its shuffle left out) compiled both ways measured it at least 5 % "
        "faster than YNNPACK, XLA's default "
        "(each probe's seconds are in the raw timings); 'xla' off CPU",
    ]
    time_split.notes += [
        "JAX step ms, matmuls alone, optimizer alone: each `steps` steps in one jitted loop, "
        f"timed in turn call by call ({args.repeats} rounds after a warm-up call each, "
        "`parts.step_split`), so all three share the CPU clock's drift; the best round of each. "
        "JAX step: the compiled epoch of the throughput table (its best call, not its median)",
        "matmuls alone: the step's matrix products only, every `dot_general` of its jaxpr at "
        "its shapes (forward, input and weight gradients of the dense layers and of the "
        "convolutions as the CPU lowers them); '—' where the step keeps XLA's convolutions; "
        "its % of peak counts the products' own FLOPs (Winograd's do fewer than a direct "
        "convolution; the last column counts a direct convolution's, as 'Training FLOPs')",
        "optimizer alone: the config's optax update (Adam) on the model's parameters with fixed "
        "gradients",
        "the rest: the step minus both: activations, likelihood, KL, random numbers (dynamic "
        "binarization, the posterior sample), the minibatch gather and the loop itself; for "
        "the conv VAEs also the convolutions' data movement (im2col concatenations, col2im pads, "
        "Winograd's tile gathers, the depth-to-space transposes)",
        "the last two columns bound what removing all of 'the rest' could give: JAX/PyTorch of "
        "the throughput table × step / (matmuls + optimizer); GFLOP/s over matmuls + optimizer "
        "(FLOPs as in 'Training FLOPs')",
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
        "Winograd's F(4×4, 3×3) convolutions (the CPU's, `autoencoders/conv.py`) multiply less "
        "than a direct convolution: XLA then counts fewer FLOPs than the analytic count, which is "
        "used instead, so that GFLOP/s and % of peak are effective rates (a direct "
        "convolution's FLOPs over the time taken), which can exceed the matmul peak",
    ]
    run.tables += [throughput, *([time_split] if time_split.rows else []), flops_table, warmup]


def add_split_row(
    table: report.Table,
    arch: Architecture,
    split: parts.StepSplit,
    torch_steps: float | None,
    speedup: float | None,
    flops: float,
    peak: float | None,
) -> None:
    """One row of 'Where a JAX training step's time goes'."""
    matmul_s = split.matmul_s
    floor_s = None if matmul_s is None else matmul_s + split.optimizer_s
    table.add(
        arch.title, 1e3 * split.step_s, None if matmul_s is None else 1e3 * matmul_s,
        None if matmul_s is None else percent(split.matmul_flops / matmul_s / 1e9, peak),
        1e3 * split.optimizer_s, None if floor_s is None else 1e3 * (split.step_s - floor_s),
        None if torch_steps is None else 1e3 / torch_steps,
        None if floor_s is None or torch_steps is None else split.step_s / floor_s * speedup,
        None if floor_s is None else percent(flops / floor_s / 1e9, peak),
    )  # fmt: skip


def run_importance_sampling(run: Run) -> None:
    args = run.args
    table = report.Table(
        "Importance-sampled evaluation",
        ["model", "examples", "samples k", "seconds", "compile-related s per call",
         "examples·samples/s", "FLOP/(example·sample) XLA", "analytic", "FLOPs used",
         "GFLOP/s", "% of peak", "first call s"],
    )  # fmt: skip
    block_table = report.Table(
        IS_BLOCK_TABLE,
        ["model", "block (examples × samples)", "block ms", "matmuls alone ms",
         "likelihood alone ms", "z draws alone ms", "activations alone ms", "the rest ms",
         "matmuls %", "likelihood %", "z draws %", "activations %", "the rest %",
         "block % of peak", "block % of peak if only the matmuls took time",
         "estimator ms per block"],
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
        if args.no_is_block_parts:
            continue
        examples = min(result.example_batch, result.num_examples)
        block = parts.is_block_parts(
            arch, run.bench.spec, examples, result.chunk, max(args.is_repeats, 3)
        )
        if block is not None:
            add_block_row(block_table, run, arch, block, flops, peak, result)
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
    if block_table.rows:
        block_table.notes += block_notes(max(args.is_repeats, 3))
        run.tables.append(block_table)


def add_block_row(
    table: report.Table,
    run: Run,
    arch: Architecture,
    block: parts.ISBlockParts,
    flops_per_pair: float,
    peak: float | None,
    result: ISResult,
) -> None:
    """One model's row of IS_BLOCK_TABLE (and its raw timings)."""
    seconds = {"block": block.whole_s, **block.parts_s, "the rest": block.rest_s}
    run.raw.append(
        f"is_eval block {arch.name} ({block.examples} × {block.samples}), seconds: "
        + ", ".join(f"{k} {v:.5f}" for k, v in seconds.items())
    )
    block_gflop = flops_per_pair * block.pairs / 1e9
    estimator_s = (
        result.measured.median_s * block.pairs / (result.num_examples * result.num_samples)
    )
    table.add(
        arch.title, f"{block.examples} × {block.samples}",
        *(1e3 * v for v in seconds.values()),
        *(100 * v / block.whole_s for k, v in seconds.items() if k != "block"),
        percent(block_gflop / block.whole_s, peak),
        percent(block_gflop / block.matmuls_s, peak), 1e3 * estimator_s,
    )  # fmt: skip


def block_notes(repeats: int) -> list[str]:
    return [
        "a block: example_batch × sample_chunk (example, sample) pairs, the estimator's unit of "
        "work (as in 'Importance-sampled evaluation'); every number is milliseconds per block, "
        f"the best of {repeats} loops of {parts.IS_BLOCK_CALLS} blocks in one jitted lax.scan "
        "(`parts.is_block_parts`) whose inputs depend on the loop's carry, so XLA neither hoists "
        "nor drops a block; MLPs only",
        "block: a vmap over the block's examples of `model.log_importance_weights` (a batch of "
        "one with its own key, as `density` maps it) and a logsumexp over the samples: one "
        "sample chunk of the estimator, without its mask over k and running logaddexp",
        "matmuls alone: the dense layers' x·W at the block's shapes (the encoder on the examples' "
        "rows, the decoder on one row per pair), forward only, without biases; likelihood "
        "alone: the model's `likelihood.log_prob` (Bernoulli: x·l − softplus(l)) of one row of "
        "logits per pair, summed per row; z draws alone: the standard-normal draws of z, one key "
        "per sample as `log_importance_weights` splits them; activations alone: the hidden "
        "layers' tanh or ReLU (encoder and decoder)",
        "the rest: the block minus the four parts: bias adds, z = μ + σε, the Gaussian log "
        "densities of z under q and the prior, the logsumexp, splitting the keys, and whatever "
        "a part costs more or less alone than fused inside the block (so it can be negative); "
        "each part's loop also sums its output",
        "% of peak: the block's FLOPs (the 'FLOPs used' of 'Importance-sampled evaluation' × "
        "the pairs) over its seconds, against the section's peak; 'if only the matmuls took "
        "time': over the matmuls' seconds instead",
        "estimator ms per block: the seconds of 'Importance-sampled evaluation' per block "
        "(× the block's pairs / (examples × k)): the whole estimator, its loops over blocks and "
        "chunks included, compile time excluded, to compare with 'block ms'",
    ]


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
    winograd = (
        "; Winograd's F(4×4, 3×3) for the stride-1 3×3 ones to more channels, "
        f"{conv.LOWERING_ENV}=matmul leaves it out"
        if chosen == "winograd"
        else ""
    )
    return (
        f"matrix products, `autoencoders/conv.py` ({why}{winograd}; {conv.LOWERING_ENV}=xla "
        "keeps XLA's own)"
    )
