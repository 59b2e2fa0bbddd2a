"""Launch a named sweep of a config file: one training process per run.

  python -m experiments.sweep --config=configs/vae.py:sweep=latent_x_likelihood \
      --sweep_dir=runs/s1 --workers=2 [--config.train.num_epochs=2] [--runs=0-4,7] [--dry_run]

`--config=<file>:sweep=NAME[,k=v...]`: `sweep=NAME` picks `get_sweep(NAME)` of the file; the other
arguments go to `get_config` of every run. `--config.<field>=<value>` flags apply to every run.
Re-running the same command skips finished runs and resumes the others from their checkpoints.
Ctrl-C stops the runs (they resume next time). Exits non-zero if any run failed.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence

from absl import app, flags

from autoencoders import launch, sweeps
from experiments import cli

_CONFIG = flags.DEFINE_string("config", None, "<config file>:sweep=NAME[,config arguments].")
_SWEEP_DIR = flags.DEFINE_string("sweep_dir", None, "One workdir per run is made in here.")
_WORKERS = flags.DEFINE_integer("workers", 1, "Runs trained at the same time on this machine.")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "List the runs, their overrides and status only.")
_RUNS = flags.DEFINE_string("runs", "", "Only these run ids, e.g. '0-4,7' (default: all).")
_ALLOW_CONFIG_CHANGE = flags.DEFINE_bool(
    "allow_config_change", False, "Resume runs whose config changed (e.g. more epochs)."
)
flags.mark_flags_as_required(["config", "sweep_dir"])


def parse_ids(text: str) -> list[int] | None:
    """'0-2,5' -> [0, 1, 2, 5]; '' -> None (all runs)."""
    if not text:
        return None
    ids = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        ids.extend(range(int(low), int(high or low) + 1))
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


def _parse_flags(argv: list[str]) -> list[str]:
    # absl knows no --config.<field> flags here (the config is not loaded): set them aside and hand
    # them to main as positional arguments.
    rest, config_flags = split_config_flags(argv)
    return [*flags.FLAGS(rest), *config_flags]


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


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt  # a cluster's SIGTERM stops the children like Ctrl-C does


def main(argv: list[str]) -> None:
    cli.register_threefry()  # as every entry point does, before anything compiles
    global_flags = argv[1:]
    with cli.user_errors(ValueError):
        train_flags = ["--allow_config_change"] if _ALLOW_CONFIG_CHANGE.value else []
        plan = sweeps.plan_from_command(
            _CONFIG.value, _SWEEP_DIR.value, global_flags, train_flags=train_flags
        )
        runs = launch.select(plan, parse_ids(_RUNS.value))
    if _DRY_RUN.value:
        _print_plan(plan, runs)
        return
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        summary = launch.launch(plan, launch.LocalBackend(_WORKERS.value), [r.id for r in runs])
    except KeyboardInterrupt:
        raise SystemExit("Interrupted: re-run the same command to resume.") from None
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
    app.run(main, flags_parser=_parse_flags)
