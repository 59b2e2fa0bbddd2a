"""Sweeps on a cluster: a SLURM backend through submitit and a Ray backend through plain Ray tasks.

Both run each run's training command (`Run.argv`) unchanged, in the launcher's working directory
(relative config paths and workdirs mean the same on a shared filesystem), appending its output
to `<workdir>/launch.log` as `launch.LocalBackend` does. Manifest, workdirs, locks, skipping
finished runs and resuming the others stay `launch.launch`'s: a backend only decides where a
command runs and learns how it ended.

- `SlurmBackend`: one job array per launch (`executor.batch()`), one array task per run. How a
  task ended comes from the scheduler's job state (`squeue`, which works without SLURM
  accounting) and from the task's submitit result, the training exit status; a task that ended
  without one (`scancel`, `kill -9`, node failure, out of memory) is a failed run, reported with
  its log tail, and the launcher never waits on it. Preemption and the time limit requeue the
  task (submitit's checkpointing: `_Command.checkpoint` stops training cleanly, it resumes from
  its Orbax checkpoint). Job ids go to `<sweep_dir>/slurm/jobs.json`, so `--detach` can return
  at once and a later launch on the same sweep_dir attaches to the jobs still queued or running
  instead of submitting them again.
- `RayBackend`: one Ray task per run on an existing cluster (`address`) or a local one, with
  `num_cpus` / `num_gpus` per run; a task whose worker dies is a failed run, as above.

Neither resubmits a run whose job was cancelled or killed: a cancel is someone's decision, and a
crash repeated in a loop helps nobody. Re-running the same sweep command resubmits exactly the
unfinished runs, which resume from their checkpoints; finished runs are skipped.

This module imports nothing heavy at module level (`launch` and the engines are imported where
used): SLURM and Ray workers unpickle `_Command` from it and should start in a fraction of a
second, without JAX or TensorFlow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import json
import os
import pickle
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from autoencoders import interrupts

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


# ---------------------------------------------------------------------------------------------
# What a worker runs: one training command, its output appended to the run's launch.log
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Command:
    """A run's training command as a submitit callable (`__call__`, `checkpoint`) and the body
    of a Ray task. Returns the command's exit status."""

    argv: tuple[str, ...]
    log_path: str
    cwd: str
    grace_seconds: float = 60.0  # SIGINT to SIGKILL; below submitit's 90 s warning before a kill
    _child: subprocess.Popen | None = dataclasses.field(default=None, init=False, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_child": None}  # a requeued task starts a new child

    def __call__(self, where: str | None = None) -> int:
        where = where or _slurm_where()
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        with open(self.log_path, "a") as log:
            log.write(
                f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {where}: {' '.join(self.argv)}\n"
            )
            log.flush()
            # When this worker dies, the child gets SIGTERM (`interrupts._die_with_launcher`) and
            # stops at the end of its epoch, saved: in a session of its own, it is out of reach
            # of Ray's SIGKILL to the worker's process group (SLURM still finds it by its
            # parent). It does not get submitit's preemption signal, which SLURM sends to every
            # process of the job: this worker handles it (`checkpoint`), stopping the child first.
            env = {**os.environ, interrupts.LAUNCHER_PID: str(os.getpid())}
            with _only_blocked(_preemption_signal()):
                self._child = subprocess.Popen(
                    self.argv,
                    cwd=self.cwd,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            try:
                # poll, never wait(): `checkpoint` runs in a signal handler on this thread, and
                # Popen.wait() would hold the lock its own polling needs.
                while (code := self._child.poll()) is None:
                    time.sleep(0.5)
            except KeyboardInterrupt:  # Ray's cancel of this task
                self.stop()
                raise
        return code

    def stop(self) -> None:
        """SIGINT (training saves its current epoch and exits), SIGKILL after the grace time."""
        child = self._child
        if child is None or child.poll() is not None:
            return
        child.send_signal(signal.SIGINT)
        deadline = time.monotonic() + self.grace_seconds
        while child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        if child.poll() is None:
            child.kill()
            while child.poll() is None:
                time.sleep(0.1)

    def checkpoint(self, *args: Any) -> Any:
        """submitit, on preemption or near the time limit: stop training cleanly and requeue this
        same command, which resumes from the checkpoint just saved."""
        import submitit

        self.stop()
        return submitit.helpers.DelayedSubmission(self, *args)


def _slurm_where() -> str:
    job = os.environ.get("SLURM_ARRAY_JOB_ID")
    job_id = f"{job}_{os.environ['SLURM_ARRAY_TASK_ID']}" if job else os.environ.get("SLURM_JOB_ID")
    return f"slurm job {job_id} on {socket.gethostname()}"


def _preemption_signal() -> signal.Signals:
    return signal.Signals["SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")]


@contextlib.contextmanager
def _only_blocked(signum: signal.Signals) -> Iterator[None]:
    """While a child is started, this thread blocks exactly `signum`: the child inherits the mask
    (a blocked signal stays blocked across exec), so it never gets `signum` and does get every
    other signal, whatever its parent blocks (a Ray worker blocks SIGINT, for one)."""
    previous = signal.pthread_sigmask(signal.SIG_SETMASK, {signum})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _ray_task(command: _Command) -> int:
    return command(f"ray task on {socket.gethostname()}")


def _note(log_path: str, text: str) -> None:
    """A line of the launcher's in a run's launch.log, where its log tail will show it."""
    with open(log_path, "a") as f:
        f.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")


# ---------------------------------------------------------------------------------------------
# SLURM
# ---------------------------------------------------------------------------------------------


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
                launch.Outcome(by_id[i], None, 0.0, _log_path(by_id[i]), f"job {job}")
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
            submitted = [executor.submit(_Command(r.argv, _log_path(r), cwd)) for r in runs]
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
        log_path, how = _log_path(run), ""
        if result is not None and result[0] == "success":
            code = result[1]
            if code and state != "COMPLETED":
                how = f"exit {code}, job {job} {state}"
        elif result is not None:  # the task itself raised: its traceback goes to the run's log
            _note(log_path, f"job {job} raised:\n{result[1]}")
            code, how = 1, f"job {job} raised"
        elif launch.status(run) == "finished":
            code = 0
        else:
            _note(
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


def _log_path(run: Run) -> str:
    from autoencoders import launch

    return os.path.join(run.workdir, launch.LAUNCH_LOG)


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


# ---------------------------------------------------------------------------------------------
# Ray
# ---------------------------------------------------------------------------------------------


class RayBackend:
    """One Ray task per run, `num_cpus` / `num_gpus` each, on the cluster at `address`, else on
    a local one started for this launch (no dashboard) and stopped after it. Usage statistics
    are off (RAY_USAGE_STATS_ENABLED=0). A task is not retried: one whose worker dies is a failed
    run, as with SLURM. Ctrl-C (or SIGTERM) cancels the tasks: each stops its training with
    SIGINT, which saves its epoch."""

    def __init__(
        self,
        address: str = "",
        num_cpus: float = 1.0,
        num_gpus: float = 0.0,
        grace_seconds: float = 20.0,
        poll_seconds: float = 0.5,
    ):
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.grace_seconds = grace_seconds
        self.poll_seconds = poll_seconds

    def run(self, runs: Sequence[Run]) -> list[Outcome]:
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # before ray is imported, and for its nodes
        import ray

        if self.address:
            ray.init(address=self.address, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False)
        try:
            return self._run(ray, runs)
        finally:
            ray.shutdown()

    def _run(self, ray: Any, runs: Sequence[Run]) -> list[Outcome]:
        from autoencoders import launch

        task = ray.remote(num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=0)(_ray_task)
        cwd, start = os.getcwd(), time.monotonic()
        pending = {}
        for run in runs:
            command = _Command(run.argv, _log_path(run), cwd, self.grace_seconds)
            pending[task.remote(command)] = run
            print(f"[{run.id}] submitted {run.name} as a Ray task", flush=True)
        outcomes = []
        try:
            while pending:
                interrupts.check("with the tasks cancelled")  # a safe point
                done, _ = ray.wait(list(pending), num_returns=1, timeout=self.poll_seconds)
                for ref in done:
                    run, how = pending.pop(ref), ""
                    try:
                        code = ray.get(ref)
                    except ray.exceptions.RayError as e:
                        reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
                        _note(_log_path(run), f"Ray task ended with no exit status: {reason}")
                        code, how = 1, f"Ray {type(e).__name__}"
                    outcome = launch.Outcome(
                        run, code, time.monotonic() - start, _log_path(run), how
                    )
                    word = "finished" if outcome.ok else f"FAILED ({outcome.ended_as})"
                    print(f"[{run.id}] {word} {run.name} in {outcome.seconds:.0f} s", flush=True)
                    outcomes.append(outcome)
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref)  # KeyboardInterrupt in the task: `_Command.stop`
            if pending:
                ray.wait(list(pending), num_returns=len(pending), timeout=self.grace_seconds + 5)
            raise
        return outcomes
