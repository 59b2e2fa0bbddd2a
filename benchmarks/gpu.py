"""The GPU benchmark: `benchmarks/run.py`'s measurements on JAX's default device, sized for a few
minutes on one GPU, and written to docs/benchmarks_gpu.md (and $OUT/benchmarks_gpu.md).

    bash benchmarks/gpu.sh            # the whole thing; BENCH_QUICK=1 for a tiny smoke run

or `python -m benchmarks.gpu [--quick] [any flag of benchmarks.run]`. Besides its record, it
writes the record's headline rows into docs/benchmarks.md's GPU section (`summary`); `python -m
benchmarks.gpu --summary_only` rewrites that section from the record alone. It runs the sections of
benchmarks/sections.py (`run_training`, `run_importance_sampling`, `run_vmap`, their matmul peaks)
with GPU-sized settings (`GPU_SETTINGS`; flags given on the command line win), and adds:

- precision (benchmarks/precision.py): jnp.dot's rate at float32 HIGHEST (true float32), at
  JAX's default precision, and on bfloat16 inputs (torch.mm beside them), and which precision
  the default turned out to be, from its error against a float64 product;
- % of peak: every JAX GFLOP/s of the run over the float32 and the default-precision peaks;
- the IWAE paper's Table 1 grid (VAE and IWAE objectives × k = 1, 5, 50, configs/iwae.py): one
  compiled program per setting (k changes shapes and the objective the traced code, so the six
  cannot be members of one vmapped program), each training S vmapped seeds
  (`measure.bench_vmapped_members`).

Each section that fails prints one line and the rest still run; a section (or grid setting) not
started by `--deadline_s` is skipped (one already running is not cut short), so that the whole
command ends within 8 minutes; the record says which, and how long each section took. Data:
synthetic (no TFDS).
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import os
import platform
import re
import shlex
import shutil
import subprocess
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import jax
from absl import flags

from autoencoders import density
from autoencoders.machine import machine_lines
from autoencoders.quantities import option
from benchmarks import report, run, sections
from benchmarks.architectures import ARCHITECTURES, Architecture
from benchmarks.datasets import load_data
from benchmarks.measure import bench_vmapped_members
from benchmarks.precision import percent_of_peaks_table, precision_section
from configs import iwae as iwae_config
from experiments import cli

DEFAULT_OUT = "docs/benchmarks_gpu.md"
# docs/benchmarks.md's GPU section: its headline rows, written from the record between these
# lines (`refresh_summary`), so that the numbers there are the record's, not copied by hand.
SUMMARY_DOC = "docs/benchmarks.md"
SUMMARY_BEGIN = "<!-- gpu-summary: written by benchmarks/gpu.py from benchmarks_gpu.md -->"
SUMMARY_END = "<!-- /gpu-summary -->"
# benchmarks.run's settings on a GPU. With them, the step split and the IS-block parts, the H200
# run of 2026-12-04 took 487 s. On a GPU those parts time kernel launches, not work (the IS-block
# parts summed to 1.5-2 times their block, and the MLPs' steps less than their products and
# optimizer update timed alone), so they are left out here.
GPU_SETTINGS: dict[str, Any] = {
    "models": ("mlp", "iwae", "conv"),
    "data": "synthetic",
    "steps": 1000,
    # A training repeat is one epoch of `steps` minibatches without replacement: 1000 steps of
    # the largest batch (128) need 128,000 images (the first GPU run had 60,000: mlp and conv
    # failed).
    "num_train": 128_000,
    "repeats": 3,
    "is_examples": 1000,
    "is_samples": 5000,
    "is_repeats": 2,
    "no_step_split": True,
    "no_is_block_parts": True,
    "vmap_sizes": (1, 2, 4, 8),
    "peak_size": 8192,
    "markdown_out": DEFAULT_OUT,
}
# A smoke run of every section (--quick or BENCH_QUICK=1): a minute or two on a CPU.
QUICK_SETTINGS: dict[str, Any] = {
    **GPU_SETTINGS,
    "steps": 5,
    "repeats": 2,
    "torch_warmup_steps": 2,
    "num_train": 2000,
    "is_examples": 16,
    "is_samples": 100,
    "is_repeats": 1,
    "vmap_sizes": (2,),
    "peak_size": 512,
}
QUICK_OPTIONS: dict[str, Any] = {"grid_sizes": (2,), "grid_ks": (5,), "is_example_batches": (0,)}
OBJECTIVES = ("vae", "iwae")
# gpu.sh is meant to end within 8 minutes. A section (or grid setting) not yet started at this
# many seconds is skipped, and the record says so. The H200 record's raw timings put each section
# but the grid, and each grid setting, at about a minute or less (estimated: that run did not
# record its sections' times, which the record now does).
DEADLINE_S = 400.0
TIME_TABLE = "Where the run's time went"
GRID_TABLE = "IWAE Table 1 grid"  # its title's start


@dataclasses.dataclass(frozen=True)
class GpuOptions:
    """This module's own flags (benchmarks.run's are taken as they are)."""

    quick: bool = option(False, "A tiny smoke run of every section (also BENCH_QUICK=1).")
    grid_sizes: tuple[int, ...] = option(
        (1, 8), "Vmapped seeds S per IWAE-grid setting; empty: skip the grid."
    )
    grid_ks: tuple[int, ...] = option((1, 5, 50), "Training samples k of the IWAE grid.")
    is_example_batches: tuple[int, ...] = option(
        (0, 64), "Importance-sampling example_batch values timed (0: density.EXAMPLE_BATCH)."
    )
    precision_size: int = option(1024, "Side of the matmul whose error names the precision.")
    summary_only: bool = option(
        False, f"Only rewrite {SUMMARY_DOC}'s GPU section from the record at --markdown_out."
    )
    deadline_s: float = option(
        DEADLINE_S, "Sections (and grid settings) not started by then are skipped; 0: none."
    )


_GPU_FLAGS = cli.define_dataclass_flags(GpuOptions)
for _name in _GPU_FLAGS:
    flags.declare_key_flag(_name)


def merge_tables(tables: Sequence[report.Table]) -> list[report.Table]:
    """Tables of the same title and columns as one (the first one's notes), in first-seen order."""
    merged: dict[tuple[str, tuple[str, ...]], report.Table] = {}
    for t in tables:
        key = (t.title, tuple(t.headers))
        if key in merged:
            merged[key].rows += t.rows
        else:
            merged[key] = dataclasses.replace(t, rows=list(t.rows), notes=list(t.notes))
    return list(merged.values())


# ---------------------------------------------------------------------------------------------
# The IWAE paper's grid
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GridSetting(Architecture):
    """The IWAE-paper architecture trained as configs/iwae.py trains it, at one (objective, k)."""

    objective: str = "iwae"
    k: int = 5

    def jax_config(self) -> Any:
        config = iwae_config.get_config(f"k={self.k},objective={self.objective}")
        config.train.batch_size = self.batch_size
        return config


def grid_section(
    r: sections.Run, sizes: Sequence[int], ks: Sequence[int], clock: SectionClock
) -> None:
    args = r.args
    base = ARCHITECTURES["iwae"]
    steps = r.steps_for(base)
    repeats = min(args.repeats, 3)
    table = report.Table(
        f"{GRID_TABLE} (configs/iwae.py, batch {base.batch_size}): vmapped seeds per setting",
        ["objective", "k", "members S", "steps", "seconds", "model-steps/s", "examples/s",
         "GFLOP/step XLA", "GFLOP/s", "lower+compile s"],
    )  # fmt: skip
    for objective, k in itertools.product(OBJECTIVES, ks):
        if clock.skipped_for_deadline(f"grid {objective} k={k}"):
            continue
        setting = GridSetting(
            **{f.name: getattr(base, f.name) for f in dataclasses.fields(base)},
            objective=objective,
            k=k,
        )
        results, xla = bench_vmapped_members(setting, r.bench, steps, repeats, sizes)
        for size, measured in results.items():
            r.log(f"grid {objective} k={k} S={size} ({steps} steps)", measured)
            model_steps = size * steps / measured.median_s
            table.add(
                objective.upper(), k, size, steps, measured.median_s, model_steps,
                model_steps * base.batch_size, None if xla is None else xla / 1e9,
                None if xla is None else model_steps * xla / 1e9, measured.warmup_s,
            )  # fmt: skip
    table.notes += [
        "Burda et al. (2016), Table 1: VAE and IWAE objectives × k ∈ {1, 5, 50} samples per image "
        "in training; the model and optimizer of configs/iwae.py (784-200-200-50 tanh, Adam "
        "ε = 1e-4, its iwae_stages schedule at its first stage) on the synthetic data",
        "k changes the shapes and the objective the traced code, so the six settings are six "
        "compiled programs; within each, S seeds are vmapped members of one program "
        "(`measure.bench_vmapped_members`, as in 'Vmapped seeds')",
        "GFLOP/s: XLA's cost analysis of one member's step × model-steps/s",
        f"median of {repeats} repeats",
    ]
    r.tables.append(table)


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def device_lines() -> list[str]:
    devices = jax.devices()
    lines = [
        f"JAX backend: {jax.default_backend()}; devices: "
        + ", ".join(f"{d.device_kind} ({d.platform})" for d in devices)
    ]
    if shutil.which("nvidia-smi"):
        query = "name,driver_version,memory.total,clocks.max.sm,power.limit"
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        lines.append(f"nvidia-smi ({query}): {out or 'no answer'}")
    try:
        import torch

        cuda = torch.cuda.is_available()
        lines.append(
            f"torch {torch.__version__}, CUDA available: {cuda}"
            + (f" ({torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda})" if cuda else "")
        )
    except ImportError:
        lines.append("torch: not importable")
    return lines


def platform_title() -> str:
    kinds = sorted({d.device_kind for d in jax.devices()})
    backend = jax.default_backend()
    if backend == "gpu":
        return f"GPU benchmarks: {', '.join(kinds)}"
    return f"GPU benchmarks, run on {backend.upper()} ({', '.join(kinds)}): no GPU found"


@dataclasses.dataclass
class SectionClock:
    """Runs the sections one by one: each one's wall time and outcome, for the record. A
    section that fails prints one line and the rest still run; one not started by the deadline
    (seconds from the clock's start; 0: none) is skipped."""

    deadline_s: float
    started: float = dataclasses.field(default_factory=time.perf_counter)
    rows: list[tuple[str, float | None, str]] = dataclasses.field(default_factory=list)
    failures: list[str] = dataclasses.field(default_factory=list)

    def skipped_for_deadline(self, name: str) -> bool:
        """True, with a line for the record, if `name` would start after the deadline."""
        elapsed = time.perf_counter() - self.started
        if not self.deadline_s or elapsed < self.deadline_s:
            return False
        line = (
            f"{name}: skipped (started after {elapsed:.0f} s of the run, past its "
            f"{self.deadline_s:.0f} s deadline, --deadline_s)"
        )
        print(f"warning: {line}", flush=True)
        self.failures.append(line)
        self.rows.append((name, None, "skipped: past the deadline"))
        return True

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        """fn(), unless past the deadline; on an error, one line instead of a stop."""
        if self.skipped_for_deadline(name):
            return None
        started = time.perf_counter()
        try:
            result = fn()
        except Exception as e:  # noqa: BLE001 - one failing section must not stop the others
            line = f"{name}: failed ({type(e).__name__}: {e})".replace("\n", " ")
            print(f"warning: {line}", flush=True)
            if os.environ.get(cli.DEBUG_ENV):
                traceback.print_exc()
            self.failures.append(line)
            self.rows.append((name, time.perf_counter() - started, "failed"))
            return None
        seconds = time.perf_counter() - started
        print(f"[{name}: {seconds:.1f} s]", flush=True)
        self.rows.append((name, seconds, "ran"))
        return result

    def table(self) -> report.Table:
        table = report.Table(TIME_TABLE, ["section", "wall s", "outcome"])
        for row in self.rows:
            table.add(*row)
        table.notes.append(
            "wall time of each section, compiling and warm-ups included, in the order run; "
            + (
                f"a section or grid setting not started {self.deadline_s:.0f} s into the run is "
                "skipped (--deadline_s)"
                if self.deadline_s
                else "no deadline (--deadline_s=0)"
            )
        )
        return table


def gpu_settings(quick: bool) -> run.Settings:
    defaults = QUICK_SETTINGS if quick else GPU_SETTINGS
    overrides = {k: v for k, v in defaults.items() if not run._FLAGS[k].present}
    return cli.dataclass_from_flags(run.Settings, run._FLAGS, **overrides)


def torch_status(args: run.Settings) -> tuple[bool, str]:
    """(whether PyTorch runs, a sentence): only on CUDA when JAX runs on a GPU."""
    if args.no_torch:
        return False, "skipped (--no_torch)"
    try:
        from benchmarks import torch_reference
    except ImportError as e:
        return False, f"skipped: PyTorch is not importable ({e})"
    dev = torch_reference.device()
    if jax.default_backend() == "gpu" and dev.type != "cuda":
        return False, "skipped: JAX runs on the GPU but torch.cuda is not available"
    threads = torch_reference.use_all_cores()
    return True, f"eager on {dev} (torch.set_num_threads({threads}))"


def main(argv: Sequence[str]) -> None:
    cli.no_stray_arguments(argv)
    opts = cli.dataclass_from_flags(GpuOptions, _GPU_FLAGS)
    quick = opts.quick or os.environ.get("BENCH_QUICK", "") not in ("", "0")
    if quick:
        quick_opts = {k: v for k, v in QUICK_OPTIONS.items() if not _GPU_FLAGS[k].present}
        opts = dataclasses.replace(opts, **quick_opts)
    args = gpu_settings(quick)
    if opts.summary_only:
        with open(args.markdown_out) as f:
            refresh_summary(SUMMARY_DOC, f.read())
        return
    cli.register_threefry()
    started = datetime.datetime.now().astimezone()
    wall = time.perf_counter()
    for line in device_lines():
        print(line, flush=True)
    torch_on, torch_note = torch_status(args)
    print(f"PyTorch: {torch_note}", flush=True)
    bench = load_data(args.data, args.num_train, args.is_examples)
    r = sections.Run(args, bench, 1 if torch_on else None)
    clock = SectionClock(opts.deadline_s, started=wall)
    peaks = clock.run("precision", lambda: precision_section(r, opts.precision_size, torch_on))
    if "train" in args.benchmarks:
        for name in args.models:  # one model at a time: a failing one loses only its rows
            r.args = dataclasses.replace(args, models=(name,))
            clock.run(f"train {name}", lambda: sections.run_training(r))
        r.args = args
        r.tables = merge_tables(r.tables)
    if "is_eval" in args.benchmarks:
        for batch in opts.is_example_batches:
            r.args = dataclasses.replace(args, is_example_batch=batch)
            name = f"example_batch {batch or density.EXAMPLE_BATCH}"
            before = len(r.tables)
            clock.run(f"is_eval, {name}", lambda: sections.run_importance_sampling(r))
            for table in r.tables[before:]:
                table.title += f", {name}"
        r.args = args
    # The grid (which the GPU record exists for) before the vmapped seeds of one setting (which
    # it repeats in part), so that a deadline cuts the latter first.
    if opts.grid_sizes:
        clock.run("grid", lambda: grid_section(r, opts.grid_sizes, opts.grid_ks, clock))
    if "vmap" in args.benchmarks:
        clock.run("vmap", lambda: sections.run_vmap(r))
    tables = list(r.tables)
    if r.peaks:
        tables.insert(1 if peaks else 0, sections.peak_table(r))
    if peaks:
        tables.append(percent_of_peaks_table(tables, peaks))
    tables.append(clock.table())
    given = [f.serialize() for f in [*run._FLAGS.values(), *_GPU_FLAGS.values()] if f.present]
    command = " ".join(["python -m benchmarks.gpu", *(shlex.quote(a) for a in given)])
    text = record(
        command,
        started,
        r.bench.description,
        args,
        torch_note,
        quick,
        tables,
        r.raw,
        clock.failures,
        wall,
    )
    print(text, flush=True)
    write(text, args.markdown_out)
    if args.markdown_out == DEFAULT_OUT and os.path.exists(SUMMARY_DOC):
        refresh_summary(SUMMARY_DOC, text)


def record(
    command: str,
    started: datetime.datetime,
    data: str,
    args: run.Settings,
    torch_note: str,
    quick: bool,
    tables: Sequence[report.Table],
    raw: Sequence[str],
    failures: Sequence[str],
    wall: float,
) -> str:
    settings = [
        f"Data: {data}",
        f"Steps per timed repeat: {args.steps}; repeats: {args.repeats}; models: "
        + ", ".join(args.models)
        + (
            " — **quick smoke-test settings (--quick / BENCH_QUICK=1): not a measurement**"
            if quick
            else ""
        ),
        f"PyTorch: {torch_note}",
        f"Wall time of the whole run: {time.perf_counter() - wall:.0f} s",
    ]
    method = [
        "The sections of benchmarks/sections.py (see docs/benchmarks.md for their method) on JAX's "
        "default device; data held on the device; JAX programs compiled ahead of time, called "
        "once, then timed, each call ending in block_until_ready; PyTorch timed calls end with "
        "the loss read back to the host (on CUDA: after the steps finish); matmuls with "
        "torch.cuda.synchronize",
        "XLA_FLAGS: `"
        + os.environ.get("XLA_FLAGS", "")
        + "`; XLA_PYTHON_CLIENT_PREALLOCATE="
        + os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE", "(unset)"),
    ]
    if failures:
        method += [f"**Failed or skipped** — {line}" for line in failures]
    machine = [*device_lines(), *machine_lines(), f"Platform: {platform.platform()}"]
    return report.record(
        command,
        started,
        settings,
        method,
        tables,
        raw,
        title=platform_title(),
        written_by="Written by `bash benchmarks/gpu.sh` (`benchmarks/gpu.py`); every number "
        "below is its output.",
        machine=machine,
    )


def write(text: str, path: str) -> None:
    """The record to `path` and, where $OUT is set, to $OUT/<its name>."""
    targets = [path] if path else []
    if os.environ.get("OUT"):
        targets.append(os.path.join(os.environ["OUT"], os.path.basename(path or DEFAULT_OUT)))
    for target in targets:
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        with open(target, "w") as f:
            f.write(text)
        print(f"wrote {target}", flush=True)


# ---------------------------------------------------------------------------------------------
# docs/benchmarks.md's GPU section
# ---------------------------------------------------------------------------------------------


def summary(record_text: str) -> str:
    """The headline rows of a GPU record (training, importance sampling, the IWAE grid, each
    section's wall time), cells as the record prints them, with where they come from."""
    tables = report.parse_tables(record_text)
    title = record_text.splitlines()[0].removeprefix("# ")
    started = re.search(r"^Started: (.+)$", record_text, re.MULTILINE)
    wall = re.search(r"Wall time of the whole run: (.+)$", record_text, re.MULTILINE)
    lines = [
        f"From [benchmarks_gpu.md](benchmarks_gpu.md) ({title}; started "
        f"{started.group(1) if started else '?'}; {wall.group(1) if wall else '?'} in all). "
        "'% of peak': of the better of `jnp.dot` at JAX's default precision and `torch.mm`, "
        "as the record measured them right before those rows.",
    ]
    if "not a measurement" in record_text:
        lines += ["", "**A quick smoke run's record, not a measurement.**"]
    failed = re.findall(r"^- \*\*Failed.*$", record_text, re.MULTILINE)
    lines += ["", *failed] if failed else []
    train = tables.get(sections.TRAIN_TABLE, [])
    if train:
        columns = ["model", "JAX steps/s", "PyTorch steps/s", "JAX/PyTorch",
                   "torch.compile steps/s", "JAX/torch.compile", "JAX % of peak"]  # fmt: skip
        lines += ["", "Training:", ""]
        lines += report.markdown_grid(columns, [[row[c] for c in columns] for row in train])
    is_rows = [
        [row["model"], name.rpartition("example_batch ")[2], row["samples k"],
         row["examples·samples/s"], row["GFLOP/s"], row["% of peak"]]
        for name, rows in tables.items() if name.startswith("Importance-sampled evaluation")
        for row in rows
    ]  # fmt: skip
    if is_rows:
        columns = ["model", "example_batch", "samples k", "examples·samples/s", "GFLOP/s",
                   "% of peak"]  # fmt: skip
        lines += ["", "Importance sampling:", ""] + report.markdown_grid(columns, is_rows)
    grid = next((rows for t, rows in tables.items() if t.startswith(GRID_TABLE)), [])
    if grid:
        sizes = sorted({int(row["members S"]) for row in grid})
        rate = {(r["objective"], r["k"], int(r["members S"])): r["model-steps/s"] for r in grid}
        settings = list(dict.fromkeys((r["objective"], r["k"]) for r in grid))
        columns = ["objective", "k", *(f"model-steps/s, S={n}" for n in sizes)]
        rows = [[*key, *(rate.get((*key, n), "—") for n in sizes)] for key in settings]
        if len(sizes) > 1 and all("—" not in row for row in rows):
            columns.append(f"S={sizes[-1]} / S={sizes[0]}")
            for row in rows:
                row.append(report.fmt(report.parse_number(row[-1]) / report.parse_number(row[2])))
        lines += ["", "IWAE Table 1 grid, vmapped seeds S per setting:", ""]
        lines += report.markdown_grid(columns, rows)
    timed = tables.get(TIME_TABLE, [])
    if timed:
        lines += ["", "Each section's wall time:", ""]
        lines += report.markdown_grid(
            ["section", "wall s", "outcome"],
            [[r["section"], r["wall s"], r["outcome"]] for r in timed],
        )
    return "\n".join(lines)


def refresh_summary(doc_path: str, record_text: str) -> None:
    """Rewrites the lines between SUMMARY_BEGIN and SUMMARY_END in `doc_path` as
    `summary(record_text)`; a document without both is left as it is, with a warning."""
    with open(doc_path) as f:
        doc = f.read()
    begin, end = doc.find(SUMMARY_BEGIN), doc.find(SUMMARY_END)
    if begin < 0 or end < begin:
        print(f"warning: {doc_path} has no {SUMMARY_BEGIN} ... {SUMMARY_END}: not updated")
        return
    head = doc[: begin + len(SUMMARY_BEGIN)]
    with open(doc_path, "w") as f:
        f.write(f"{head}\n{summary(record_text)}\n{doc[end:]}")
    print(f"wrote the GPU section of {doc_path}", flush=True)


if __name__ == "__main__":
    cli.run(main)
