"""Sweeps on SLURM through submitit: `SlurmBackend`, one job array per launch (`executor.batch()`),
one array task per run, each running `cluster.RunCommand` (the run's training command, its output
appended to `<workdir>/launch.log`).

How a task ended comes from the scheduler's job state (`squeue`, which works without SLURM
accounting) and from the task's submitit result, the training exit status; a task that ended
without one (`scancel`, `kill -9`, node failure, out of memory) is a failed run, reported with its
log tail, and the launcher never waits on it. Preemption and the time limit requeue the task
(submitit's checkpointing: `RunCommand.checkpoint` stops training cleanly, it resumes from its
Orbax checkpoint). Job ids go to `<sweep_dir>/slurm/jobs.json`, so `--detach` can return at once
and a later launch on the same sweep_dir attaches to the jobs still queued or running instead of
submitting them again. A cancelled or killed job is not resubmitted by itself (see `cluster.py`).
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from autoencoders import interrupts
from autoencoders.cluster import RunCommand, note, run_log_path

if TYPE_CHECKING:
    from autoencoders.launch import Outcome
    from autoencoders.sweeps import Run

JOBS_FILE = "jobs.json"  # in <sweep_dir>/slurm/: {run name: SLURM job id}
# squeue's states of a job that will not run again; any other state may still run (PREEMPTED
# too: with PreemptMode=REQUEUE the job comes back).
ENDED_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "REVOKED",
        "TIMEOUT",
    }
)
# sbatch options submitit sets itself, or that have their own --slurm_* flag.
_RESERVED_SBATCH = {
    "array": "",
    "output": "",
    "error": "",
    "open_mode": "",
    "signal": "",
    "partition": "--slurm_partition",
    "time": "--slurm_time_min",
    "cpus_per_task": "--slurm_cpus_per_task",
    "mem": "--slurm_mem",
    "gpus_per_task": "--slurm_gpus_per_task",
}
# Each requeue after a time limit resumes from a checkpoint, so it makes progress; the cap only
# stops a run that cannot finish an epoch within the time limit from looping forever.
TIMEOUT_REQUEUES = 10
_GONE = "no longer listed by squeue"  # ended longer ago than the cluster's MinJobAge


@dataclasses.dataclass(frozen=True)
class SlurmOptions:
    """What each run's array task asks SLURM for (the `--slurm_*` flags of experiments.sweep)."""

    partition: str = ""  # "": the cluster's default partition
    time_min: int = 240  # the time limit; a run that needs longer is requeued and resumes
    cpus_per_task: int = 1
    mem: str = ""  # e.g. "8G"; "": the partition's default
    gpus_per_task: int = 0
    array_parallelism: int = 0  # array tasks running at once; 0: no limit
    additional: Mapping[str, str | bool] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mem and not re.fullmatch(r"\d+([KMGT]B?)?", self.mem, re.IGNORECASE):
            raise ValueError(f"--slurm_mem={self.mem}: give megabytes or a unit, e.g. 8G, 500M.")
        for key in self.additional:
            if key in _RESERVED_SBATCH:
                instead = _RESERVED_SBATCH[key] or "submitit sets it"
                raise ValueError(f"--slurm_additional: {key!r} is not allowed here ({instead}).")

    def parameters(self) -> dict[str, Any]:
        """submitit's SlurmExecutor parameters, omitting what the cluster should default."""
        params: dict[str, Any] = {
            "job_name": "autoencoders",
            "time": self.time_min,
            "cpus_per_task": self.cpus_per_task,
            "additional_parameters": dict(self.additional),
        }
        if self.partition:
            params["partition"] = self.partition
        if self.mem:
            params["mem"] = self.mem
        if self.gpus_per_task:
            params["gpus_per_task"] = self.gpus_per_task
        if self.array_parallelism:
            params["array_parallelism"] = self.array_parallelism
        return params


