"""Launch a named sweep of a config file: one training process per run.

  python -m experiments.sweep --config=configs/vae.py:sweep=latent_x_likelihood \
      --sweep_dir=runs/s1 --workers=2 [--config.train.num_epochs=2] [--runs=0-4,7] [--dry_run]
  ... --backend=slurm [--slurm_partition=gpu --slurm_time_min=240 --slurm_gpus_per_task=1
      --slurm_additional=account=lab] [--detach]
  ... --backend=ray [--ray_address=auto --ray_num_cpus=2 --ray_num_gpus=1]

`--config=<file>:sweep=NAME[,k=v...]`: `sweep=NAME` picks `get_sweep(NAME)` of the file; the other
arguments go to `get_config` of every run. `--config.<field>=<value>` flags apply to every run.
Re-running the same command skips finished runs and resumes the others from their checkpoints.
Ctrl-C or SIGTERM stops the runs (they resume next time), as does killing this launcher, even with
kill -9 (on Linux; with --backend=local). Exits non-zero if any run failed.

`--backend=slurm` submits one job array (`autoencoders/slurm.py`); `--detach` returns once it
is submitted, and the same command later waits for the jobs still queued or running (or, with
--detach again, shows them) instead of submitting them twice; `--dry_run` prints the sbatch script
and each run's status and job. `--backend=ray` runs one Ray task per run.
"""

from __future__ import annotations

from autoencoders import interrupts

if __name__ == "__main__":  # first, before the slow imports below: no SIGINT or SIGTERM is lost
    interrupts.install()

import importlib.util  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402

from absl import app, flags  # noqa: E402

from autoencoders import cluster, launch, slurm, sweeps, training  # noqa: E402
from experiments import cli  # noqa: E402

_CONFIG = flags.DEFINE_string("config", None, "<config file>:sweep=NAME[,config arguments].")
_SWEEP_DIR = flags.DEFINE_string("sweep_dir", None, "One workdir per run is made in here.")
_WORKERS = flags.DEFINE_integer(
    "workers", 1, "Runs trained at the same time on this machine.", lower_bound=1
)
_DRY_RUN = flags.DEFINE_bool(
    "dry_run",
    False,
    "List the runs, their overrides and status (slurm: their jobs, the sbatch script); run none.",
)
_RUNS = flags.DEFINE_string("runs", "", "Only these run ids, e.g. '0-4,7' (default: all).")
_ALLOW_CONFIG_CHANGE = flags.DEFINE_bool(
    "allow_config_change", False, "Resume runs whose config changed (e.g. more epochs)."
)
_BACKEND = flags.DEFINE_enum(
    "backend",
    "local",
    ["local", "slurm", "ray"],
    "Where runs train: child processes of this command, a SLURM job array (submitit), Ray tasks.",
)
_DETACH = flags.DEFINE_bool(
    "detach",
    False,
    "slurm: return once the jobs are submitted; the same command later shows or waits for them.",
)
_SLURM_PARTITION = flags.DEFINE_string(
    "slurm_partition", "", "slurm: the partition (default: the cluster's)."
)
_SLURM_TIME_MIN = flags.DEFINE_integer(
    "slurm_time_min",
    slurm.SlurmOptions.time_min,
    "slurm: each job's time limit in minutes; a run that needs longer is requeued and resumes.",
    lower_bound=1,
)
_SLURM_CPUS = flags.DEFINE_integer(
    "slurm_cpus_per_task", slurm.SlurmOptions.cpus_per_task, "slurm: CPUs per run.", lower_bound=1
)
_SLURM_MEM = flags.DEFINE_string(
    "slurm_mem", "", "slurm: memory per run, e.g. 8G (default: the partition's)."
)
_SLURM_GPUS = flags.DEFINE_integer("slurm_gpus_per_task", 0, "slurm: GPUs per run.", lower_bound=0)
_SLURM_PARALLELISM = flags.DEFINE_integer(
    "slurm_array_parallelism",
    0,
    "slurm: at most this many runs at once (0: no limit).",
    lower_bound=0,
)
_SLURM_ADDITIONAL = flags.DEFINE_string(
    "slurm_additional",
    "",
    "slurm: other sbatch options, key=value or bare, e.g. account=lab,qos=high,exclusive.",
)
_RAY_ADDRESS = flags.DEFINE_string(
    "ray_address",
    "",
    "ray: the cluster's address (e.g. auto); default: a local one for this sweep.",
)
_RAY_CPUS = flags.DEFINE_float("ray_num_cpus", 1.0, "ray: CPUs per run.", lower_bound=0.0)
_RAY_GPUS = flags.DEFINE_float("ray_num_gpus", 0.0, "ray: GPUs per run.", lower_bound=0.0)
flags.mark_flags_as_required(["config", "sweep_dir"])

