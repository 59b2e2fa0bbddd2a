"""Launching a sweep: which runs are finished, and a backend that trains the others.

`launch(plan, backend)` writes `<sweep_dir>/manifest.json` (`write_manifest`), asks each run's
`status` (the config its command builds, parsed by the same config_flags code training uses,
against the workdir's config.json and final checkpoint), skips finished runs and hands the rest
to a `Backend`. `LocalBackend` runs them as parallel child processes on this machine, each
writing its output to `<workdir>/launch.log`; the cluster backends (`slurm.py`: SLURM,
`cluster.py`: Ray) run the same commands as jobs or tasks, with the same log. A run that cannot
start (a bad override) is reported like a failed one, with its error in its log. The plan itself
comes from `sweeps.py`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any, Protocol

import ml_collections
from absl import flags as absl_flags
from ml_collections import config_flags

from autoencoders import interrupts, progress, sweeps
from autoencoders import workdir as workdirs
from autoencoders.sweeps import Plan, Run

MANIFEST = "manifest.json"
LAUNCH_LOG = "launch.log"  # a run's stdout and stderr, appended on every launch


# ---------------------------------------------------------------------------------------------
# The manifest
# ---------------------------------------------------------------------------------------------


def write_manifest(plan: Plan) -> str:
    os.makedirs(plan.sweep_dir, exist_ok=True)
    path = os.path.join(plan.sweep_dir, MANIFEST)
    with open(path + ".tmp", "w") as f:
        json.dump(sweeps.manifest(plan), f, indent=2)
    os.replace(path + ".tmp", path)  # never a half-written manifest
    return path


def read_manifest(sweep_dir: str) -> dict[str, Any]:
    path = os.path.join(sweep_dir, MANIFEST)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No {MANIFEST} in {sweep_dir}: run experiments.sweep first.")
    return workdirs.read_json(path)


# ---------------------------------------------------------------------------------------------
# Run status: what a run's command would train, and whether its workdir already holds it
# ---------------------------------------------------------------------------------------------


def resolve_config(argv: Sequence[str]) -> ml_collections.ConfigDict:
    """The config a training command builds, parsed by the same config_flags code it uses."""
    args = ["resolve", *(a for a in argv if a.startswith("--config"))]
    values = absl_flags.FlagValues()
    # sys_argv: config_flags reads the --config.<field> overrides from it (default: sys.argv).
    config_flags.DEFINE_config_file(
        "config", None, "", flag_values=values, lock_config=True, sys_argv=args
    )
    try:
        values(args)
        values.config.keys()  # a config file that failed to load raises only when read
    except (absl_flags.Error, KeyError, AttributeError, TypeError, OSError, SyntaxError) as e:
        raise ValueError(config_flag_message(e, args)) from e  # this run cannot start
    return values.config


def config_flag_message(error: Exception, argv: Sequence[str]) -> str:
    """An error from parsing a training command's config flags as one line naming the flag: a
    config file that cannot be loaded or whose `get_config` refuses its argument (`--config`), an
    override naming no field (`--config.<field>`); absl's own message, which names the flag, for
    the rest (a bad value, a missing one)."""
    root = error  # the first error raised: ml_collections and absl re-raise, each rewording it
    while (earlier := root.__cause__ or _context(root)) is not None:
        root = earlier
    if isinstance(root, KeyError) and not isinstance(error, absl_flags.Error):
        key = str(root.args[0]) if root.args else ""
        names = [a.partition("=")[0] for a in argv if a.startswith("--config.")]
        flag = next((n for n in names if key in n.split(".")), "--config.<field>")
        hint = re.search(r'Did you mean "([^"]+)"', str(error))
        return f"{flag}: no config field {key!r}." + (f' Did you mean "{hint[1]}"?' if hint else "")
    config_file_error = root is not error and str(error).startswith("flag --config=")
    if isinstance(error, absl_flags.Error) and not config_file_error:
        return str(error)
    lines = str(root).strip().splitlines() or [type(root).__name__]
    return f"--config: {lines[-1].strip()}"


def _context(error: BaseException) -> BaseException | None:
    return None if error.__suppress_context__ else error.__context__


def status(run: Run) -> str:
    """`new` (nothing written), `finished`, `resume` (same config, not finished) or `changed`.

    Finished means: the workdir's config.json is the config this command builds now, and every
    result dir holds the final epoch's evaluation row and checkpoint. `changed` runs are
    launched anyway; training refuses them unless --allow_config_change.
    """
    expected = workdirs.config_json(resolve_config(run.argv))  # ValueError for a bad override
    path = os.path.join(run.workdir, workdirs.CONFIG_FILE)
    if not os.path.exists(path):
        return "new"
    saved = workdirs.read_config_json(path)
    if not workdirs.same_run_config(saved, expected):
        return "changed"
    done = all(workdirs.is_complete(saved, d) for d in workdirs.result_dirs(saved, run.workdir))
    return "finished" if done else "resume"


# ---------------------------------------------------------------------------------------------
# Launching
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Outcome:
    run: Run
    returncode: int | None  # 0: finished; non-zero: failed; None: still queued or running
    seconds: float
    log_path: str
    how: str = ""  # what ended it, where not its own exit status: "job 12_3 CANCELLED"

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def ended_as(self) -> str:
        return self.how or f"exit {self.returncode}"


class Backend(Protocol):
    """Runs training commands somewhere. `run` returns when every run has ended, or, for a
    cluster backend told to detach, once they are submitted (their outcomes have no exit
    status)."""

    def run(self, runs: Sequence[Run]) -> list[Outcome]: ...


def log_tail(path: str, lines: int = 20) -> str:
    if not os.path.exists(path):
        return "(no log)"
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-lines:])


@dataclasses.dataclass
class _Job:
    run: Run
    process: subprocess.Popen
    log: Any
    start: float


class LocalBackend:
    """Runs up to `workers` training processes at a time on this machine.

    Each child gets its own session, so Ctrl-C reaches only this process, which then stops the
    children by PID: SIGINT first (training saves the epoch it is in and stops), SIGKILL after
    `grace_seconds`. Whatever a child loses is its current epoch: it resumes next time. On Linux a
    child also stops as on SIGTERM when this process dies, even by kill -9
    (`interrupts.install`): no run outlives its launcher to race with the next one.
    """

    def __init__(self, workers: int = 1, grace_seconds: float = 20.0, poll_seconds: float = 0.2):
        if workers < 1:
            raise ValueError(f"--workers={workers}: must be >= 1.")
        self.workers = workers
        self.grace_seconds = grace_seconds
        self.poll_seconds = poll_seconds
        self._bar = progress.Progress(0, "runs", stream=sys.stdout)  # replaced by `run`

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env[interrupts.LAUNCHER_PID] = str(os.getpid())  # children die with this launcher
        if self.workers > 1:
            # JAX grabs 75% of an accelerator's memory per process; parallel runs must share it.
            env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        return env

    def _start(self, run: Run) -> _Job:
        os.makedirs(run.workdir, exist_ok=True)
        log = open(os.path.join(run.workdir, LAUNCH_LOG), "a")  # noqa: SIM115 - closed in _end
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(run.argv)}\n")
        log.flush()
        process = subprocess.Popen(
            run.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self._env(),
            start_new_session=True,
        )
        self._bar.write(f"[{run.id}] started {run.name} (pid {process.pid})")
        return _Job(run, process, log, time.monotonic())

    def _end(self, job: _Job) -> Outcome:
        job.log.close()
        outcome = Outcome(
            job.run, job.process.returncode, time.monotonic() - job.start, job.log.name
        )
        word = "finished" if outcome.ok else f"FAILED (exit {outcome.returncode})"
        self._bar.write(f"[{job.run.id}] {word} {job.run.name} in {outcome.seconds:.0f} s")
        return outcome

    def _stop(self, jobs: Sequence[_Job]) -> None:
        for job in jobs:
            if job.process.poll() is None:
                os.kill(job.process.pid, signal.SIGINT)
        deadline = time.monotonic() + self.grace_seconds
        for job in jobs:
            try:
                job.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.kill(job.process.pid, signal.SIGKILL)
                job.process.wait()
            job.log.close()
            code, name = job.process.returncode, job.run.name  # it has exited
            said = f"finished {name}" if code == 0 else f"stopped {name} (exit {code}); it resumes"
            self._bar.write(f"[{job.run.id}] {said}")

    def run(self, runs: Sequence[Run]) -> list[Outcome]:
        """Runs them all; a progress bar of runs ended (running and failed beside it) on a
        terminal, a plain line now and then elsewhere."""
        pending, running, outcomes = list(runs), [], []
        self._bar = progress.Progress(len(runs), "runs", stream=sys.stdout)
        try:
            while pending or running:
                interrupts.check("with the runs stopped")  # `interrupts.install`: a safe point
                while pending and len(running) < self.workers:
                    running.append(self._start(pending.pop(0)))
                for job in [j for j in running if j.process.poll() is not None]:
                    running.remove(job)
                    outcomes.append(self._end(job))
                    failed = sum(not o.ok for o in outcomes)
                    self._bar.update(1, running=len(running), failed=failed)
                time.sleep(self.poll_seconds)
        except KeyboardInterrupt:
            self._stop(running)
            raise
        finally:
            self._bar.close()
        return outcomes


@dataclasses.dataclass(frozen=True)
class Summary:
    skipped: tuple[Run, ...]  # finished before this launch
    outcomes: tuple[Outcome, ...]

    @property
    def failed(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.returncode not in (0, None))

    @property
    def detached(self) -> tuple[Outcome, ...]:  # still queued or running on a cluster
        return tuple(o for o in self.outcomes if o.returncode is None)


def select(plan: Plan, ids: Sequence[int] | None) -> tuple[Run, ...]:
    """The runs with these ids (all when None)."""
    if ids is None:
        return plan.runs
    unknown = set(ids) - {r.id for r in plan.runs}
    if unknown:
        raise ValueError(f"No runs with ids {sorted(unknown)} (ids 0..{len(plan.runs) - 1}).")
    return tuple(r for r in plan.runs if r.id in set(ids))


def launch(plan: Plan, backend: Backend, ids: Sequence[int] | None = None) -> Summary:
    """Writes the manifest, skips finished runs and runs the others on `backend`."""
    return launch_plans([(plan, select(plan, ids))], backend)


def launch_plans(selected: Sequence[tuple[Plan, Sequence[Run]]], backend: Backend) -> Summary:
    """`launch` for several plans, each with the runs selected of it: every manifest written,
    finished runs skipped, and the others given to `backend` in one call, so that its workers
    are shared by all the plans (a plan's last run does not train alone while one idles)."""
    todo, skipped, unresolved, runs = [], [], [], []
    for plan, chosen in selected:
        write_manifest(plan)
        runs += chosen
        for run in chosen:
            try:
                state = status(run)
            except ValueError as e:  # a run whose overrides config_flags rejects
                unresolved.append(_record_failure(run, e))
                continue
            (skipped if state == "finished" else todo).append(run)
    for run in skipped:
        print(f"[{run.id}] finished earlier: {run.name}", flush=True)
    outcomes = backend.run(todo) if todo else []
    order = {r.workdir: i for i, r in enumerate(runs)}
    return Summary(
        tuple(skipped),
        tuple(sorted([*unresolved, *outcomes], key=lambda o: order[o.run.workdir])),
    )


def _record_failure(run: Run, error: Exception) -> Outcome:
    """A run that cannot start: its error goes to its log like a child's would."""
    os.makedirs(run.workdir, exist_ok=True)
    path = os.path.join(run.workdir, LAUNCH_LOG)
    with open(path, "a") as f:
        f.write(f"\n=== {' '.join(run.argv)}\nerror: {error}\n")
    print(f"[{run.id}] FAILED {run.name}: {error}", flush=True)
    return Outcome(run, 2, 0.0, path)