def parse_sbatch_options(text: str) -> dict[str, str | bool]:
    """`--slurm_additional`: 'account=lab,qos=high,exclusive' -> {'account': 'lab', 'qos':
    'high', 'exclusive': True}, keys as sbatch's long options (- or _)."""
    options: dict[str, str | bool] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = part.partition("=")
        key = key.strip().removeprefix("--").replace("-", "_")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", key) or (eq and not value):
            raise ValueError(
                f"--slurm_additional={text}: {part!r} is not key=value or a bare option "
                "(e.g. account=lab,qos=high,exclusive)."
            )
        options[key] = value if eq else True
    return options


def job_states() -> dict[str, str]:
    """{job id: state} of this user's jobs as squeue lists them (array tasks one by one, as
    '123_4'; jobs ended within the cluster's MinJobAge included). Needs no accounting."""
    result = subprocess.run(
        ["squeue", "-h", "-r", "-t", "all", "-u", getpass.getuser(), "-o", "%i|%T"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise ConnectionError(f"squeue failed: {result.stderr.strip() or result.returncode}")
    return dict(line.split("|", 1) for line in result.stdout.split())


class SlurmBackend:
    """One submitit job array per launch; see the module docstring.

    `run` returns once every run's task has ended, or at once when `detach`, with the runs still
    queued or running as outcomes without an exit status. Ctrl-C (or SIGTERM) cancels the jobs it
    waits for, and training saves its epoch: they resume next time. squeue failing for longer
    than `unreachable_seconds` ends the launch with an error; the jobs are left alone and a
    re-run attaches to them.
    """

    def __init__(
        self,
        sweep_dir: str,
        options: SlurmOptions,
        *,
        detach: bool = False,
        poll_seconds: float = 2.0,
        unreachable_seconds: float = 600.0,
    ):
        self.folder = os.path.abspath(os.path.join(sweep_dir, "slurm"))
        self.options = options
        self.detach = detach
        self.poll_seconds = poll_seconds
        self.unreachable_seconds = unreachable_seconds

    # -- what would be submitted, and what was ---------------------------------------------------

    def sbatch_script(self, num_runs: int) -> str:
        """The sbatch script of a job array of `num_runs` runs, as submitit writes it."""
        from submitit.slurm import slurm  # its private writer: --dry_run shows what sbatch gets

        command = f"{sys.executable} -u -m submitit.core._submit {self.folder}"
        count = num_runs if num_runs > 1 else None  # submitit submits a single run as a plain job
        return slurm._make_sbatch_string(
            command=command, folder=self.folder, map_count=count, **self.options.parameters()
        )

    def recorded_jobs(self) -> dict[str, str]:
        """{run name: job id} of every job submitted for this sweep."""
        path = os.path.join(self.folder, JOBS_FILE)
        if not os.path.exists(path):
            return {}
        with open(path) as f:
            return json.load(f)

    def _record(self, jobs: Mapping[str, str]) -> None:
        path = os.path.join(self.folder, JOBS_FILE)
        merged = {**self.recorded_jobs(), **jobs}
        with open(path + ".tmp", "w") as f:
            json.dump(merged, f, indent=2)
        os.replace(path + ".tmp", path)

    def describe(self, runs: Sequence[Run]) -> dict[int, str]:
        """{run id: 'job 12_3 RUNNING'} for the runs with a recorded job (`--dry_run`)."""
        recorded = self.recorded_jobs()
        states = job_states() if recorded and shutil.which("squeue") else {}
        return {
            r.id: f"job {recorded[r.name]} {states.get(recorded[r.name], _GONE)}"
            for r in runs
            if r.name in recorded
        }

    # -- running ---------------------------------------------------------------------------------

    def run(self, runs: Sequence[Run]) -> list[Outcome]:
        from autoencoders import launch

        states = job_states()
        recorded = self.recorded_jobs()
        jobs: dict[int, str] = {}  # run id -> job id
        for run in runs:
            job = recorded.get(run.name)
            if job in states and states[job] not in ENDED_STATES:
                print(f"[{run.id}] {run.name}: job {job} already {states[job]}", flush=True)
                jobs[run.id] = job
        jobs.update(self._submit([r for r in runs if r.id not in jobs]))
        by_id = {r.id: r for r in runs}
        if self.detach:
            return [
                launch.Outcome(by_id[i], None, 0.0, run_log_path(by_id[i]), f"job {job}")
                for i, job in jobs.items()
            ]
        return self._wait([(by_id[i], job) for i, job in jobs.items()])

    def _submit(self, runs: Sequence[Run]) -> dict[int, str]:
        if not runs:
            return {}
        import submitit

        executor = submitit.SlurmExecutor(folder=self.folder, max_num_timeout=TIMEOUT_REQUEUES)
        executor.update_parameters(**self.options.parameters())
        cwd = os.getcwd()
        with executor.batch():
            submitted = [executor.submit(RunCommand(r.argv, run_log_path(r), cwd)) for r in runs]
        jobs = {r.id: job.job_id for r, job in zip(runs, submitted, strict=True)}
        self._record({r.name: jobs[r.id] for r in runs})
        for run in runs:
            print(f"[{run.id}] submitted {run.name} as job {jobs[run.id]}", flush=True)
        return jobs

    def _wait(self, jobs: Sequence[tuple[Run, str]]) -> list[Outcome]:
        pending, outcomes, seen = list(jobs), [], {}  # seen: {job id: state last printed}
        start = last_answer = time.monotonic()
        try:
            while pending:
                interrupts.check("with the jobs cancelled")  # a safe point
                try:
                    states = job_states()
                except (ConnectionError, subprocess.TimeoutExpired) as e:
                    if time.monotonic() - last_answer > self.unreachable_seconds:
                        raise ConnectionError(
                            f"{e}; for {self.unreachable_seconds:.0f} s. The jobs are left as they "
                            "are: re-run the same command to wait for them again."
                        ) from e
                else:
                    last_answer = time.monotonic()
                    for run, job in list(pending):
                        state = states.get(job, _GONE)
                        if state in ENDED_STATES or state == _GONE:
                            pending.remove((run, job))
                            outcomes.append(self._end(run, job, state, time.monotonic() - start))
                        elif state not in (seen.setdefault(job, "PENDING"), "COMPLETING"):
                            word = "requeued" if state == "PENDING" else state.lower()
                            print(f"[{run.id}] {word} {run.name} (job {job})", flush=True)
                            seen[job] = state
                if pending:
                    time.sleep(self.poll_seconds)
        except KeyboardInterrupt:
            if pending:
                ids = [job for _, job in pending]
                subprocess.run(["scancel", *ids], check=False, timeout=60)
                print(f"cancelled jobs {' '.join(ids)}; they resume next time")
            raise
        return outcomes

    def _end(self, run: Run, job: str, state: str, seconds: float) -> Outcome:
        """How a task ended: the exit status its result records; failing that, its workdir (a
        finished run is finished however its job ended); failing that, the job state."""
        from submitit.core.utils import JobPaths

        from autoencoders import launch

        paths = JobPaths(self.folder, job_id=job, task_id=0)
        result = _read_result(paths.result_pickle, wait=state == "COMPLETED")
        log_path, how = run_log_path(run), ""
        if result is not None and result[0] == "success":
            code = result[1]
            if code and state != "COMPLETED":
                how = f"exit {code}, job {job} {state}"
        elif result is not None:  # the task itself raised: its traceback goes to the run's log
            note(log_path, f"job {job} raised:\n{result[1]}")
            code, how = 1, f"job {job} raised"
        elif launch.status(run) == "finished":
            code = 0
        else:
            note(
                log_path,
                f"job {job} ended ({state}) with no exit status: cancelled or killed. The "
                f"scheduler's log: {paths.stderr}. Re-run the sweep to resume from the last "
                "checkpoint.",
            )
            code, how = 1, f"job {job} {state}"
        outcome = launch.Outcome(run, code, seconds, log_path, how)
        word = "finished" if outcome.ok else f"FAILED ({outcome.ended_as})"
        print(f"[{run.id}] {word} {run.name} in {seconds:.0f} s", flush=True)
        return outcome


def _read_result(path: os.PathLike, wait: bool) -> tuple[str, Any] | None:
    """submitit's (kind, value) of a task, or None. `wait`: the job completed, so its result
    exists, though a shared filesystem may show it a few seconds late."""
    deadline = time.monotonic() + (10.0 if wait else 0.0)
    while not os.path.exists(path):
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.5)
    with open(path, "rb") as f:
        return pickle.load(f)