# The flags that mean something to one backend only.
_BACKEND_FLAGS = {
    "local": [_WORKERS],
    "slurm": [
        _DETACH,
        _SLURM_PARTITION,
        _SLURM_TIME_MIN,
        _SLURM_CPUS,
        _SLURM_MEM,
        _SLURM_GPUS,
        _SLURM_PARALLELISM,
        _SLURM_ADDITIONAL,
    ],
    "ray": [_RAY_ADDRESS, _RAY_CPUS, _RAY_GPUS],
}
# What each engine's client needs: a program on PATH, and the package of the pyproject extra.
_ENGINES = {"slurm": ("sbatch", "submitit"), "ray": (None, "ray")}


def parse_ids(text: str, num_runs: int) -> list[int] | None:
    """'0-2,5' -> [0, 1, 2, 5]; '' -> None (all runs). A ValueError naming --runs for anything
    but ids and ranges low-high (low <= high) within the sweep's 0..num_runs-1."""
    if not text:
        return None
    ids = []
    for part in text.split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part.strip())
        low, high = (int(match[1]), int(match[2] or match[1])) if match else (0, -1)
        if low > high:
            raise ValueError(
                f"--runs={text}: {part!r} is not an id or a range low-high with low <= high "
                "(e.g. --runs=0-4,7)."
            )
        if high >= num_runs:
            raise ValueError(f"--runs={text}: this sweep's run ids are 0..{num_runs - 1}.")
        ids.extend(range(low, high + 1))
    return ids


