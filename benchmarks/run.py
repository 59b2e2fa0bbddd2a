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
(benchmarks/targets.py). Like every entry point, it first registers the straight-line CPU lowering
of JAX's random bits (`autoencoders.threefry`; AUTOENCODERS_ROLLED_THREEFRY=1 keeps JAX's own).

This module is the command line and the record around the sections: benchmarks/sections.py runs
them (and builds their tables), from the timings of benchmarks/measure.py and benchmarks/parts.py
on the images of benchmarks/datasets.py.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import shlex
import time
from collections.abc import Sequence

from absl import flags

from autoencoders import threefry
from autoencoders.quantities import option
from benchmarks import report, timing
from benchmarks.architectures import ARCHITECTURES
from benchmarks.datasets import MNIST_TRAIN, load_data
from benchmarks.sections import Run, peak_table, run_importance_sampling, run_training, run_vmap
from benchmarks.targets import targets_table
from experiments import cli

BENCHMARKS = ("peak", "train", "is_eval", "vmap")
DATA_CHOICES = ("auto", "synthetic", "mnist")
# Other processes using more than this many cores on average, in the seconds before the start
# or during the run, mark the record as taken on a busy machine (timing.OtherCpuMeter); where
# that cannot be measured (not Linux), a 1-minute load average above BUSY_LOAD at the start does.
BUSY_CORES = 0.1
BUSY_LOAD = 0.5
QUIET_CHECK_S = 2.0


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
    no_step_split: bool = option(
        False, "Skip 'Where a JAX training step's time goes' (its parts' timings)."
    )
    no_is_block_parts: bool = option(
        False, "Skip 'Where an importance-sampling block's time goes' (its parts' timings)."
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
        "Both frameworks run in this one process on the same uint8 data. In training, each "
        "model's JAX epoch, PyTorch eager and torch.compile are compiled and warmed up first, "
        "then timed in turn, one repeat of each per round, so that the ratios share the "
        "machine's drift over the minutes a model takes (`measure.time_in_turn`).",
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
