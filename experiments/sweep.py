"""Launch a named sweep of a config file: one training process per run.

  python -m experiments.sweep --config=configs/vae.py:sweep=latent_x_likelihood \
      --sweep_dir=runs/s1 --workers=2 [--config.train.num_epochs=2] [--runs=0-4,7] [--dry_run]

`--config=<file>:sweep=NAME[,k=v...]`: `sweep=NAME` picks `get_sweep(NAME)` of the file; the other
arguments go to `get_config` of every run. `--config.<field>=<value>` flags apply to every run.
Re-running the same command skips finished runs and resumes the others from their checkpoints.
Ctrl-C or SIGTERM stops the runs (they resume next time), as does killing this launcher, even with
kill -9 (on Linux). Exits non-zero if any run failed.
"""

from __future__ import annotations

from autoencoders import interrupts

if __name__ == "__main__":  # first, before the slow imports below: no SIGINT or SIGTERM is lost
    interrupts.install()

import re  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402

from absl import app, flags  # noqa: E402

from autoencoders import launch, sweeps, training  # noqa: E402
from experiments import cli  # noqa: E402

_CONFIG = flags.DEFINE_string("config", None, "<config file>:sweep=NAME[,config arguments].")
_SWEEP_DIR = flags.DEFINE_string("sweep_dir", None, "One workdir per run is made in here.")
_WORKERS = flags.DEFINE_integer(
    "workers", 1, "Runs trained at the same time on this machine.", lower_bound=1
)
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "List the runs, their overrides and status only.")
_RUNS = flags.DEFINE_string("runs", "", "Only these run ids, e.g. '0-4,7' (default: all).")
_ALLOW_CONFIG_CHANGE = flags.DEFINE_bool(
    "allow_config_change", False, "Resume runs whose config changed (e.g. more epochs)."
)
flags.mark_flags_as_required(["config", "sweep_dir"])


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


def _print_plan(plan: sweeps.Plan, runs: Sequence[sweeps.Run]) -> None:
    print(f"sweep {plan.sweep!r}: {len(plan.runs)} runs in {plan.sweep_dir}")
    if plan.fixed:
        print("fixed:", ", ".join(f"{k}={v}" for k, v in plan.fixed.items()))
    if plan.global_flags:
        print("every run:", " ".join(plan.global_flags))
    for run in runs:
        try:
            state = launch.status(run)
        except ValueError as e:
            state = f"error: {e}"
        overrides = ", ".join(f"{k}={v}" for k, v in run.overrides.items())
        print(f"[{run.id}] {run.name}  ({state})\n    {overrides}\n    {' '.join(run.argv[1:])}")


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
    global_flags = argv[1:]
    train_flags = ["--allow_config_change"] if _ALLOW_CONFIG_CHANGE.value else []
    plan = sweeps.plan_from_command(
        _CONFIG.value, _SWEEP_DIR.value, global_flags, train_flags=train_flags
    )
    runs = launch.select(plan, parse_ids(_RUNS.value, len(plan.runs)))
    if _DRY_RUN.value:
        _print_plan(plan, runs)
        return
    _check_some_run_can_start(runs)
    summary = launch.launch(plan, launch.LocalBackend(_WORKERS.value), [r.id for r in runs])
    done = sum(o.ok for o in summary.outcomes)
    print(
        f"\n{len(summary.skipped)} finished earlier, {done} finished now, "
        f"{len(summary.failed)} failed; manifest: {plan.sweep_dir}/{launch.MANIFEST}"
    )
    for outcome in summary.failed:
        print(
            f"\n--- [{outcome.run.id}] {outcome.run.name} failed (exit {outcome.returncode}); "
            f"last lines of {outcome.log_path}:\n{launch.log_tail(outcome.log_path)}"
        )
    if summary.failed:
        sys.exit(1)


if __name__ == "__main__":
    cli.run(main, parse_flags)