def split_config_flags(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(other arguments, --config.<field>=<value> flags): the latter are passed to every run."""
    rest, config_flags = [], []
    for a in argv:
        if a.startswith("--config."):
            if "=" not in a:
                raise app.UsageError(f"{a}: write overrides as --config.<field>=<value>.")
            config_flags.append(a)
        else:
            rest.append(a)
    return rest, config_flags


def parse_flags(argv: list[str]) -> list[str]:
    """`cli.parse_flags` of all but the --config.<field> flags, which absl does not know here (the
    config is not loaded): they are handed to main as its positional arguments."""
    rest, config_flags = split_config_flags(argv)
    program, *positional = cli.parse_flags(rest)
    cli.no_stray_arguments([program, *positional])
    return [program, *config_flags]


def check_backend_flags(backend: str) -> None:
    """A ValueError naming the first flag given for another backend than `backend`."""
    for other, holders in _BACKEND_FLAGS.items():
        for holder in holders:
            if other != backend and holder.present:
                raise ValueError(f"--{holder.name} applies to --backend={other} only.")


def check_engine(backend: str, dry_run: bool) -> None:
    """A ValueError when the engine's client is missing: its package (the pyproject extra) or,
    unless only printing what would be submitted, its program."""
    program, package = _ENGINES.get(backend, (None, None))
    if package and importlib.util.find_spec(package) is None:
        raise ValueError(f"--backend={backend} needs {package}: pip install -e '.[{backend}]'.")
    if program and not dry_run and shutil.which(program) is None:
        raise ValueError(
            f"--backend={backend}: no {program} on PATH; run this on a machine that submits "
            "SLURM jobs (or start a local cluster: tools/slurm-local.sh up)."
        )


def make_backend(backend: str, sweep_dir: str) -> launch.Backend:
    if backend == "slurm":
        options = slurm.SlurmOptions(
            partition=_SLURM_PARTITION.value,
            time_min=_SLURM_TIME_MIN.value,
            cpus_per_task=_SLURM_CPUS.value,
            mem=_SLURM_MEM.value,
            gpus_per_task=_SLURM_GPUS.value,
            array_parallelism=_SLURM_PARALLELISM.value,
            additional=slurm.parse_sbatch_options(_SLURM_ADDITIONAL.value),
        )
        return slurm.SlurmBackend(sweep_dir, options, detach=_DETACH.value)
    if backend == "ray":
        return cluster.RayBackend(_RAY_ADDRESS.value, _RAY_CPUS.value, _RAY_GPUS.value)
    return launch.LocalBackend(_WORKERS.value)


def _print_plan(plan: sweeps.Plan, runs: Sequence[sweeps.Run]) -> None:
    print(f"sweep {plan.sweep!r}: {len(plan.runs)} runs in {plan.sweep_dir}")
    if plan.fixed:
        print("fixed:", ", ".join(f"{k}={v}" for k, v in plan.fixed.items()))
    if plan.global_flags:
        print("every run:", " ".join(plan.global_flags))
    for run in runs:
        state = _status(run)
        overrides = ", ".join(f"{k}={v}" for k, v in run.overrides.items())
        print(f"[{run.id}] {run.name}  ({state})\n    {overrides}\n    {' '.join(run.argv[1:])}")


def _print_slurm_plan(backend: slurm.SlurmBackend, runs: Sequence[sweeps.Run]) -> None:
    """The runs' jobs so far, and the sbatch script of the array the unfinished ones would be."""
    for run_id, job in backend.describe(runs).items():
        print(f"[{run_id}] {job}")
    todo = [r for r in runs if _status(r) != "finished"]
    if not todo:
        print("\nnothing to submit: every run is finished")
        return
    what = "one job" if len(todo) == 1 else f"a job array, one task for each of {len(todo)} runs"
    print(f"\nsbatch script ({what}):\n{backend.sbatch_script(len(todo))}")


def _status(run: sweeps.Run) -> str:
    try:
        return launch.status(run)
    except ValueError as e:
        return f"error: {e}"


def _check_some_run_can_start(runs: Sequence[sweeps.Run]) -> None:
    """Nothing starts when no run's config is valid (a --config.<field> flag every run gets, most
    likely): a ValueError with the first run's error. Runs that fail alone are reported as
    failed runs once the others have trained."""
    first_error = None
    for run in runs:
        try:
            training.check_config(launch.resolve_config(run.argv))
            return
        except ValueError as e:
            first_error = first_error or e
    raise ValueError(f"no run can start; run [{runs[0].id}] {runs[0].name}: {first_error}")


@interrupts.exits_cleanly()  # a cluster's SIGTERM stops the runs as Ctrl-C does
def main(argv: list[str]) -> None:
    cli.register_threefry()  # as every entry point does, before anything compiles
    cli.check_writable_dir("sweep_dir", _SWEEP_DIR.value)
    check_backend_flags(_BACKEND.value)
    check_engine(_BACKEND.value, _DRY_RUN.value)
    backend = make_backend(_BACKEND.value, _SWEEP_DIR.value)
    global_flags = argv[1:]
    train_flags = ["--allow_config_change"] if _ALLOW_CONFIG_CHANGE.value else []
    plan = sweeps.plan_from_command(
        _CONFIG.value, _SWEEP_DIR.value, global_flags, train_flags=train_flags
    )
    runs = launch.select(plan, parse_ids(_RUNS.value, len(plan.runs)))
    if _DRY_RUN.value:
        _print_plan(plan, runs)
        if isinstance(backend, slurm.SlurmBackend):
            _print_slurm_plan(backend, runs)
        return
    _check_some_run_can_start(runs)
    summary = launch.launch(plan, backend, [r.id for r in runs])
    done = sum(o.ok for o in summary.outcomes)
    queued = f"{len(summary.detached)} queued or running, " if _DETACH.value else ""
    print(
        f"\n{len(summary.skipped)} finished earlier, {done} finished now, {queued}"
        f"{len(summary.failed)} failed; manifest: {plan.sweep_dir}/{launch.MANIFEST}"
    )
    if summary.detached:
        print(
            "The same command again waits for the queued and running jobs (with --detach: "
            f"shows them) and resumes the rest; job ids: {backend.folder}/{slurm.JOBS_FILE}"
        )
    for outcome in summary.failed:
        print(
            f"\n--- [{outcome.run.id}] {outcome.run.name} failed ({outcome.ended_as}); "
            f"last lines of {outcome.log_path}:\n{launch.log_tail(outcome.log_path)}"
        )
    if summary.failed:
        sys.exit(1)


if __name__ == "__main__":
    cli.run(main, parse_flags)
